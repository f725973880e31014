/**
 * npm run bench -- <scenario> [--seconds 10] [--concurrency 1,16,64] [--url http://127.0.0.1:PORT[,...]]
 *                             [--nodes N] [--no-baseline] [--no-etcd] [--json [file]]
 * npm run bench -- scaling [--nodes 3,5,7] [--seconds 10] [--concurrency 1,16,64] [--json [file]]
 *
 * HTTP load benchmark of the Worker served by Miniflare. Without --url or --nodes it starts its own
 * single-process server (`scripts/start.ts`, as `npm start`) on a free port with a fresh DATA_DIR and
 * stops it afterwards; with --nodes N it starts an N-node multi-process cluster instead (bench/nodes.ts,
 * each node `node dist/node/node.mjs`) and spreads the load over the nodes round-robin (every node
 * serves the whole API and forwards to the group's leader). It first measures the ceiling, a no-op
 * route (GET /healthz) at each concurrency, then the scenario's phases (one per concurrency; `queue`
 * and `cache` have several kinds), and prints each phase's throughput as a share of that ceiling.
 *
 * `all` runs locks, queue end to end and cache hits and read-heavy. With --nodes it also measures, in
 * the same sitting and with the same client, the single-process server's locks, before and after the
 * rest (unless --no-baseline; compared: the better of the two), and a 3-member etcd's locks through
 * its v3 JSON gateway (bench/etcd.ts; unless --no-etcd, or when /usr/bin/etcd is missing), and checks
 * the lock targets against them. `scaling` runs `all` on clusters of each size in turn.
 * Closed loop: N workers, each sending its next request when the previous one answered. ops/s, msgs/s
 * and latencies count 2xx answers only; anything else is an error, counted by op, status and problem type.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { cache } from "./cache.js";
import { etcdLocks, etcdVersion, startEtcd } from "./etcd.js";
import { Client } from "./http.js";
import { type Check, type Phase, phasesOf, runPhase, type Scenario, type Target } from "./load.js";
import { locks } from "./locks.js";
import { LocalCluster } from "./nodes.js";
import { queue } from "./queue.js";
import { startServer, waitReady } from "./server.js";
import { fmt, type Recorder, table } from "./stats.js";

const SCENARIOS: Record<string, Scenario> = { locks, queue, cache };
const WARMUP_SECONDS = 1;
const MAX_CONCURRENCY = 1024;
const MAX_NODES = 9;

const DEFAULT_CONCURRENCY = [1, 16, 64];
const DEFAULT_SCALING = [3, 5, 7];

/** `all`: these scenarios, and of each only these phases (at the --concurrency levels). */
const ALL: { scenario: Scenario; phases?: string[] }[] = [
  { scenario: locks },
  { scenario: queue, phases: ["end-to-end"] },
  { scenario: cache, phases: ["hits", "read-heavy"] },
];

/** The lock targets of issue 10 (ratios, one sitting, same client). */
const BASELINE_RATIO_MIN = 1.5;
const BASELINE_RATIO_AT = [64];
const ETCD_SHARE_MIN = 75;
const ETCD_SHARE_AT = [16, 64];

const USAGE = `usage: npm run bench -- <scenario> [--seconds 10] [--concurrency 1,16,64] [--url http://127.0.0.1:PORT[,...]]
                              [--nodes N] [--no-baseline] [--no-etcd] [--json [file]]
       npm run bench -- scaling [--nodes ${DEFAULT_SCALING.join(",")}] [--seconds 10] [--concurrency 1,16,64] [--json [file]]
scenarios: ${[...Object.keys(SCENARIOS), "all"].join(", ")}
--concurrency  default ${DEFAULT_CONCURRENCY.join(",")} (queue: 8; its single-message phase always runs at 8;
               cache: 4,16; its hits phase always runs at 4 too; all: ${DEFAULT_CONCURRENCY.join(",")})
--url          benchmark running servers (loopback only; send API_TOKEN from the environment) instead of starting
               one; several, comma-separated, are loaded round-robin
--nodes        start an N-node multi-process cluster (node dist/node/node.mjs per node) instead of npm start's
               single process; with all: also the single process's and etcd's locks, beside it
--json         also write a JSON report to the file, or with no file to stdout (the tables then go to stderr)`;

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

