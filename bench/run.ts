/**
 * npm run bench -- <scenario> [--seconds 10] [--concurrency 1,16,64] [--url http://127.0.0.1:PORT]
 *
 * HTTP load benchmark of the Worker served by Miniflare (`scripts/start.ts`). Without --url it starts
 * its own server on a free port with a fresh DATA_DIR and stops it afterwards. It first measures the
 * ceiling, a no-op route (GET /healthz) at each concurrency, then the scenario at each concurrency, and
 * prints the scenario's throughput as a share of that ceiling. Closed loop: N workers, each sending its
 * next request when the previous one answered. ops/s and latencies count 2xx answers only; anything
 * else is an error, counted by op, status and problem type.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { Client } from "./http.js";
import { type Iteration, runPhase, type Scenario } from "./load.js";
import { locks } from "./locks.js";
import { type Server, startServer, waitReady } from "./server.js";
import { fmt, type Recorder, table } from "./stats.js";

const SCENARIOS: Record<string, Scenario> = { locks };
const WARMUP_SECONDS = 1;
const MAX_CONCURRENCY = 1024;

const USAGE = `usage: npm run bench -- <scenario> [--seconds 10] [--concurrency 1,16,64] [--url http://127.0.0.1:PORT]
scenarios: ${Object.keys(SCENARIOS).join(", ")}
--url     benchmark a running server (loopback only; send API_TOKEN from the environment) instead of starting one`;

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
    concurrency: { type: "string", default: "1,16,64" },
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
  const concurrency = parsed.values.concurrency.split(",").map(Number);
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
  phase: string;
  concurrency: number;
  rec: Recorder;
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

    client = new Client(origin, Math.max(...opts.concurrency), token);
    const results: Result[] = [];
    for (const scenario of [noop, opts.scenario]) {
      const iteration: Iteration = scenario.iteration(client);
      for (const concurrency of opts.concurrency) {
        console.error(`  ${scenario.name} c=${concurrency} ...`);
        const rec = await runPhase(iteration, { concurrency, seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS });
        results.push({ phase: scenario.name, concurrency, rec });
      }
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

/** Prints the table, the errors and one summary line per concurrency; true when any op failed. */
function report(opts: Options, results: Result[]): boolean {
  const { seconds, scenario } = opts;
  const ceiling = (c: number) =>
    results.find((r) => r.phase === noop.name && r.concurrency === c)?.rec.summary(seconds);
  const rows: string[][] = [];
  for (const { phase, concurrency, rec } of results) {
    const all = rec.summary(seconds);
    const share = phase === noop.name ? "" : `${fmt((100 * all.perSecond) / (ceiling(concurrency)?.perSecond ?? 0))}%`;
    rows.push([phase, String(concurrency), ...cells(all), String(rec.errorCount()), share]);
    // Per-op rows only when a phase has several kinds of op (locks: acquire and release).
    if (rec.latencies.size > 1) {
      for (const op of [...rec.latencies.keys()].sort())
        rows.push([`  ${op}`, "", ...cells(rec.summary(seconds, op)), "", ""]);
    }
  }
  console.log(`\nno-op: ${noop.describe}\n${scenario.name}: ${scenario.describe}\n`);
  console.log(table(["phase", "conc", "ops/s", "p50 ms", "p95 ms", "p99 ms", "errors", "% of no-op"], rows));

  const withErrors = results.filter((r) => r.rec.errors.size > 0);
  if (withErrors.length > 0) {
    console.log("\nerrors (count, op, status and problem type; first body seen):");
    for (const { phase, concurrency, rec } of withErrors) {
      for (const [key, count] of rec.errors) {
        const sample = rec.samples.get(key);
        console.log(`  ${phase} c=${concurrency}: ${count} x ${key}${sample ? `  ${sample}` : ""}`);
      }
    }
  }

  console.log("");
  for (const c of opts.concurrency) {
    const base = ceiling(c);
    const run = results.find((r) => r.phase === scenario.name && r.concurrency === c);
    if (!base || !run) continue;
    const s = run.rec.summary(seconds);
    console.log(
      `c=${c}: ${scenario.name} ${fmt(s.perSecond)} ops/s (p50 ${fmt(s.p50, 2)} ms, p99 ${fmt(s.p99, 2)} ms) = ` +
        `${fmt((100 * s.perSecond) / base.perSecond)}% of the no-op ceiling ${fmt(base.perSecond)} req/s ` +
        `(p99 ${fmt(base.p99, 2)} ms); ${run.rec.errorCount()} errors`,
    );
  }
  return withErrors.length > 0;
}

function cells(s: ReturnType<Recorder["summary"]>): string[] {
  return [fmt(s.perSecond), fmt(s.p50, 2), fmt(s.p95, 2), fmt(s.p99, 2)];
}

await main();
