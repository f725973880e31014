// The closed-loop load generator: N workers, each awaiting its previous op before starting the next.
import { setTimeout as sleep } from "node:timers/promises";
import type { Client, Reply } from "./http.js";
import { Recorder } from "./stats.js";

/**
 * How many messages a 2xx reply carried (recorded with it, for messages/s); a string instead counts
 * the reply as an error with that outcome (a 2xx answer that is wrong, e.g. an ack that acked fewer).
 */
export type Messages = (reply: Reply) => number | string;

/** Times one HTTP op and records it; resolves to the reply, or undefined when the request threw. */
export type Timed = (op: string, call: () => Promise<Reply>, messages?: Messages) => Promise<Reply | undefined>;

/** One round of a worker's loop (may make several timed ops, e.g. acquire then release). */
export type Iteration = (worker: number, i: number, timed: Timed) => Promise<void>;

/** A workload `npm run bench -- <name>` can run; compared against the no-op ceiling at each concurrency. */
export interface Scenario {
  name: string;
  /** One line saying what a worker does, printed above the results. */
  describe: string;
  /** --concurrency when it is not given (else the harness default). */
  defaultConcurrency?: number[];
  /** Without `phases`: one phase per concurrency, named after the scenario, each worker running this. */
  iteration?(client: Client): Iteration;
  /** Several kinds of phase (queue: batches, end to end, single messages), given --concurrency. */
  phases?(concurrency: number[]): Phase[];
}

/** One measured run of `concurrency` workers; a row of the results. */
export interface Phase {
  name: string;
  concurrency: number;
  /** One line for the legend above the results. */
  describe?: string;
  iteration(client: Client): Iteration;
  /** The op whose messages make the phase's messages/s (queue end to end: "ack"); none for no messages/s. */
  messagesOf?: string;
  /** Figures the phase should reach, checked after the table. */
  targets?: Target[];
  /**
   * The op whose replies are cache hits or misses (cache GET): its Messages callback answers 1 for
   * a hit and 0 for a miss, and the table gets a hit % column (hits / that op's successful replies).
   */
  hitsOf?: string;
  /** Runs before the phase's warm-up, unmeasured (e.g. writing the keys it reads); throws to stop the run. */
  prepare?(client: Client): Promise<void>;
  /** Runs after the phase: findings for the report (e.g. server-side counters against the replies). */
  check?(client: Client): Promise<Check[]>;
}

/** One finding of a phase's `check`; a finding that is not `ok` fails the run, like an error. */
export interface Check {
  ok: boolean;
  note: string;
}

/** A goal for one phase: `messages/s` of `op` ≥ `min`, its ops/s ≥ `min` % of the no-op ceiling, or its p95 in ms < `max`. */
export type Target = { op: string; label: string } & (
  | { metric: "messages/s"; min: number }
  | { metric: "% of no-op"; min: number }
  | { metric: "p95"; max: number }
);

export function phasesOf(scenario: Scenario, concurrency: number[]): Phase[] {
  if (scenario.phases) return scenario.phases(concurrency);
  const { iteration } = scenario;
  if (iteration === undefined) throw new Error(`scenario ${scenario.name} has neither phases nor iteration`);
  return concurrency.map((c) => ({ name: scenario.name, concurrency: c, iteration: (client) => iteration(client) }));
}

export interface PhaseOptions {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
}

const now = () => process.hrtime.bigint();
const NS_PER_MS = 1_000_000;

/**
 * Runs `concurrency` workers for warm-up + `seconds`, then stops: no worker starts an op after the end.
 * Only ops that complete inside the measured window count, so ops/s = count / seconds.
 */
export async function runPhase(iteration: Iteration, opts: PhaseOptions): Promise<Recorder> {
  const rec = new Recorder();
  const from = now() + BigInt(Math.round(opts.warmupSeconds * 1000)) * BigInt(NS_PER_MS);
  const until = from + BigInt(Math.round(opts.seconds * 1000)) * BigInt(NS_PER_MS);

  const timed: Timed = async (op, call, messages) => {
    const start = now();
    let reply: Reply | undefined;
    let thrown: unknown;
    try {
      reply = await call();
    } catch (err) {
      thrown = err;
    }
    const end = now();
    if (end >= from && end <= until) {
      if (reply === undefined) rec.fail(op, errorCode(thrown));
      else if (reply.status < 200 || reply.status >= 300) rec.fail(op, reply.outcome, reply.body);
      else {
        const n = messages?.(reply) ?? 0;
        if (typeof n === "string") rec.fail(op, n, JSON.stringify(reply.json));
        else rec.ok(op, Number(end - start) / NS_PER_MS, n);
      }
    }
    // A refused connection fails in microseconds: back off rather than spin the CPU the server needs.
    if (reply === undefined) await sleep(10);
    return reply;
  };

  const worker = async (w: number) => {
    for (let i = 0; now() < until; i++) await iteration(w, i, timed);
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  return rec;
}

function errorCode(err: unknown): string {
  if (err && typeof err === "object") {
    if ("code" in err && typeof err.code === "string") return err.code;
    if ("name" in err && typeof err.name === "string") return err.name;
  }
  return String(err);
}
