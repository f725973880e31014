/**
 * Linearizability of the lock service, with the checker of the Raft simulator
 * (shared/sim/linearizability.ts) and the sequential lock model of the Workers tests
 * (test/workers/lock-model.ts): a few clients use resources of their own (`L0`, `L1`) with
 * try-locks, releases and GET views only, and leases far longer than a run, so the model needs
 * no clock. Every call and return gets its own instant in real-time order; an answer that never
 * came (lost, 503) leaves its operation pending. The direct fencing check of the same module runs
 * on that history too.
 */
import type { LockReply, LockRequest } from "../../../shared/locks/lock-service.js";
import type { LockMode } from "../../../shared/locks/types.js";
import type { Rand } from "../../../shared/raft/index.js";
import { checkOperations } from "../../../shared/sim/linearizability.js";
import {
  fencingViolations,
  type LockInput,
  type LockOperation,
  type LockOutput,
  lockModel,
} from "../../workers/lock-model.js";

export const LINEAR_RESOURCES = ["L0", "L1"];
/** Longer than any run: nothing expires. */
const TTL_MS = 3_600_000;

export class LinearLocks {
  private readonly history: LockOperation[] = [];
  private instant = 0;

  /** Runs one operation for `owner` of client `clientId` through `send` and records it. */
  async step(
    clientId: number,
    owner: string,
    rand: Rand,
    send: (req: LockRequest) => Promise<LockReply | undefined>,
  ): Promise<void> {
    const resource = rand.pick(LINEAR_RESOURCES);
    const pick = rand.int(10);
    const mode: LockMode = rand.chance(1, 2) ? "exclusive" : "shared";
    const input: LockInput =
      pick < 4
        ? { op: "acquire", resource, owner, mode }
        : pick < 7
          ? { op: "release", resource, owner }
          : { op: "view", resource };
    const req: LockRequest =
      input.op === "acquire"
        ? { op: "acquire", resource, owner, mode, ttlMs: TTL_MS, waitMs: 0 }
        : input.op === "release"
          ? { op: "release", resource, owner }
          : { op: "view", resource };
    const op: LockOperation = {
      clientId,
      input,
      call: ++this.instant,
      return: Number.POSITIVE_INFINITY,
      pending: true,
    };
    this.history.push(op);
    const output = observed(await send(req));
    if (output === undefined) return; // lost or 503: the outcome is unknown
    op.return = ++this.instant;
    op.output = output;
    op.pending = undefined;
  }

  get operations(): number {
    return this.history.length;
  }

  /** The violations found (none: linearizable, or the search gave up: see `unknown`). */
  check(groupOf: (resource: string) => number): { violations: string[]; unknown: boolean } {
    const violations = fencingViolations(this.history, groupOf).map((v) => `fencing (linear locks): ${v}`);
    const res = checkOperations(lockModel, this.history, { maxSteps: 500_000 });
    if (res.result === "illegal") violations.push(`linearizability (locks): ${res.explanation ?? "illegal"}`);
    return { violations, unknown: res.result === "unknown" };
  }
}

/** The model's view of an answer; undefined when it says nothing about the outcome. */
function observed(reply: LockReply | undefined): LockOutput | undefined {
  if (reply === undefined) return undefined;
  const holders = (hs: { owner: string; mode: LockMode }[]) => hs.map(({ owner, mode }) => ({ owner, mode }));
  switch (reply.type) {
    case "granted":
      return { type: "granted", mode: reply.mode, fencingToken: reply.fencingToken };
    case "conflict":
      return { type: "conflict", holders: holders(reply.holders) };
    case "released":
      return { type: "released" };
    case "notHolder":
      return { type: "notHolder" };
    case "view":
      return { type: "view", holders: holders(reply.view.holders) };
    default:
      return undefined;
  }
}
