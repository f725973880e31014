import type { GroupResult } from "../group/state.js";
import type { Entry } from "../raft/types.js";
import { encodeCommand } from "../replica/dedup.js";
import type { Replica } from "../replica/replica.js";
import type { QueueTable } from "./queue-table.js";
import type {
  Delivery,
  NewMessage,
  QueueApplied,
  QueueCommand,
  QueueResult,
  QueueTotals,
  ShardStats,
} from "./types.js";

/** What the Worker asks of the queue shards that live on one group (validated by the routes). */
export type QueueRequest =
  | { op: "enqueue"; queue: string; shard: number; messages: NewMessage[] }
  /** Takes up to `max` messages from `shards` of this group, in that order. Never waits. */
  | {
      op: "receive";
      queue: string;
      shards: number[];
      max: number;
      /** Stop once the bodies taken reach this many UTF-16 units (a keyed receive's answer is stored). */
      maxBytes?: number;
      visibilityMs?: number;
      consumer?: string;
    }
  /** Long polling: true as soon as one of `shards` has a visible message, false after `timeoutMs`. */
  | { op: "wait"; queue: string; shards: number[]; timeoutMs: number }
  | { op: "ack"; queue: string; shard: number; receipts: string[] }
  | { op: "nack"; queue: string; shard: number; receipts: string[]; delayMs?: number }
  | { op: "extend"; queue: string; shard: number; receipts: string[]; visibilityMs: number }
  | { op: "redrive"; queue: string; shard: number; max?: number }
  | { op: "configure"; queue: string; maxAttempts?: number; visibilityMs?: number }
  | { op: "stats"; queue: string; shards: number[] }
  /** This group's queue counters and depths, from the leader's state (no round trip: metrics). */
  | { op: "metrics" };

export type QueueReply =
  | QueueResult
  | { type: "deliveries"; messages: Delivery[] }
  | { type: "waited"; ready: boolean }
  | { type: "stats"; shards: (ShardStats & { shard: number })[] }
  | {
      type: "metrics";
      totals: QueueTotals;
      depths: { queue: string; visible: number; inflight: number; delayed: number }[];
    };

/**
 * The queue on one replica: stamps commands with the leader's clock, proposes them, and parks
 * long polls until an applied entry makes a message visible on one of their shards (no busy
 * loop). Pure: the Durable Object supplies the replica, the clock and the timers.
 */
