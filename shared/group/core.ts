import { IdempotencyService } from "../idempotency/service.js";
import { LockService } from "../locks/lock-service.js";
import { QueueService } from "../queue/queue-service.js";
import type { NodeId, Rand } from "../raft/index.js";
import { Deduplicated } from "../replica/dedup.js";
import { type DurableLog, Replica, type Transport } from "../replica/replica.js";
import { type GroupResult, GroupState } from "./state.js";

/** Everything one peer of one group runs: the Raft host loop and the services on top of it. */
export interface GroupCore {
  replica: Replica<GroupResult>;
  state: GroupState;
  locks: LockService;
  queues: QueueService;
  idempotency: IdempotencyService;
}

export interface GroupCoreOptions {
  id: NodeId;
  storage: DurableLog;
  transport: Transport;
  rand: Rand;
  tickMs: number;
  compactEvery: number;
  /** This peer's own clock (wall time, ms): the Durable Object's Date.now(), or a simulated one. */
  clock: () => number;
  sleep: (ms: number) => Promise<void>;
  defer: (fn: () => void) => void;
  whenDurable?: () => Promise<void>;
  /** Told whenever a lock request starts waiting (the cross-group deadlock detector should look). */
  onWaiting?: () => void;
}

/**
 * Builds one peer's core from its durable log. The Durable Object (objects/raft-peer.ts) and the
 * whole-system simulator (test/sim/) both build peers here, so they run the same code.
 */
export function createGroupCore(o: GroupCoreOptions): GroupCore {
  const state = new GroupState();
  // Retried requests apply once; a repeat gets the first answer without re-firing its events.
  const machine = new Deduplicated(state, {
    replay: (first): GroupResult =>
      first === null
        ? null
        : first.kind === "lock"
          ? { ...first, events: [] }
          : first.kind === "queue"
            ? { ...first, wake: [] }
            : first,
  });
  let locks: LockService | undefined;
  let queues: QueueService | undefined;
  const replica = new Replica<GroupResult>({
    id: o.id,
    storage: o.storage,
    transport: o.transport,
    machine,
    rand: o.rand,
    tickMs: o.tickMs,
    electionTicks: 10,
    heartbeatTicks: 2,
    compactEvery: o.compactEvery,
    defer: o.defer,
    whenDurable: o.whenDurable,
    now: o.clock(),
    onApply: (entry, applied) => {
      locks?.onApply(entry, applied);
      queues?.onApply(entry, applied);
    },
  });
  queues = new QueueService(replica, state.queues, o.clock, o.sleep);
  locks = new LockService(replica, state.locks, o.clock, o.sleep, o.onWaiting);
  const idempotency = new IdempotencyService(replica, o.clock);
  return { replica, state, locks, queues, idempotency };
}
