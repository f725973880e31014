// syncctl bench locks|queue|cache: a closed-loop load of -c workers for --seconds, through the client
// (its retries included: this is the latency an application sees), printing ops/s and p50/p99 per op.
// The bookkeeping (Recorder, percentiles, the table) is the HTTP benchmarks' own, bench/stats.ts.
import { type Command, Option } from "commander";
import { fmt, Recorder, type Summary } from "../../bench/stats.js";
import type { SyncClient } from "../../client/index.js";
import type { Context } from "../context.js";
import { example } from "../help.js";
import { problemName, problemOf, table } from "../output.js";
import { positiveInteger } from "../values.js";

/** Times one call and records it under `op`; undefined when it failed (recorded as an error). */
export type Timed = <T>(op: string, call: () => Promise<T>) => Promise<T | undefined>;

export interface Scenario {
  name: string;
  describe: string;
  /** One round of one worker; `run` names what this run creates, so runs never share a lock or a queue. */
  iteration(client: SyncClient, run: string, worker: number, i: number, timed: Timed): Promise<void>;
  /** Removes what the run created (best effort, unmeasured). */
  cleanup?(client: SyncClient, run: string): Promise<void>;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "locks",
    describe: "each worker acquires and releases a lock of its own (no contention)",
    async iteration(client, run, worker, _i, timed) {
      const resource = `syncctl-bench/${run}/${worker}`;
      const owner = `syncctl-bench-${run}-${worker}`;
      if ((await timed("acquire", () => client.locks.acquire(resource, { owner, ttlMs: 10_000 }))) === undefined)
        return;
      await timed("release", () => client.locks.release(resource, { owner }));
    },
  },
  {
    name: "queue",
    describe: "each worker sends one message, receives one and acks it, on one queue",
    async iteration(client, run, worker, i, timed) {
      const queue = `syncctl-bench-${run}`;
      await timed("send", () => client.queues.send(queue, [{ body: { worker, i } }]));
      const received = await timed("receive", () => client.queues.receive(queue, { max: 1 }));
      const receipts = (received ?? []).map((m) => m.receipt);
      if (receipts.length > 0) await timed("ack", () => client.queues.ack(queue, receipts));
    },
    async cleanup(client, run) {
      await client.queues.delete(`syncctl-bench-${run}`);
    },
  },
  {
    name: "cache",
    describe: "each worker writes one of 8 keys of its own, then reads it",
    async iteration(client, run, worker, i, timed) {
      const key = `syncctl-bench/${run}/${worker}/${i % 8}`;
      await timed("put", () => client.cache.put(key, { worker, i }));
      await timed("get", () => client.cache.get(key));
    },
  },
];

export interface BenchOptions {
  concurrency: number;
  seconds: number;
}

export interface OpResult {
  op: string;
  count: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface BenchResult {
  scenario: string;
  concurrency: number;
  seconds: number;
  ops: OpResult[];
  total: OpResult;
  /** `"<op> <problem>"` → count, e.g. `"acquire no-quorum": 3`. */
  errors: Record<string, number>;
}

/** Runs `scenario`; throws the first error when not a single op succeeded (the service is down, say). */
export async function runBench(
  scenario: Scenario,
  client: SyncClient,
  options: BenchOptions,
  clock: () => number = () => performance.now(),
): Promise<BenchResult> {
  const recorder = new Recorder();
  let firstError: unknown;
  const timed: Timed = async (op, call) => {
    const start = clock();
    try {
      const value = await call();
      recorder.ok(op, clock() - start);
      return value;
    } catch (err) {
      firstError ??= err;
      recorder.fail(op, problemName(problemOf(err)));
      return undefined;
    }
  };
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  const start = clock();
  const deadline = start + options.seconds * 1000;
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, worker) => {
      for (let i = 0; clock() < deadline; i++) await scenario.iteration(client, run, worker, i, timed);
    }),
  );
  const seconds = (clock() - start) / 1000;
  await scenario.cleanup?.(client, run).catch(() => {});
  if (recorder.latencies.size === 0 && firstError !== undefined) throw firstError;

  const errorsOf = (op?: string) =>
    [...recorder.errors].filter(([key]) => op === undefined || key.startsWith(`${op} `)).reduce((n, [, c]) => n + c, 0);
  const opResult = (op: string, s: Summary, errors: number): OpResult => ({
    op,
    count: s.count,
    perSecond: s.perSecond,
    p50Ms: s.p50,
    p99Ms: s.p99,
    errors,
  });
  const names = [
    ...new Set([...recorder.latencies.keys(), ...[...recorder.errors.keys()].map((k) => k.split(" ")[0] ?? k)]),
  ];
  return {
    scenario: scenario.name,
    concurrency: options.concurrency,
    seconds,
    ops: names.map((op) => opResult(op, recorder.summary(seconds, op), errorsOf(op))),
    total: opResult("total", recorder.summary(seconds), errorsOf()),
    errors: Object.fromEntries(recorder.errors),
  };
}

export function benchText(result: BenchResult, describe: string): string {
  const row = (r: OpResult) => [
    r.op,
    String(r.count),
    fmt(r.perSecond),
    fmt(r.p50Ms, 1),
    fmt(r.p99Ms, 1),
    String(r.errors),
  ];
  const lines = [
    `bench ${result.scenario}: ${describe}; ${result.concurrency} workers for ${fmt(result.seconds, 1)} s`,
    "",
    table(["OP", "COUNT", "OPS/S", "P50-MS", "P99-MS", "ERRORS"], [...result.ops.map(row), row(result.total)]),
  ];
  const errors = Object.entries(result.errors);
  if (errors.length > 0) lines.push("", "errors:", ...errors.map(([key, n]) => `  ${key}: ${n}`));
  return lines.join("\n");
}

export function registerBench(program: Command, ctx: Context): void {
  const bench = program.command("bench").description("measure ops/s and latency through the client");
  for (const scenario of SCENARIOS) {
    bench
      .command(scenario.name)
      .description(`${scenario.describe}; prints ops/s and p50/p99 latency per op`)
      .addOption(new Option("-c, --concurrency <n>", "concurrent workers").argParser(positiveInteger).default(8))
      .addOption(new Option("--seconds <n>", "how long to run").argParser(positiveInteger).default(10))
      .addHelpText("after", example(`syncctl bench ${scenario.name} -c 16 --seconds 30`))
      .action(async (o: BenchOptions) => {
        const result = await runBench(scenario, ctx.client, o);
        ctx.out.result(result, () => benchText(result, scenario.describe));
      });
  }
}
