/**
 * npm run bench -- <scenario> [--seconds 10] [--concurrency 1,16,64] [--url http://127.0.0.1:PORT]
 *
 * HTTP load benchmark of the Worker served by Miniflare (`scripts/start.ts`). Without --url it starts
 * its own server on a free port with a fresh DATA_DIR and stops it afterwards. It first measures the
 * ceiling, a no-op route (GET /healthz) at each concurrency, then the scenario's phases (one per
 * concurrency; `queue` and `cache` have several kinds), and prints each phase's throughput as a share
 * of that ceiling.
 * Closed loop: N workers, each sending its next request when the previous one answered. ops/s, msgs/s
 * and latencies count 2xx answers only; anything else is an error, counted by op, status and problem type.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { cache } from "./cache.js";
import { Client } from "./http.js";
import { type Check, type Phase, phasesOf, runPhase, type Scenario, type Target } from "./load.js";
import { locks } from "./locks.js";
import { queue } from "./queue.js";
import { type Server, startServer, waitReady } from "./server.js";
import { fmt, type Recorder, table } from "./stats.js";

const SCENARIOS: Record<string, Scenario> = { locks, queue, cache };
const WARMUP_SECONDS = 1;
const MAX_CONCURRENCY = 1024;

const DEFAULT_CONCURRENCY = [1, 16, 64];

const USAGE = `usage: npm run bench -- <scenario> [--seconds 10] [--concurrency 1,16,64] [--url http://127.0.0.1:PORT]
scenarios: ${Object.keys(SCENARIOS).join(", ")}
--concurrency  default ${DEFAULT_CONCURRENCY.join(",")} (queue: 8; its single-message phase always runs at 8;
               cache: 4,16; its hits phase always runs at 4 too)
--url          benchmark a running server (loopback only; send API_TOKEN from the environment) instead of starting one`;

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

interface Options {
  scenario: Scenario;
  seconds: number;
  concurrency: number[];
  url?: URL;
}

function parseOptions(argv: string[]): Options {
  const spec = {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string" },
    url: { type: "string" },
  } as const;
  const parsed = (() => {
    try {
      return parseArgs({ args: argv, options: spec, allowPositionals: true });
    } catch (err) {
      usageError((err as Error).message);
    }
  })();
  const [name, ...extra] = parsed.positionals;
  if (name === undefined) usageError("missing scenario");
  const scenario = SCENARIOS[name];
  if (scenario === undefined) usageError(`unknown scenario: ${name}`);
  if (extra.length > 0) usageError(`unexpected arguments: ${extra.join(" ")}`);

  const seconds = Number(parsed.values.seconds);
  if (!(seconds > 0 && seconds <= 600)) usageError(`--seconds must be in (0, 600], got ${parsed.values.seconds}`);
  const concurrency =
    parsed.values.concurrency?.split(",").map(Number) ?? scenario.defaultConcurrency ?? DEFAULT_CONCURRENCY;
  if (!concurrency.every((c) => Number.isInteger(c) && c >= 1 && c <= MAX_CONCURRENCY)) {
    usageError(`--concurrency must be integers in [1, ${MAX_CONCURRENCY}], got ${parsed.values.concurrency}`);
  }

  const url = parsed.values.url === undefined ? undefined : loopbackUrl(parsed.values.url);
  return { scenario, seconds, concurrency, url };
}

/** Load is only ever sent to this machine: http:// on 127.0.0.0/8, localhost or [::1]. */
function loopbackUrl(raw: string): URL {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  const host = url?.hostname ?? "";
  const loopback = /^127\./.test(host) || host === "localhost" || host === "[::1]";
  if (url?.protocol !== "http:" || !loopback) usageError(`--url must be http:// on loopback, got ${raw}`);
  return url;
}

const noop: Scenario = {
  name: "no-op",
  describe: "GET /healthz (answered by the Worker without touching Raft): the ceiling",
  iteration: (client) => async (_worker, _i, timed) => {
    await timed("healthz", () => client.call("GET", "/healthz"));
  },
};