interface Options {
  /** The scenarios to run, with a filter of their phases (`all`: several). */
  scenarios: { scenario: Scenario; phases?: string[] }[];
  all: boolean;
  seconds: number;
  concurrency: number[];
  urls?: URL[];
  /** Cluster sizes: one with --nodes N, several with `scaling`; empty for a single process. */
  nodes: number[];
  scaling: boolean;
  baseline: boolean;
  etcd: boolean;
  /** undefined: no JSON; "-": stdout; else a file. */
  json?: string;
}

/** `--json` takes an optional file: the next argument when it is neither a flag nor a command. */
function splitJson(argv: string[]): { argv: string[]; json?: string } {
  const rest: string[] = [];
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg.startsWith("--json=")) json = arg.slice("--json=".length) || "-";
    else if (arg === "--json") {
      const next = argv[i + 1];
      const isFile = next !== undefined && !next.startsWith("-") && !(next in SCENARIOS) && !COMMANDS.has(next);
      json = isFile ? next : "-";
      if (isFile) i++;
    } else rest.push(arg);
  }
  return { argv: rest, json };
}
const COMMANDS = new Set(["all", "scaling"]);

function parseOptions(raw: string[]): Options {
  const { argv, json } = splitJson(raw);
  const spec = {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string" },
    url: { type: "string" },
    nodes: { type: "string" },
    "no-baseline": { type: "boolean", default: false },
    "no-etcd": { type: "boolean", default: false },
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
  if (extra.length > 0) usageError(`unexpected arguments: ${extra.join(" ")}`);
  const scaling = name === "scaling";
  const all = scaling || name === "all";
  const single = SCENARIOS[name];
  if (!all && single === undefined) usageError(`unknown scenario: ${name}`);
  const scenarios = all ? ALL : [{ scenario: single as Scenario }];

  const seconds = Number(parsed.values.seconds);
  if (!(seconds > 0 && seconds <= 600)) usageError(`--seconds must be in (0, 600], got ${parsed.values.seconds}`);
  const concurrency =
    parsed.values.concurrency?.split(",").map(Number) ??
    (all ? undefined : single?.defaultConcurrency) ??
    DEFAULT_CONCURRENCY;
  if (!concurrency.every((c) => Number.isInteger(c) && c >= 1 && c <= MAX_CONCURRENCY)) {
    usageError(`--concurrency must be integers in [1, ${MAX_CONCURRENCY}], got ${parsed.values.concurrency}`);
  }
  const nodes = parsed.values.nodes?.split(",").map(Number) ?? (scaling ? DEFAULT_SCALING : []);
  if (!nodes.every((n) => Number.isInteger(n) && n >= 1 && n <= MAX_NODES)) {
    usageError(`--nodes must be integers in [1, ${MAX_NODES}], got ${parsed.values.nodes}`);
  }
  if (!scaling && nodes.length > 1) usageError("--nodes takes one count (several: the scaling command)");
  const urls = parsed.values.url?.split(",").map(loopbackUrl);
  if (urls !== undefined && nodes.length > 0) usageError("--url and --nodes exclude each other");
  return {
    scenarios,
    all,
    seconds,
    concurrency,
    urls,
    nodes,
    scaling,
    // The comparisons belong to `all` against a cluster started here, not to scaling (run them once, with --nodes).
    baseline: name === "all" && nodes.length > 0 && !parsed.values["no-baseline"],
    etcd: name === "all" && nodes.length > 0 && !parsed.values["no-etcd"],
    json,
  };
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
  scenario: Scenario;
  phase: Phase;
  rec: Recorder;
  checks: Check[];
}

/** What was measured: `npm start`, a cluster started here, running servers (--url) or etcd. */
interface SystemUnderTest {
  name: string;
  kind: "single" | "cluster" | "url" | "etcd";
  nodes: number;
  origins: string[];
  token?: string;
  /** Raft groups (from /readyz), or etcd's version. */
  about: string;
  stop(): Promise<void>;
  /** The tail of its output, printed when the run failed. */
  log(): string;
}

interface SystemRun {
  system: Omit<SystemUnderTest, "stop" | "log" | "token">;
  results: Result[];
  failed: boolean;
}

/** Where the tables go: stdout, or stderr when the JSON report takes stdout. */
let say: (line: string) => void = console.log;

let current: SystemUnderTest | undefined;

async function startSingle(token: string, label = ""): Promise<SystemUnderTest> {
  console.error("starting the single-process server (scripts/start.ts, as npm start) ...");
  const server = await startServer({ API_TOKEN: token });
  const name = `npm start (1 process)${label}`;
  current = { ...placeholder(name, "single", 1, [server.origin], token), stop: () => server.stop() };
  current.log = () => server.stderr();
  const ready = await waitReady(server.origin, server);
  current.about = `${ready.groups ?? "?"} Raft groups`;
  return current;
}

async function startCluster(n: number, token: string): Promise<SystemUnderTest> {
  console.error(`starting a ${n}-node multi-process cluster (node dist/node/node.mjs per node) ...`);
  const cluster = await LocalCluster.start(n, { API_TOKEN: token });
  const origins = cluster.origins();
  current = { ...placeholder(`${n}-node cluster`, "cluster", n, origins, token), stop: () => cluster.stop() };
  current.log = () =>
    [...cluster.nodes.values()].map((node) => `--- ${node.id} ---\n${node.output().slice(-3000)}`).join("\n");
  const ready = await Promise.all(origins.map((o) => waitReady(o)));
  current.about = `${ready[0]?.groups ?? "?"} Raft groups`;
  return current;
}

async function startEtcdCluster(): Promise<SystemUnderTest> {
  console.error("starting a 3-member etcd on loopback ...");
  const etcd = await startEtcd(3);
  current = { ...placeholder("etcd (3 members)", "etcd", 3, etcd.origins), stop: () => etcd.stop() };
  current.about = `etcd ${etcd.version}`;
  return current;
}

function placeholder(name: string, kind: SystemUnderTest["kind"], nodes: number, origins: string[], token?: string) {
  return { name, kind, nodes, origins, token, about: "", log: () => "" };
}

/** Runs the no-op ceiling at every level the phases run at, then the phases, on `sut`; stops it afterwards. */
async function measure(
  sut: SystemUnderTest,
  plan: { scenario: Scenario; phases: Phase[] }[],
  opts: Options,
  withNoop = true,
): Promise<SystemRun> {
  const all = plan.flatMap((p) => p.phases);
  const levels = [...new Set(all.map((p) => p.concurrency))].sort((a, b) => a - b);
  console.error(
    `${sut.name} ${sut.origins.join(" ")} (${sut.about}): ${opts.seconds} s per phase after ${WARMUP_SECONDS} s warm-up; ` +
      `client on Node ${process.version}; load average ${loadAverage()}`,
  );
  const client = new Client(sut.origins, Math.max(...levels), sut.token);
  const results: Result[] = [];
  let failed = false;
  try {
    const steps = [...(withNoop ? [{ scenario: noop, phases: phasesOf(noop, levels) }] : []), ...plan];
    for (const { scenario, phases } of steps) {
      for (const phase of phases) {
        console.error(`  ${sut.name}: ${phase.name} c=${phase.concurrency} ...`);
        await phase.prepare?.(client);
        const rec = await runPhase(phase.iteration(client), {
          concurrency: phase.concurrency,
          seconds: opts.seconds,
          warmupSeconds: WARMUP_SECONDS,
        });
        results.push({ scenario, phase, rec, checks: (await phase.check?.(client)) ?? [] });
      }
    }
  } catch (err) {
    failed = true;
    console.error(err);
  } finally {
    await client.close();
  }
  for (const { scenario } of plan) {
    const mine = results.filter((r) => r.scenario === scenario || r.scenario === noop);
    if (mine.some((r) => r.scenario === scenario)) {
      say(`\n=== ${sut.name} (${sut.about}): ${scenario.name} ===`);
      failed = report(scenario, opts.seconds, mine) || failed;
    }
  }
  // Only on failure (errors included): a clean run's server log is noise.
  if (failed) console.error(`\n--- ${sut.name} output (tail) ---\n${sut.log() || "(empty)"}`);
  await sut.stop();
  current = undefined;
  const { stop: _stop, log: _log, token: _token, ...system } = sut;
  return { system, results, failed };
}

function planOf(opts: Options): { scenario: Scenario; phases: Phase[] }[] {
  return opts.scenarios.map(({ scenario, phases }) => ({
    scenario,
    phases: phasesOf(scenario, opts.concurrency).filter(
      // In `all`, only the named phases, at the given levels (queue's end to end sets its own: c+1 at c=1).
      (p) =>
        phases === undefined ||
        (phases.includes(p.name) && (p.name === "end-to-end" || opts.concurrency.includes(p.concurrency))),
    ),
  }));
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.json === "-") say = console.error;
  // The servers run in their own process groups, so Ctrl-C reaches only this process: stop them in order.
  process.once("SIGINT", () => {
    console.error("\ninterrupted: stopping the server");
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
  // A server started here always gets a token, so a local .env with API_TOKEN cannot turn the run into 401s.
  const token = process.env.API_TOKEN || randomBytes(16).toString("hex");
  const runs: SystemRun[] = [];
  const notes: string[] = [];
  try {
    if (opts.urls !== undefined) {
      const origins = opts.urls.map((u) => u.origin);
      const ready = await waitReady(origins[0] as string);
      current = {
        ...placeholder(`--url ${origins.join(",")}`, "url", origins.length, origins, process.env.API_TOKEN),
        about: `${ready.groups ?? "?"} Raft groups`,
        stop: async () => undefined,
      };
      runs.push(await measure(current, planOf(opts), opts));
    } else if (opts.nodes.length === 0) {
      runs.push(await measure(await startSingle(token), planOf(opts), opts));
    } else {
      // The single process before and after the rest (the machine's load drifts); compared: the better of the two.
      const lockPlan = planOf({ ...opts, scenarios: [{ scenario: locks }] });
      if (opts.baseline) runs.push(await measure(await startSingle(token, ", before"), lockPlan, opts));
      for (const n of opts.nodes) runs.push(await measure(await startCluster(n, token), planOf(opts), opts));
      if (opts.etcd) {
        const version = etcdVersion();
        if (version === undefined) {
          const note = "etcd: no /usr/bin/etcd (apt-get install -y etcd-server): its row is skipped";
          notes.push(note);
          console.error(note);
        } else {
          const scenario = etcdLocks();
          const etcdPlan = [{ scenario, phases: phasesOf(scenario, opts.concurrency) }];
          runs.push(await measure(await startEtcdCluster(), etcdPlan, opts, false));
        }
      }
      if (opts.baseline) runs.push(await measure(await startSingle(token, ", after"), lockPlan, opts));
    }
  } catch (err) {
    console.error(err);
    if (current) {
      console.error(`\n--- ${current.name} output (tail) ---\n${current.log() || "(empty)"}`);
      await current.stop();
    }
    process.exitCode = 1;
    return;
  }
  const summary = runs.length > 1 || opts.all ? summarize(runs, opts) : { rows: [], targets: [] };
  if (opts.scaling) scalingTable(runs, opts);
  if (opts.json !== undefined) {
    const json = JSON.stringify(jsonReport(runs, opts, summary.targets, notes), null, 2);
    if (opts.json === "-") console.log(json);
    else {
      writeFileSync(opts.json, `${json}\n`);
      console.error(`JSON report: ${opts.json}`);
    }
  }
  process.exitCode = runs.some((r) => r.failed) ? 1 : 0;
}

/** The machine's 1, 5 and 15 minute load averages: other work running beside the bench shows here. */
const loadAverage = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");

const ratioFmt = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "-");

interface TargetVerdict {
  label: string;
  value: number;
  min: number;
  met: boolean;
}

/** ops/s of a phase of a run (every op of it together); NaN when it was not run. */
function rateOf(run: SystemRun | undefined, scenario: string, phase: string, c: number, seconds: number): number {
  const r = run?.results.find(
    (x) => x.scenario.name === scenario && x.phase.name === phase && x.phase.concurrency === c,
  );
  return r ? r.rec.summary(seconds).perSecond : Number.NaN;
}

/** One table over every system: lock ops/s side by side, and the issue's lock targets. */
function summarize(runs: SystemRun[], opts: Options): { rows: string[][]; targets: TargetVerdict[] } {
  const { seconds } = opts;
  const singles = runs.filter((r) => r.system.kind === "single");
  const etcd = runs.find((r) => r.system.kind === "etcd");
  const clusters = runs.filter((r) => r.system.kind === "cluster");
  const rows: string[][] = [];
  for (const run of runs) {
    for (const { scenario, phase, rec } of run.results) {
      if (scenario === noop) continue;
      const s = rec.summary(seconds);
      const ceiling = rateOf(run, noop.name, noop.name, phase.concurrency, seconds);
      rows.push([
        run.system.name,
        phase.name === scenario.name ? scenario.name : `${scenario.name} ${phase.name}`,
        String(phase.concurrency),
        fmt(s.perSecond),
        fmt(s.p50, 1),
        fmt(s.p95, 1),
        String(rec.errorCount()),
        Number.isFinite(ceiling) ? `${fmt((100 * s.perSecond) / ceiling)}%` : "",
      ]);
    }
  }
  say(
    `\n=== summary (one sitting; ${cpus().length} CPUs shared by every server and the client; ` +
      `load average at the end ${loadAverage()}) ===`,
  );
  say(table(["system", "phase", "conc", "ops/s", "p50 ms", "p95 ms", "errors", "% of no-op"], rows));

  const targets: TargetVerdict[] = [];
  const lockRate = (run: SystemRun | undefined, c: number) =>
    run?.system.kind === "etcd"
      ? rateOf(run, "etcd-locks", "etcd-locks", c, seconds)
      : rateOf(run, "locks", "locks", c, seconds);
  const single = singles.length > 0;
  /** The single process's better figure (before or after): the harder one to beat. */
  const singleRate = (c: number) => Math.max(...singles.map((r) => lockRate(r, c)));
  if (clusters.length > 0 && (single || etcd)) {
    const compare: string[][] = [];
    for (const c of opts.concurrency) {
      for (const cluster of clusters) {
        const mine = lockRate(cluster, c);
        compare.push([
          `${cluster.system.nodes} nodes`,
          String(c),
          fmt(mine),
          single ? fmt(singleRate(c)) : "",
          single ? ratioFmt(mine / singleRate(c)) : "",
          etcd ? fmt(lockRate(etcd, c)) : "",
          etcd ? `${fmt((100 * mine) / lockRate(etcd, c))}%` : "",
        ]);
        if (single && BASELINE_RATIO_AT.includes(c)) {
          const value = mine / singleRate(c);
          targets.push({
            label: `${cluster.system.name} locks c=${c} vs npm start (single process)`,
            value,
            min: BASELINE_RATIO_MIN,
            met: value >= BASELINE_RATIO_MIN,
          });
        }
        if (etcd && ETCD_SHARE_AT.includes(c)) {
          const value = (100 * mine) / lockRate(etcd, c);
          targets.push({
            label: `${cluster.system.name} locks c=${c} vs etcd (%)`,
            value,
            min: ETCD_SHARE_MIN,
            met: value >= ETCD_SHARE_MIN,
          });
        }
      }
    }
    say("\n=== locks: acquire + release ops/s, same client, same sitting ===");
    say(table(["cluster", "conc", "ops/s", "npm start (better)", "x npm start", "etcd", "% of etcd"], compare));
  }
  if (targets.length > 0) {
    say("\ntargets:");
    for (const t of targets) {
      const shown = t.label.endsWith("(%)")
        ? `${fmt(t.value, 1)}% (>= ${t.min}%)`
        : `${ratioFmt(t.value)} (>= ${t.min}x)`;
      say(`  ${t.label}: ${shown}: ${t.met ? "met" : "MISSED"}`);
    }
  }
  return { rows, targets };
}

/** `scaling`: ops/s of each phase at each cluster size (and its share of that cluster's no-op ceiling). */
function scalingTable(runs: SystemRun[], opts: Options): void {
  const clusters = runs.filter((r) => r.system.kind === "cluster");
  const keys: { scenario: string; phase: string; c: number }[] = [];
  for (const { scenario, phase } of clusters[0]?.results ?? []) {
    keys.push({ scenario: scenario.name, phase: phase.name, c: phase.concurrency });
  }
  const rows = keys.map(({ scenario, phase, c }) => [
    scenario === phase ? scenario : `${scenario} ${phase}`,
    String(c),
    ...clusters.map((run) => {
      const rate = rateOf(run, scenario, phase, c, opts.seconds);
      const ceiling = rateOf(run, noop.name, noop.name, c, opts.seconds);
      return scenario === noop.name ? fmt(rate) : `${fmt(rate)} (${fmt((100 * rate) / ceiling)}%)`;
    }),
  ]);
  say("\n=== scaling: ops/s (share of the same cluster's no-op ceiling) ===");
  say(table(["phase", "conc", ...clusters.map((r) => `${r.system.nodes} nodes`)], rows));
}

function jsonReport(runs: SystemRun[], opts: Options, targets: TargetVerdict[], notes: string[]) {
  const { seconds } = opts;
  const summary = (rec: Recorder, op?: string) => {
    const s = rec.summary(seconds, op);
    return { count: s.count, opsPerSecond: s.perSecond, p50Ms: s.p50, p95Ms: s.p95, p99Ms: s.p99 };
  };
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      client: `Node ${process.version}`,
      loadAverageAtEnd: loadavg(),
    },
    seconds,
    warmupSeconds: WARMUP_SECONDS,
    concurrency: opts.concurrency,
    notes,
    systems: runs.map(({ system, results, failed }) => ({
      ...system,
      failed,
      phases: results.map(({ scenario, phase, rec, checks }) => {
        const ceiling = rateOf({ system, results, failed }, noop.name, noop.name, phase.concurrency, seconds);
        const all = summary(rec);
        return {
          scenario: scenario.name,
          phase: phase.name,
          concurrency: phase.concurrency,
          ...all,
          shareOfNoop: scenario === noop ? undefined : all.opsPerSecond / ceiling,
          messagesPerSecond: phase.messagesOf ? rec.messageRate(seconds, phase.messagesOf) : undefined,
          hitPercent: phase.hitsOf ? hitRate(rec, phase.hitsOf) : undefined,
          ops: Object.fromEntries([...rec.latencies.keys()].map((op) => [op, summary(rec, op)])),
          errors: Object.fromEntries(rec.errors),
          checks,
        };
      }),
    })),
    targets,
  };
}