export class QueueService {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly replica: Replica<GroupResult>,
    private readonly table: QueueTable,
    /** This peer's own clock; commands carry group time (Replica.groupNow), answers wall time. */
    private readonly clock: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
    /** Was a command with this request id applied (recently)? A retry must then be proposed again. */
    private readonly applied: (requestId: string) => boolean = () => false,
  ) {}

  /** Group time now (valid on a serving leader). */
  private now(): number {
    return this.replica.groupNow(this.clock());
  }

  /** Wire as part of the replica's `onApply`: wakes the long polls of shards that got messages. */
  onApply(_entry: Entry, applied: GroupResult): void {
    if (applied?.kind !== "queue") return;
    for (const w of applied.wake) {
      const key = keyOf(w.queue, w.shard);
      const waiting = this.waiters.get(key);
      if (waiting === undefined) continue;
      this.waiters.delete(key);
      for (const wake of waiting) wake();
    }
  }

  /** `signal`: the caller gave up; nothing is proposed after that (see LockService.handle). */
  async handle(req: QueueRequest, requestId: string, signal?: AbortSignal): Promise<QueueReply> {
    switch (req.op) {
      case "receive":
        return this.receive(req, requestId, signal);
      case "wait":
        return { type: "waited", ready: await this.wait(req.queue, req.shards, req.timeoutMs) };
      case "stats": {
        await this.replica.read();
        await this.replica.whenServing();
        const t = this.now();
        return {
          type: "stats",
          shards: req.shards.map((shard) => ({ shard, ...this.table.stats(req.queue, shard, t) })),
        };
      }
      case "metrics": {
        // Metrics may be a little stale: the leader's state without a round trip.
        const depths = [...this.table.depths(this.table.now)].map(([queue, d]) => ({ queue, ...d }));
        return { type: "metrics", totals: this.table.totals(), depths };
      }
      case "enqueue":
        return this.propose(
          { type: "enqueue", queue: req.queue, shard: req.shard, messages: req.messages },
          requestId,
          signal,
        );
      case "ack":
        return this.propose(
          { type: "ack", queue: req.queue, shard: req.shard, receipts: req.receipts },
          requestId,
          signal,
        );
      case "nack": {
        const { op: _op, ...fields } = req;
        return this.propose({ ...fields, type: "nack" }, requestId, signal);
      }
      case "extend": {
        const { op: _op, ...fields } = req;
        return this.propose({ ...fields, type: "extend" }, requestId, signal);
      }
      case "redrive": {
        const { op: _op, ...fields } = req;
        return this.propose({ ...fields, type: "redrive" }, requestId, signal);
      }
      case "configure": {
        const { op: _op, ...fields } = req;
        return this.propose({ ...fields, type: "configure" }, requestId, signal);
      }
    }
  }

  /**
   * Receives shard by shard. A shard with nothing deliverable is skipped without a write, but
   * only when skipping cannot hide anything: this leader serves (it has applied every write
   * acknowledged before its term), and the shard's receive was never applied under this request
   * id (a retry must be proposed again, so that it answers with the deliveries of the first try).
   */
  private async receive(
    req: Extract<QueueRequest, { op: "receive" }>,
    requestId: string,
    signal?: AbortSignal,
  ): Promise<QueueReply> {
    await this.replica.whenServing();
    const messages: Delivery[] = [];
    let bytes = 0;
    for (const shard of req.shards) {
      const left = req.max - messages.length;
      if (left <= 0) break;
      if (req.maxBytes !== undefined && bytes >= req.maxBytes) break;
      // One id per shard: a retry of this request takes the same deliveries, not new ones.
      const id = `${requestId}:${shard}`;
      if (this.replica.servesReads() && !this.applied(id) && !this.table.hasDeliverable(req.queue, shard, this.now())) {
        continue;
      }
      const result = await this.propose(
        {
          type: "receive",
          queue: req.queue,
          shard,
          max: left,
          ...(req.maxBytes !== undefined ? { maxBytes: req.maxBytes - bytes } : {}),
          visibilityMs: req.visibilityMs,
          consumer: req.consumer,
        },
        id,
        signal,
      );
      if (result.type !== "received") continue;
      for (const m of result.messages) {
        messages.push({ ...m, enqueuedAt: this.replica.wallTime(m.enqueuedAt) });
        bytes += m.body.length;
      }
    }
    return { type: "deliveries", messages };
  }

  /** Resolves true once one of `shards` has a deliverable message, or false after `timeoutMs`. */
  private async wait(queue: string, shards: number[], timeoutMs: number): Promise<boolean> {
    await this.replica.read();
    await this.replica.whenServing();
    const visibleNow = () => shards.some((s) => this.table.hasDeliverable(queue, s, this.now()));
    if (visibleNow()) return true;
    // Woken by an enqueue, nack or redrive that commits; or when a delay or visibility runs out.
    const now = this.now();
    const soonest = Math.min(...shards.map((s) => this.table.nextVisibleAt(queue, s, now) ?? Number.POSITIVE_INFINITY));
    const sleepMs = Math.max(0, Math.min(timeoutMs, soonest - now));
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const keys = shards.map((s) => keyOf(queue, s));
    for (const k of keys) {
      const set = this.waiters.get(k) ?? new Set();
      set.add(wake);
      this.waiters.set(k, set);
    }
    try {
      await Promise.race([woken, this.sleep(sleepMs)]);
    } finally {
      for (const k of keys) this.waiters.get(k)?.delete(wake);
    }
    return this.replica.servesReads() && visibleNow();
  }

  /** Proposes a command stamped with group time, once this leader serves (see LockService.propose). */
  private async propose(
    fields: DistributiveOmit<QueueCommand, "now">,
    id: string,
    signal?: AbortSignal,
  ): Promise<QueueResult> {
    await this.replica.whenServing();
    signal?.throwIfAborted();
    const cmd = { ...fields, now: this.now() } as QueueCommand;
    const applied = await this.replica.propose(encodeCommand(id, cmd));
    if (applied?.kind !== "queue") throw new Error("queue command applied as something else");
    return (applied as QueueApplied).result;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function keyOf(queue: string, shard: number): string {
  return `${queue}\0${shard}`;
}