interface Result {
  phase: Phase;
  rec: Recorder;
  checks: Check[];
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  let server: Server | undefined;
  // The server runs in its own process group, so Ctrl-C reaches only this process: stop it in order.
  process.once("SIGINT", () => {
    console.error("\ninterrupted: stopping the server");
    void (server?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });

  // A server started here always gets a token, so a local .env with API_TOKEN cannot turn the run into 401s.
  const token = opts.url ? process.env.API_TOKEN : process.env.API_TOKEN || randomBytes(16).toString("hex");
  let client: Client | undefined;
  let failed: boolean;
  let serverStderr: string | undefined;
  try {
    if (opts.url === undefined) {
      console.error("starting the server (scripts/start.ts) ...");
      server = await startServer({ API_TOKEN: token ?? "" });
    }
    const origin = opts.url?.origin ?? (server as Server).origin;
    const ready = await waitReady(origin, server);
    console.error(
      `server ${origin} ${server ? "(started here, fresh DATA_DIR)" : "(--url)"}: ${ready.groups ?? "?"} Raft groups; ` +
        `${opts.seconds} s per phase after ${WARMUP_SECONDS} s warm-up; client on Node ${process.version}`,
    );

    // The ceiling at every concurrency a phase runs at (queue's single-message phase: always 8; cache hits: 4 too).
    const phases = phasesOf(opts.scenario, opts.concurrency);
    const levels = [...new Set(phases.map((p) => p.concurrency))].sort((a, b) => a - b);
    client = new Client(origin, Math.max(...levels), token);
    const results: Result[] = [];
    for (const phase of [...phasesOf(noop, levels), ...phases]) {
      const { concurrency } = phase;
      console.error(`  ${phase.name} c=${concurrency} ...`);
      await phase.prepare?.(client);
      const rec = await runPhase(phase.iteration(client), {
        concurrency,
        seconds: opts.seconds,
        warmupSeconds: WARMUP_SECONDS,
      });
      results.push({ phase, rec, checks: (await phase.check?.(client)) ?? [] });
    }
    failed = report(opts, results);
    serverStderr = server?.stderr();
  } catch (err) {
    failed = true;
    console.error(err);
    // A server that failed to start has already been stopped; its output rides on the error.
    serverStderr = server?.stderr() ?? (err as { serverStderr?: string }).serverStderr;
  } finally {
    await client?.close();
  }
  // Only on failure (errors included): a clean run's server log is noise.
  if (failed && serverStderr !== undefined)
    console.error(`\n--- server stderr (tail) ---\n${serverStderr || "(empty)"}`);
  await server?.stop();
  process.exitCode = failed ? 1 : 0;
}

/** Prints the table, the errors, one summary line per phase, the checks and the targets; true when any op or check failed. */
function report(opts: Options, results: Result[]): boolean {
  const { seconds, scenario } = opts;
  const ceiling = (c: number) =>
    results.find((r) => r.phase.name === noop.name && r.phase.concurrency === c)?.rec.summary(seconds);
  const share = (perSecond: number, c: number) => `${fmt((100 * perSecond) / (ceiling(c)?.perSecond ?? 0))}%`;
  // A msgs/s column only for scenarios whose ops carry messages (queue).
  const withMessages = results.some((r) => r.phase.messagesOf !== undefined);
  const msgs = (rec: Recorder, op: string | undefined) =>
    !withMessages ? [] : op === undefined || !rec.messages.has(op) ? [""] : [fmt(rec.messageRate(seconds, op))];
  // A hit % column only for scenarios whose replies are hits or misses (cache).
  const withHits = results.some((r) => r.phase.hitsOf !== undefined);
  const hits = (rec: Recorder, op: string | undefined) =>
    !withHits ? [] : op === undefined || !rec.latencies.has(op) ? [""] : [`${fmt(hitRate(rec, op), 1)}%`];
  const rows: string[][] = [];
  for (const { phase, rec } of results) {
    const all = rec.summary(seconds);
    const base = phase.name === noop.name ? "" : share(all.perSecond, phase.concurrency);
    rows.push([
      phase.name,
      String(phase.concurrency),
      fmt(all.perSecond),
      ...msgs(rec, phase.messagesOf),
      ...hits(rec, phase.hitsOf),
      ...latencyCells(all),
      String(rec.errorCount()),
      base,
    ]);
    // Per-op rows only when a phase has several kinds of op (locks: acquire and release).
    if (rec.latencies.size > 1) {
      for (const op of [...rec.latencies.keys()].sort()) {
        const s = rec.summary(seconds, op);
        const hitsOf = op === phase.hitsOf ? op : undefined;
        rows.push([
          `  ${op}`,
          "",
          fmt(s.perSecond),
          ...msgs(rec, op),
          ...hits(rec, hitsOf),
          ...latencyCells(s),
          "",
          "",
        ]);
      }
    }
  }
  console.log(`\nno-op: ${noop.describe}\n${scenario.name}: ${scenario.describe}`);
  const legend = new Map(results.map(({ phase }) => [phase.name, phase.describe]));
  for (const [name, describe] of legend) if (describe !== undefined) console.log(`  ${name}: ${describe}`);
  const header = [
    ...["phase", "conc", "ops/s", ...(withMessages ? ["msgs/s"] : []), ...(withHits ? ["hit %"] : [])],
    ...["p50 ms", "p95 ms", "p99 ms"],
  ];
  console.log(`\n${table([...header, "errors", "% of no-op"], rows)}`);

  const withErrors = results.filter((r) => r.rec.errors.size > 0);
  if (withErrors.length > 0) {
    console.log("\nerrors (count, op, status and problem type; first body seen):");
    for (const { phase, rec } of withErrors) {
      for (const [key, count] of rec.errors) {
        const sample = rec.samples.get(key);
        console.log(`  ${phase.name} c=${phase.concurrency}: ${count} x ${key}${sample ? `  ${sample}` : ""}`);
      }
    }
  }

  console.log("");
  for (const { phase, rec } of results) {
    const base = ceiling(phase.concurrency);
    if (phase.name === noop.name || !base) continue;
    const s = rec.summary(seconds);
    const carried = phase.messagesOf
      ? `${fmt(rec.messageRate(seconds, phase.messagesOf))} msgs/s (${phase.messagesOf}) in `
      : "";
    const hitShare = phase.hitsOf ? `; ${fmt(hitRate(rec, phase.hitsOf), 1)}% of ${phase.hitsOf} hits` : "";
    console.log(
      `c=${phase.concurrency}: ${phase.name} ${carried}${fmt(s.perSecond)} ops/s (p50 ${fmt(s.p50, 2)} ms, ` +
        `p99 ${fmt(s.p99, 2)} ms) = ${share(s.perSecond, phase.concurrency)} of the no-op ceiling ` +
        `${fmt(base.perSecond)} req/s (p99 ${fmt(base.p99, 2)} ms); ${rec.errorCount()} errors${hitShare}`,
    );
  }

  const checked = results.filter((r) => r.checks.length > 0);
  if (checked.length > 0) {
    console.log("\nchecks:");
    for (const { phase, checks } of checked) {
      for (const c of checks) console.log(`  ${phase.name} c=${phase.concurrency}: ${c.ok ? "" : "FAILED: "}${c.note}`);
    }
  }

  const targets = results.flatMap(({ phase, rec }) =>
    (phase.targets ?? []).map((t) => verdict(phase, rec, t, seconds, ceiling(phase.concurrency)?.perSecond ?? 0)),
  );
  if (targets.length > 0) console.log(`\ntargets:\n${targets.join("\n")}`);
  return withErrors.length > 0 || results.some((r) => r.checks.some((c) => !c.ok));
}

/** `ceiling`: the no-op's req/s at the phase's concurrency. */
function verdict(phase: Phase, rec: Recorder, target: Target, seconds: number, ceiling: number): string {
  const where = `${phase.name} c=${phase.concurrency}`;
  if (target.metric === "% of no-op") {
    const share = (100 * rec.summary(seconds, target.op).perSecond) / ceiling;
    const met = share >= target.min ? "met" : "MISSED";
    return `  ${where}: ${target.label}: ${fmt(share, 1)}% of the no-op ceiling (target >= ${target.min}%): ${met}`;
  }
  if (target.metric === "messages/s") {
    const rate = rec.messageRate(seconds, target.op);
    const met = rate >= target.min ? "met" : "MISSED";
    return `  ${where}: ${target.label}: ${fmt(rate)} msgs/s (target >= ${target.min}): ${met}`;
  }
  const { p95 } = rec.summary(seconds, target.op);
  const met = p95 < target.max ? "met" : "MISSED";
  return `  ${where}: ${target.label} p95 ${fmt(p95, 2)} ms (target < ${target.max} ms): ${met}`;
}

/** Percent of the successful `op` replies that were hits (each hit is recorded as one message of `op`). */
function hitRate(rec: Recorder, op: string): number {
  return (100 * (rec.messages.get(op) ?? 0)) / (rec.latencies.get(op)?.length ?? 0);
}

function latencyCells(s: ReturnType<Recorder["summary"]>): string[] {
  return [fmt(s.p50, 2), fmt(s.p95, 2), fmt(s.p99, 2)];
}

await main();
