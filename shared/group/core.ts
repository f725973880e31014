import {
  type CacheNodes,
  DEFAULT_CACHE_LEASE_MS,
  DirectoryService,
  ORDER_TIMEOUT_MS,
} from "../cache/directory-service.js";
import { IdempotencyService } from "../idempotency/service.js";
import { FRESH_MS, LockService } from "../locks/lock-service.js";
import { QueueService } from "../queue/queue-service.js";
import type { NodeId, Rand } from "../raft/index.js";
import { Deduplicated } from "../replica/dedup.js";
import { type DurableLog, Replica, type Transport } from "../replica/replica.js";
import { type GroupResult, GroupState, type StoredResult } from "./state.js";

/** Everything one peer of one group runs: the Raft host loop and the services on top of it. */
export interface GroupCore {
  replica: Replica<GroupResult>;
  state: GroupState;
  locks: LockService;
  queues: QueueService;
  idempotency: IdempotencyService;
  cache: DirectoryService;
  /**
   * Leader work on every alarm: expire what is due, keep group time fresh while deadlines are
   * pending. A quiesced leader whose deadline has come wakes for it.
   */
  housekeeping: () => void;
  /**
   * When housekeeping next has work, on this peer's clock: the next lease or wait end, or the
   * next time stamp while deadlines are pending; undefined when nothing is pending.
   */
  nextWakeup: () => number | undefined;
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
  /** The drift bound of peers' clocks (default MAX_DRIFT_PPM). */
  maxDriftPpm?: number;
  /** How the cache directory reaches cache nodes (default: none can be reached). */
  cacheNodes?: CacheNodes;
  /** S leases of the cache directory (default DEFAULT_CACHE_LEASE_MS). */
  cacheLeaseMs?: number;
  /** Quiesce when idle (Replica's `quiesce`): the host must then arm no alarm while nextWakeup() is +Infinity. */
  quiesce?: boolean;
}

/**
 * How far a peer's clock rate may be off, in parts per million. Clocks kept by NTP drift tens of
 * ppm; 200 ppm lengthens a 30 s lease by 6 ms and keeps it whole on a clock that fast.
 */
export const MAX_DRIFT_PPM = 200;

/** A group's replicated state behind the exactly-once layer: what every replica applies. */
export function createGroupMachine(): { state: GroupState; machine: Deduplicated<GroupResult, StoredResult> } {
  const state = new GroupState();
  // Retried requests apply once; a repeat is answered from a compact record and the state now.
  const machine = new Deduplicated(state, {
    compact: (result: GroupResult) => state.compact(result),
    replay: (stored: StoredResult) => state.replay(stored),
  });
  return { state, machine };
}

/**
 * Builds one peer's core from its durable log. The Durable Object (objects/raft-peer.ts) and the
 * whole-system simulator (test/sim/) both build peers here, so they run the same code.
 */
export function createGroupCore(o: GroupCoreOptions): GroupCore {
  const { state, machine } = createGroupMachine();
  let locks: LockService | undefined;
  let queues: QueueService | undefined;
  let nextWakeup: () => number | undefined = () => undefined;
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
    clock: o.clock,
    machineTime: () => machine.time,
    maxDriftPpm: o.maxDriftPpm ?? MAX_DRIFT_PPM,
    onApply: (entry, applied) => {
      locks?.onApply(entry, applied);
      queues?.onApply(entry, applied);
    },
    quiesce: o.quiesce ?? false,
    nextDeadline: () => nextWakeup(),
  });
  queues = new QueueService(replica, state.queues, o.clock, o.sleep, (id) => machine.has(id));
  locks = new LockService(replica, state.locks, o.clock, o.sleep, o.onWaiting);
  const idempotency = new IdempotencyService(replica, o.clock);
  const cache = new DirectoryService(
    replica,
    state.cache,
    o.clock,
    o.sleep,
    o.cacheNodes ?? { order: () => Promise.reject(new Error("no cache nodes")) },
    { leaseMs: o.cacheLeaseMs ?? DEFAULT_CACHE_LEASE_MS, orderTimeoutMs: ORDER_TIMEOUT_MS },
  );
  const queueTable = state.queues;
  const lockService = locks;
  nextWakeup = () => {
    if (!replica.anchored()) return undefined;
    // In group time: the next lease or wait end, and while any deadline is pending the next time
    // stamp (lockService.housekeeping), which a quiesced leader must also wake for.
    let at = lockService.nextDeadline();
    if (at !== undefined || queueTable.nextDeadline(replica.lastCommandTime()) !== undefined) {
      at = Math.min(at ?? Number.POSITIVE_INFINITY, replica.lastCommandTime() + FRESH_MS);
    }
    // The alarm needs this peer's clock.
    return at === undefined ? undefined : replica.localAt(at);
  };
  let waitingToServe = false;
  const housekeeping = (): void => {
    // (The queue table's own time moves only with queue commands: its deadlines count from the group's.)
    const pending =
      lockService.nextDeadline() !== undefined || queueTable.nextDeadline(replica.lastCommandTime()) !== undefined;
    lockService.housekeeping(pending);
  };
  return {
    replica,
    state,
    locks,
    queues,
    idempotency,
    cache,
    housekeeping: () => {
      const due = nextWakeup();
      if (due !== undefined && due <= o.clock()) replica.wake();
      if (replica.isQuiesced()) return; // nothing due
      // A leader just woken serves once a majority has answered it: housekeeping runs then.
      if (replica.isLeader() && !replica.servesReads() && replica.anchored()) {
        if (waitingToServe) return;
        waitingToServe = true;
        replica.whenServing().then(
          () => {
            waitingToServe = false;
            housekeeping();
          },
          () => {
            waitingToServe = false;
          },
        );
        return;
      }
      housekeeping();
    },
    nextWakeup,
  };
}