/** Prints the table, the errors, one summary line per phase, the checks and the targets; true when any op or check failed. */
function report(scenario: Scenario, seconds: number, results: Result[]): boolean {
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
  say(`\nno-op: ${noop.describe}\n${scenario.name}: ${scenario.describe}`);
  const legend = new Map(results.map(({ phase }) => [phase.name, phase.describe]));
  for (const [name, describe] of legend) if (describe !== undefined) say(`  ${name}: ${describe}`);
  const header = [
    ...["phase", "conc", "ops/s", ...(withMessages ? ["msgs/s"] : []), ...(withHits ? ["hit %"] : [])],
    ...["p50 ms", "p95 ms", "p99 ms"],
  ];
  say(`\n${table([...header, "errors", "% of no-op"], rows)}`);

  const withErrors = results.filter((r) => r.rec.errors.size > 0);
  if (withErrors.length > 0) {
    say("\nerrors (count, op, status and problem type; first body seen):");
    for (const { phase, rec } of withErrors) {
      for (const [key, count] of rec.errors) {
        const sample = rec.samples.get(key);
        say(`  ${phase.name} c=${phase.concurrency}: ${count} x ${key}${sample ? `  ${sample}` : ""}`);
      }
    }
  }

  say("");
  for (const { phase, rec } of results) {
    const base = ceiling(phase.concurrency);
    if (phase.name === noop.name || !base) continue;
    const s = rec.summary(seconds);
    const carried = phase.messagesOf
      ? `${fmt(rec.messageRate(seconds, phase.messagesOf))} msgs/s (${phase.messagesOf}) in `
      : "";
    const hitShare = phase.hitsOf ? `; ${fmt(hitRate(rec, phase.hitsOf), 1)}% of ${phase.hitsOf} hits` : "";
    say(
      `c=${phase.concurrency}: ${phase.name} ${carried}${fmt(s.perSecond)} ops/s (p50 ${fmt(s.p50, 2)} ms, ` +
        `p99 ${fmt(s.p99, 2)} ms) = ${share(s.perSecond, phase.concurrency)} of the no-op ceiling ` +
        `${fmt(base.perSecond)} req/s (p99 ${fmt(base.p99, 2)} ms); ${rec.errorCount()} errors${hitShare}`,
    );
  }

  const checked = results.filter((r) => r.checks.length > 0);
  if (checked.length > 0) {
    say("\nchecks:");
    for (const { phase, checks } of checked) {
      for (const c of checks) say(`  ${phase.name} c=${phase.concurrency}: ${c.ok ? "" : "FAILED: "}${c.note}`);
    }
  }

  const targets = results.flatMap(({ phase, rec }) =>
    (phase.targets ?? []).map((t) => verdict(phase, rec, t, seconds, ceiling(phase.concurrency)?.perSecond ?? 0)),
  );
  if (targets.length > 0) say(`\ntargets:\n${targets.join("\n")}`);
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
