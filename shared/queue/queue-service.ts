import type { GroupResult } from "../group/state.js";
import type { Entry } from "../raft/types.js";
import { encodeEnvelope } from "../replica/dedup.js";
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
  | { op: "receive"; queue: string; shards: number[]; max: number; visibilityMs?: number; consumer?: string }
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
    private readonly clock: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

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

  async handle(req: QueueRequest, requestId: string): Promise<QueueReply> {
    const now = this.clock();
    switch (req.op) {
      case "receive":
        return this.receive(req, requestId);
      case "wait":
        return { type: "waited", ready: await this.wait(req.queue, req.shards, req.timeoutMs) };
      case "stats": {
        await this.replica.read();
        const t = this.clock();
        return {
          type: "stats",
          shards: req.shards.map((shard) => ({ shard, ...this.table.stats(req.queue, shard, t) })),
        };
      }
      case "metrics": {
        const depths = [...this.table.depths(now)].map(([queue, d]) => ({ queue, ...d }));
        return { type: "metrics", totals: this.table.totals(), depths };
      }
      case "enqueue":
        return this.propose(
          { type: "enqueue", queue: req.queue, shard: req.shard, messages: req.messages, now },
          requestId,
        );
      case "ack":
        return this.propose(
          { type: "ack", queue: req.queue, shard: req.shard, receipts: req.receipts, now },
          requestId,
        );
      case "nack":
        return this.propose({ ...req, type: "nack", now }, requestId);
      case "extend":
        return this.propose({ ...req, type: "extend", now }, requestId);
      case "redrive":
        return this.propose({ ...req, type: "redrive", now }, requestId);
      case "configure":
        return this.propose({ ...req, type: "configure", now }, requestId);
    }
  }

  /** Receives shard by shard, skipping shards with nothing deliverable here (no empty writes). */
  private async receive(req: Extract<QueueRequest, { op: "receive" }>, requestId: string): Promise<QueueReply> {
    const messages: Delivery[] = [];
    for (const shard of req.shards) {
      const left = req.max - messages.length;
      if (left <= 0) break;
      if (!this.table.hasDeliverable(req.queue, shard, this.clock())) continue;
      const result = await this.propose(
        {
          type: "receive",
          queue: req.queue,
          shard,
          max: left,
          visibilityMs: req.visibilityMs,
          consumer: req.consumer,
          now: this.clock(),
        },
        // One id per shard: a retry of this request takes the same deliveries, not new ones.
        `${requestId}:${shard}`,
      );
      if (result.type === "received") messages.push(...result.messages);
    }
    return { type: "deliveries", messages };
  }

  /** Resolves true once one of `shards` has a deliverable message, or false after `timeoutMs`. */
  private async wait(queue: string, shards: number[], timeoutMs: number): Promise<boolean> {
    await this.replica.read();
    const visibleNow = () => shards.some((s) => this.table.hasDeliverable(queue, s, this.clock()));
    if (visibleNow()) return true;
    // Woken by an enqueue, nack or redrive that commits; or when a delay or visibility runs out.
    const now = this.clock();
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
    return visibleNow();
  }

  private async propose(cmd: QueueCommand, id: string): Promise<QueueResult> {
    const applied = await this.replica.propose(encodeEnvelope({ id, at: cmd.now, body: JSON.stringify(cmd) }));
    if (applied?.kind !== "queue") throw new Error("queue command applied as something else");
    return (applied as QueueApplied).result;
  }
}

function keyOf(queue: string, shard: number): string {
  return `${queue}\0${shard}`;
}
