import type { GroupResult } from "../group/state.js";
import {
  copyHistogram,
  emptyHistogram,
  type HistogramData,
  observe,
  WAIT_BUCKETS_SECONDS,
} from "../metrics/histogram.js";
import type { Entry } from "../raft/types.js";
import { encodeCommand } from "../replica/dedup.js";
import type { Replica } from "../replica/replica.js";
import { parseReceipt } from "./placement.js";
import type { QueueTable } from "./queue-table.js";
import type {
  Delivery,
  NewMessage,
  Peeked,
  QueueApplied,
  QueueCommand,
  QueueResult,
  QueueTotals,
  ShardStats,
  Wake,
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
  /** Up to `max` visible messages of `shards`, in that order, without delivering them (a read). */
  | { op: "peek"; queue: string; shards: number[]; max: number }
  /**
   * Every queue this group knows, with its counts summed over its shards here (a read). `stale`:
   * from this leader's state, with no quorum round and without waking a quiet group.
   */
  | { op: "list"; stale?: boolean }
  | { op: "purge"; queue: string; shard: number }
  | { op: "delete"; queue: string }
  /** This group's queue counters and depths, from the leader's state (no round trip: metrics). */
  | { op: "metrics" };

export type QueueReply =
  | QueueResult
  | { type: "deliveries"; messages: Delivery[] }
  | { type: "waited"; ready: boolean }
  | { type: "stats"; shards: (ShardStats & { shard: number })[] }
  | { type: "peeked"; messages: Peeked[] }
  | { type: "queues"; queues: (ShardStats & { queue: string })[] }
  | {
      type: "metrics";
      totals: QueueTotals;
      depths: { queue: string; visible: number; inflight: number; delayed: number }[];
      /** Per queue (every queue this replica has seen a command of): counters and processing times. */
      queues: QueueMetrics[];
    };

/** One queue's counters on one group, as one replica counted them (see QueueCounters). */
export interface QueueCounts {
  /** New messages stored (duplicates not counted). */
  enqueued: number;
  /** Deliveries by receive, first ones and repeated ones. */
  dequeued: number;
  /** Deliveries of a message delivered before (included in `dequeued`). */
  redelivered: number;
  acked: number;
  /** Messages moved to `<queue>.dlq` by a receive past maxAttempts. */
  deadLettered: number;
  /** Messages moved back from `<queue>.dlq` by redrive. */
  redriven: number;
}

export interface QueueMetrics {
  queue: string;
  counts: QueueCounts;
  /** From a delivery to its ack, both served by this leader, in seconds (leader memory only). */
  processingSeconds: HistogramData;
}

/** Deliveries whose time QueueService remembers for the processing time at most (the oldest is forgotten past it). */
const MAX_TRACKED_DELIVERIES = 20_000;

/**
 * Per-queue counters, kept by every replica as it applies entries (QueueService.onApply): the same
 * on every peer that applied the same entries, so a leader change does not reset them; in memory
 * only, so a peer that restarts counts again from zero (a new leader's values may then be lower).
 * (QueueTable's own totals are exact across restarts but not per queue.)
 *
 * Exactly once per effect: a retried command that the exactly-once layer answers again comes back
 * with no wakes, while every real enqueue, ack, dead-lettering or redrive that moved a message
 * wakes its shard; deliveries count once by their group-wide delivery number, which only grows.
 */
export class QueueCounters {
  private readonly byQueue = new Map<string, QueueCounts>();
  private lastDelivery = 0;

  count(r: QueueResult, wake: readonly Wake[]): void {
    const c = this.of(r.queue);
    const real = wake.length > 0;
    switch (r.type) {
      case "enqueued":
        if (real) c.enqueued += r.messages.filter((m) => !m.duplicate).length;
        return;
      case "received":
        for (const m of r.messages) {
          const delivery = parseReceipt(m.receipt)?.delivery ?? 0;
          if (delivery <= this.lastDelivery) continue;
          this.lastDelivery = delivery;
          c.dequeued++;
          if (m.attempts > 1) c.redelivered++;
        }
        if (real) c.deadLettered += r.deadLettered;
        return;
      case "acked":
        if (real) c.acked += r.acked;
        return;
      case "redriven":
        if (real) c.redriven += r.moved;
        return;
      default:
        return; // known from now on, at 0
    }
  }

  of(queue: string): QueueCounts {
    let c = this.byQueue.get(queue);
    if (c === undefined) {
      c = { enqueued: 0, dequeued: 0, redelivered: 0, acked: 0, deadLettered: 0, redriven: 0 };
      this.byQueue.set(queue, c);
    }
    return c;
  }

  queues(): string[] {
    return [...this.byQueue.keys()];
  }
}

/**
 * The queue on one replica: stamps commands with the leader's clock, proposes them, and parks
 * long polls until an applied entry makes a message visible on one of their shards (no busy
 * loop). Pure: the Durable Object supplies the replica, the clock and the timers.
 */
export class QueueService {
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Counted on every replica as entries apply (see QueueCounters). */
  readonly counters = new QueueCounters();
  /** Leader memory: when each delivery this leader answered was made (its clock), by receipt. */
  private readonly deliveredAt = new Map<string, { queue: string; at: number }>();
  /** Leader memory: delivery → ack times by queue (they start again when leadership moves). */
  private readonly processing = new Map<string, HistogramData>();

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
    this.counters.count(applied.result, applied.wake);
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
      case "peek": {
        await this.replica.read();
        await this.replica.whenServing();
        const t = this.now();
        const messages: Peeked[] = [];
        for (const shard of req.shards) {
          const left = req.max - messages.length;
          if (left <= 0) break;
          for (const m of this.table.peek(req.queue, shard, t, left)) {
            messages.push({ ...m, enqueuedAt: this.replica.wallTime(m.enqueuedAt) });
          }
        }
        return { type: "peeked", messages };
      }
      case "list": {
        if (req.stale !== true) {
          await this.replica.read();
          await this.replica.whenServing();
        }
        const now = req.stale === true ? this.replica.staleTime(this.clock(), this.table.now) : this.now();
        const queues = [...this.table.list(now)].map(([queue, s]) => ({ queue, ...s }));
        return { type: "queues", queues };
      }
      case "purge":
        return this.propose({ type: "purge", queue: req.queue, shard: req.shard }, requestId, signal);
      case "delete":
        return this.propose({ type: "delete", queue: req.queue }, requestId, signal);
      case "metrics": {
        // Metrics may be a little stale: the leader's state without a round trip.
        const depths = [...this.table.depths(this.table.now)].map(([queue, d]) => ({ queue, ...d }));
        return { type: "metrics", totals: this.table.totals(), depths, queues: this.queueMetrics() };
      }
      case "enqueue":
        return this.propose(
          { type: "enqueue", queue: req.queue, shard: req.shard, messages: req.messages },
          requestId,
          signal,
        );
      case "ack": {
        const result = await this.propose(
          { type: "ack", queue: req.queue, shard: req.shard, receipts: req.receipts },
          requestId,
          signal,
        );
        if (result.type === "acked") this.acked(req.receipts, result.acked);
        return result;
      }
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
      const at = this.clock();
      for (const m of result.messages) {
        this.delivered(m.receipt, req.queue, at);
        messages.push({ ...m, enqueuedAt: this.replica.wallTime(m.enqueuedAt) });
        bytes += m.body.length;
      }
    }
    return { type: "deliveries", messages };
  }

  private delivered(receipt: string, queue: string, at: number): void {
    if (this.deliveredAt.size >= MAX_TRACKED_DELIVERIES) {
      this.deliveredAt.delete(this.deliveredAt.keys().next().value as string);
    }
    this.deliveredAt.set(receipt, { queue, at });
  }

  /**
   * An ack of `receipts` acked `acked` of them. When all were live, each one this leader delivered
   * gives a processing time; when some were stale it is not known which, so none is observed.
   */
  private acked(receipts: readonly string[], acked: number): void {
    const unique = new Set(receipts);
    const now = this.clock();
    for (const r of unique) {
      const d = this.deliveredAt.get(r);
      if (d === undefined) continue;
      this.deliveredAt.delete(r);
      if (acked === unique.size) observe(this.processingOf(d.queue), Math.max(0, now - d.at) / 1000);
    }
  }

  private processingOf(queue: string): HistogramData {
    let h = this.processing.get(queue);
    if (h === undefined) {
      h = emptyHistogram(WAIT_BUCKETS_SECONDS);
      this.processing.set(queue, h);
    }
    return h;
  }

  /** Every queue this replica knows of, with its counters and this leader's processing times. */
  private queueMetrics(): QueueMetrics[] {
    const names = new Set([...this.counters.queues(), ...this.processing.keys()]);
    return [...names].map((queue) => ({
      queue,
      counts: { ...this.counters.of(queue) },
      processingSeconds: copyHistogram(this.processing.get(queue) ?? emptyHistogram(WAIT_BUCKETS_SECONDS)),
    }));
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
