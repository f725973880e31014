/**
 * The queue service's replicated state machine: every queue shard of one Raft group. Pure and
 * deterministic: the result of an apply depends only on the state and the entry (time travels
 * inside each command), so every replica answers every command the same way.
 *
 * Design:
 * - Dead letters stay in this group. `<queue>.dlq` is an ordinary queue whose shard s lives on
 *   the same group as `<queue>` shard s (`groupKey` drops the suffix), so dead-lettering and
 *   redrive are moves inside one apply: atomic, and a message is never in both or neither.
 * - A message is dead-lettered by the receive that would deliver it beyond `maxAttempts` (the
 *   SQS rule: receive count would exceed the maximum), not when its last visibility runs out.
 *   No timer and no config lookup outside the receive are needed, and the receive that carries
 *   `maxAttempts` is the one that applies it. Until then it counts as visible.
 * - Receipts name one delivery (`<shard>:<seq>:<delivery>`, both numbers group-wide and never
 *   reused, even after a shard empties and is dropped) and work only while that delivery is in
 *   flight: after a redelivery, or once the visibility ran out, the old receipt is stale.
 * - Config travels in the receive; the per-queue config stored by `configure` (and the
 *   defaults) fill in what a receive leaves out.
 * - Expiry is lazy: states derive from `visibleAt` and t (see shard.ts); shards and dedup
 *   entries are dropped as soon as they are empty or expired, so the state (and snapshot) is
 *   proportional to live messages plus the ids of the last 5 minutes.
 */
import type { StateMachine } from "../raft/state-machine.js";
import type { Entry } from "../raft/types.js";
import { type DedupImage, DedupWindow } from "./dedup.js";
import { DLQ_SUFFIX, dlqName, formatReceipt, parseReceipt } from "./placement.js";
import { countAt, isLiveDelivery, type Message, nextVisibleAt, type Shard, scanDeliverable, stateAt } from "./shard.js";
import {
  type AckCommand,
  type ConfigureCommand,
  DEFAULT_DEDUP_CAP,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_SHARD_MESSAGES,
  DEFAULT_VISIBILITY_MS,
  type DeleteQueueCommand,
  type Delivery,
  type EnqueueCommand,
  type Enqueued,
  type ExtendCommand,
  type NackCommand,
  type Peeked,
  type PurgeCommand,
  type QueueApplied,
  type QueueCommand,
  type QueueConfig,
  type QueueResult,
  type QueueTotals,
  type ReceiveCommand,
  type RedriveCommand,
  type ShardStats,
  type Wake,
} from "./types.js";

export interface QueueTableOptions {
  /** Must be the same on every replica of a group (it is not part of the snapshot). */
  dedupCap?: number;
  maxShardMessages?: number;
}

/** The snapshot image. Shards keep their map order and messages their FIFO order. */
interface Image {
  version: 1;
  time: number;
  lastSeq: number;
  lastDelivery: number;
  totals: QueueTotals;
  configs: [string, QueueConfig][];
  shards: [string, number, Message[]][];
  dedup: DedupImage;
}

function zeroTotals(): QueueTotals {
  return { enqueued: 0, duplicates: 0, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0, redriven: 0 };
}

export class QueueTable implements StateMachine<QueueApplied | null> {
  private shards = new Map<string, Shard>();
  private configs = new Map<string, QueueConfig>();
  private dedup: DedupWindow;
  private counters = zeroTotals();
  /** t: the largest `now` of any command applied so far. */
  private time = 0;
  private lastSeq = 0;
  private lastDelivery = 0;
  private readonly maxShardMessages: number;
  // Scratch state of the apply in progress (apply is synchronous).
  private wakes: Wake[] = [];

  constructor(options: QueueTableOptions = {}) {
    this.dedup = new DedupWindow(options.dedupCap ?? DEFAULT_DEDUP_CAP);
    this.maxShardMessages = options.maxShardMessages ?? DEFAULT_MAX_SHARD_MESSAGES;
  }

  /** Applies one committed entry; a leader's no-op (empty data) and conf entries give null. */
  apply(entry: Entry): QueueApplied | null {
    if (entry.type !== "normal" || entry.data === "") return null;
    return this.applyCommand(JSON.parse(entry.data) as QueueCommand);
  }

  applyCommand(cmd: QueueCommand): QueueApplied {
    this.time = Math.max(this.time, cmd.now);
    this.dedup.prune(this.time);
    this.wakes = [];
    const result = this.run(cmd);
    const wake = this.wakes;
    this.wakes = [];
    return { result, wake };
  }

  private run(cmd: QueueCommand): QueueResult {
    switch (cmd.type) {
      case "enqueue":
        return this.enqueue(cmd);
      case "receive":
        return this.receive(cmd);
      case "ack":
        return this.ack(cmd);
      case "nack":
        return this.nack(cmd);
      case "extend":
        return this.extend(cmd);
      case "redrive":
        return this.redrive(cmd);
      case "configure":
        return this.configure(cmd);
      case "purge":
        return this.purge(cmd);
      case "delete":
        return this.deleteQueue(cmd);
      default:
        throw new Error(`unknown queue command ${JSON.stringify(cmd satisfies never)}`);
    }
  }

  private enqueue(c: EnqueueCommand): QueueResult {
    const t = this.time;
    const { queue, shard } = c;
    const reject = (reason: "invalid" | "full", detail: string): QueueResult => ({
      type: "rejected",
      queue,
      shard,
      reason,
      detail,
    });
    if (!Number.isSafeInteger(shard) || shard < 0) return reject("invalid", "shard must be an integer ≥ 0");
    if (!Array.isArray(c.messages) || c.messages.length === 0) return reject("invalid", "no messages");
    // Plan the whole batch first: a refusal must leave no trace, not even in the dedup memory.
    const fresh: Message[] = [];
    const answers: Enqueued[] = [];
    const inBatch = new Map<string, number>(); // an id twice in one batch is a duplicate of the first
    for (const [i, m] of c.messages.entries()) {
      const problem = invalid(m);
      if (problem !== undefined) return reject("invalid", `messages[${i}]: ${problem}`);
      const prior = inBatch.get(m.id) ?? this.dedup.lookup(queue, m.id, t)?.shard;
      if (prior !== undefined) {
        answers.push({ id: m.id, shard: prior, duplicate: true });
        continue;
      }
      inBatch.set(m.id, shard);
      answers.push({ id: m.id, shard, duplicate: false });
      const message: Message = {
        seq: 0, // given at commit
        id: m.id,
        body: JSON.stringify(m.body),
        enqueuedAt: t,
        attempts: 0,
        visibleAt: t + (m.delayMs ?? 0),
        delivery: 0,
      };
      if (m.key !== undefined) message.key = m.key;
      fresh.push(message);
    }
    const held = this.shards.get(shardKey(queue, shard))?.messages.size ?? 0;
    if (fresh.length > 0 && held + fresh.length > this.maxShardMessages) {
      return reject("full", `shard holds ${held} of ${this.maxShardMessages} messages`);
    }

    if (fresh.length > 0) {
      const target = this.shardOf(queue, shard);
      for (const m of fresh) {
        m.seq = ++this.lastSeq;
        target.messages.set(m.seq, m);
        this.dedup.remember(queue, m.id, shard, t);
      }
      this.wake(queue, shard, Math.min(...fresh.map((m) => m.visibleAt)));
    }
    this.counters.enqueued += fresh.length;
    this.counters.duplicates += answers.length - fresh.length;
    return { type: "enqueued", queue, shard, messages: answers };
  }

  private receive(c: ReceiveCommand): QueueResult {
    const t = this.time;
    const { queue, shard: shardNo } = c;
    const config = this.config(queue);
    const maxAttempts = c.maxAttempts ?? config.maxAttempts;
    const visibilityMs = c.visibilityMs ?? config.visibilityMs;
    const messages: Delivery[] = [];
    let deadLettered = 0;
    let size = 0;
    const shard = this.shards.get(shardKey(queue, shardNo));
    if (shard !== undefined) {
      scanDeliverable(shard, t, c.max ?? 1, (m) => {
        if (c.maxBytes !== undefined && messages.length > 0 && size + m.body.length > c.maxBytes) return "stop";
        if (m.attempts >= maxAttempts) {
          shard.messages.delete(m.seq);
          this.append(dlqName(queue), shardNo, { ...m, attempts: 0, visibleAt: t, delivery: 0 });
          deadLettered++;
          return "removed";
        }
        if (m.attempts > 0) this.counters.redelivered++;
        this.counters.delivered++;
        m.attempts++;
        m.delivery = ++this.lastDelivery;
        m.visibleAt = t + visibilityMs;
        messages.push(deliveryOf(shardNo, m));
        size += m.body.length;
        return "delivered";
      });
      this.tidy(shard);
    }
    if (deadLettered > 0) {
      this.counters.deadLettered += deadLettered;
      this.wake(dlqName(queue), shardNo, t);
    }
    return { type: "received", queue, shard: shardNo, messages, deadLettered };
  }

  private ack(c: AckCommand): QueueResult {
    const acked = this.onDeliveries(c.queue, c.shard, c.receipts, (m, shard) => {
      shard.messages.delete(m.seq); // gone for good: the state holds live messages only
    });
    this.counters.acked += acked;
    // An ack may unblock the next message of a key: wake the long polls to look again.
    if (acked > 0) this.wake(c.queue, c.shard, this.time);
    return { type: "acked", queue: c.queue, shard: c.shard, acked };
  }

  private nack(c: NackCommand): QueueResult {
    const visibleAt = this.time + Math.max(0, c.delayMs ?? 0);
    const released = this.onDeliveries(c.queue, c.shard, c.receipts, (m) => {
      m.delivery = 0; // not in flight: delayed until visibleAt (or visible now)
      m.visibleAt = visibleAt;
    });
    if (released > 0) this.wake(c.queue, c.shard, visibleAt);
    return { type: "released", queue: c.queue, shard: c.shard, released };
  }

  private extend(c: ExtendCommand): QueueResult {
    const visibleAt = this.time + c.visibilityMs;
    const extended = this.onDeliveries(c.queue, c.shard, c.receipts, (m) => {
      m.visibleAt = visibleAt;
    });
    // A shortened visibility makes the message visible sooner than the host had planned.
    if (extended > 0) this.wake(c.queue, c.shard, visibleAt);
    return { type: "extended", queue: c.queue, shard: c.shard, extended };
  }

  /** Runs `fn` once on each live delivery named by `receipts`; the number of them. Stale, unknown, malformed or repeated receipts are skipped. */
  private onDeliveries(
    queue: string,
    shardNo: number,
    receipts: readonly string[],
    fn: (m: Message, shard: Shard) => void,
  ): number {
    const shard = this.shards.get(shardKey(queue, shardNo));
    if (shard === undefined) return 0;
    let n = 0;
    for (const receipt of new Set(receipts)) {
      const r = parseReceipt(receipt);
      if (r === undefined || r.shard !== shardNo) continue;
      const m = shard.messages.get(r.seq);
      if (m === undefined || !isLiveDelivery(m, r.delivery, this.time)) continue;
      fn(m, shard);
      n++;
    }
    this.tidy(shard);
    return n;
  }

  private redrive(c: RedriveCommand): QueueResult {
    const t = this.time;
    const dlq = this.shards.get(shardKey(dlqName(c.queue), c.shard));
    const max = c.max ?? Number.POSITIVE_INFINITY;
    let moved = 0;
    if (dlq !== undefined) {
      for (const m of dlq.messages.values()) {
        if (moved >= max) break;
        if (stateAt(m, t) === "inflight") continue; // a consumer of the DLQ holds it
        dlq.messages.delete(m.seq);
        // A fresh start at the back of the queue: attempts from 0, visible now.
        this.append(c.queue, c.shard, { ...m, attempts: 0, visibleAt: t, delivery: 0 });
        moved++;
      }
      this.tidy(dlq);
    }
    if (moved > 0) this.wake(c.queue, c.shard, t);
    this.counters.redriven += moved;
    return { type: "redriven", queue: c.queue, shard: c.shard, moved };
  }

  private configure(c: ConfigureCommand): QueueResult {
    const config = { ...this.config(c.queue) };
    if (c.maxAttempts !== undefined) config.maxAttempts = c.maxAttempts;
    if (c.visibilityMs !== undefined) config.visibilityMs = c.visibilityMs;
    this.configs.set(c.queue, config);
    return { type: "configured", queue: c.queue, ...config };
  }

  /** Drops the shard's visible and delayed messages (API.md); deliveries in flight finish (ack, nack, expiry). */
  private purge(c: PurgeCommand): QueueResult {
    const shard = this.shards.get(shardKey(c.queue, c.shard));
    let purged = 0;
    for (const [seq, m] of shard?.messages ?? []) {
      if (stateAt(m, this.time) === "inflight") continue;
      shard?.messages.delete(seq);
      purged++;
    }
    if (shard !== undefined && shard.messages.size === 0) this.shards.delete(shardKey(c.queue, c.shard));
    return { type: "purged", queue: c.queue, shard: c.shard, purged };
  }

  /** The queue, its messages, config and ids are gone; its `.dlq` stays (API.md), an ordinary queue of its own. */
  private deleteQueue(c: DeleteQueueCommand): QueueResult {
    let messages = 0;
    for (const [key, shard] of this.shards) {
      if (shard.queue !== c.queue) continue;
      messages += shard.messages.size;
      this.shards.delete(key);
    }
    this.configs.delete(c.queue);
    this.dedup.forget(c.queue);
    return { type: "deleted", queue: c.queue, messages };
  }

  /** Puts a moved message at the back of `queue`/`shard` under a new seq (moves ignore the shard cap: a message is never dropped). */
  private append(queue: string, shard: number, m: Message): void {
    m.seq = ++this.lastSeq;
    this.shardOf(queue, shard).messages.set(m.seq, m);
  }

  private shardOf(queue: string, shard: number): Shard {
    const key = shardKey(queue, shard);
    let s = this.shards.get(key);
    if (s === undefined) {
      s = { queue, shard, messages: new Map() };
      this.shards.set(key, s);
    }
    return s;
  }

  /** Drops an empty shard: no trace of messages that are gone. */
  private tidy(shard: Shard): void {
    if (shard.messages.size === 0) this.shards.delete(shardKey(shard.queue, shard.shard));
  }

  private wake(queue: string, shard: number, at: number): void {
    this.wakes.push({ queue, shard, at });
  }

  /** The queue's stored config, or the defaults. */
  config(queue: string): QueueConfig {
    return {
      ...(this.configs.get(queue) ?? { maxAttempts: DEFAULT_MAX_ATTEMPTS, visibilityMs: DEFAULT_VISIBILITY_MS }),
    };
  }

  /**
   * The counts of one shard at `now` (never before the last applied time), for `GET /v1/queues/{queue}`.
   * `visible` includes keyed messages waiting behind an older message of their key.
   */
  stats(queue: string, shard: number, now: number): ShardStats {
    const t = Math.max(this.time, now);
    const counts = countAt(this.shards.get(shardKey(queue, shard)), t);
    const dlq = this.shards.get(shardKey(dlqName(queue), shard))?.messages.size ?? 0;
    return { ...counts, dlq };
  }

  /**
   * Up to `max` visible messages of one shard at `now`, oldest first, without delivering them
   * (`POST /peek`): state-only, nothing changes. A keyed message waiting behind an older message
   * of its key counts as visible here, as in `stats`.
   */
  peek(queue: string, shard: number, now: number, max: number): Peeked[] {
    const t = Math.max(this.time, now);
    const out: Peeked[] = [];
    const s = this.shards.get(shardKey(queue, shard));
    if (s === undefined) return out;
    for (const m of s.messages.values()) {
      if (out.length >= max) break;
      if (stateAt(m, t) !== "visible") continue;
      const p: Peeked = { id: m.id, body: m.body, attempts: m.attempts, enqueuedAt: m.enqueuedAt };
      if (m.key !== undefined) p.key = m.key;
      out.push(p);
    }
    return out;
  }

  /**
   * Every queue this group knows (holds messages of, in it or its DLQ, or stores a config of)
   * with its counts at `now`, summed over its shards here; `<q>.dlq` counts under `q` as `dlq`.
   */
  list(now: number): Map<string, ShardStats> {
    const t = Math.max(this.time, now);
    const out = new Map<string, ShardStats>();
    const of = (queue: string) => {
      let s = out.get(queue);
      if (s === undefined) {
        s = { visible: 0, inflight: 0, delayed: 0, dlq: 0 };
        out.set(queue, s);
      }
      return s;
    };
    for (const queue of this.configs.keys()) of(queue);
    for (const shard of this.shards.values()) {
      if (shard.queue.endsWith(DLQ_SUFFIX) && shard.queue.length > DLQ_SUFFIX.length) {
        of(shard.queue.slice(0, -DLQ_SUFFIX.length)).dlq += shard.messages.size;
        continue;
      }
      const c = countAt(shard, t);
      const s = of(shard.queue);
      s.visible += c.visible;
      s.inflight += c.inflight;
      s.delayed += c.delayed;
    }
    return out;
  }

  /**
   * Messages per queue held by this group at `now` (summed over its shards), for `/metrics`.
   * A dead-letter queue `<q>.dlq` is reported under its own name.
   */
  depths(now: number): Map<string, { visible: number; inflight: number; delayed: number }> {
    const t = Math.max(this.time, now);
    const out = new Map<string, { visible: number; inflight: number; delayed: number }>();
    for (const shard of this.shards.values()) {
      const c = countAt(shard, t);
      const sum = out.get(shard.queue) ?? { visible: 0, inflight: 0, delayed: 0 };
      out.set(shard.queue, {
        visible: sum.visible + c.visible,
        inflight: sum.inflight + c.inflight,
        delayed: sum.delayed + c.delayed,
      });
    }
    return out;
  }

  /**
   * Would a receive at `now` deliver (or dead-letter) anything? Unlike `stats().visible`, a keyed
   * message waiting behind an older message of its key does not count: the host must not write
   * an empty receive for it, nor end a long poll.
   */
  hasDeliverable(queue: string, shard: number, now: number): boolean {
    const s = this.shards.get(shardKey(queue, shard));
    if (s === undefined) return false;
    let found = false;
    scanDeliverable(s, Math.max(this.time, now), 1, () => {
      found = true;
      return "delivered";
    });
    return found;
  }

  /**
   * A delivery as a receive answered it, rebuilt from the state while that delivery is still
   * the message's latest (in flight, or expired but not delivered again); undefined once the
   * message was acked, dead-lettered or delivered again. Retried receives answer from this, so
   * the exactly-once memory keeps receipts, not message bodies.
   */
  delivery(queue: string, shard: number, seq: number, delivery: number): Delivery | undefined {
    const m = this.shards.get(shardKey(queue, shard))?.messages.get(seq);
    if (m === undefined || m.delivery !== delivery || delivery === 0) return undefined;
    return deliveryOf(shard, m);
  }

  /** The group's counters, for `/metrics`. */
  totals(): QueueTotals {
    return { ...this.counters };
  }

  /** When a message of the shard next becomes visible on its own (after `now`): when to wake its long polls. */
  nextVisibleAt(queue: string, shard: number, now = this.time): number | undefined {
    return nextVisibleAt(this.shards.get(shardKey(queue, shard)), Math.max(this.time, now));
  }

  /** The earliest such moment over every shard of the group; undefined when nothing is pending. A linear scan. */
  nextDeadline(now = this.time): number | undefined {
    let min: number | undefined;
    for (const s of this.shards.values()) {
      const d = nextVisibleAt(s, Math.max(this.time, now));
      if (d !== undefined && (min === undefined || d < min)) min = d;
    }
    return min;
  }

  /** The last applied time t. */
  get now(): number {
    return this.time;
  }

  snapshot(): string {
    const image: Image = {
      version: 1,
      time: this.time,
      lastSeq: this.lastSeq,
      lastDelivery: this.lastDelivery,
      totals: { ...this.counters },
      configs: [...this.configs],
      shards: [...this.shards.values()].map((s) => [s.queue, s.shard, [...s.messages.values()]]),
      dedup: this.dedup.image(),
    };
    return JSON.stringify(image);
  }

  restore(data: string): void {
    if (data === "") {
      this.load({
        version: 1,
        time: 0,
        lastSeq: 0,
        lastDelivery: 0,
        totals: zeroTotals(),
        configs: [],
        shards: [],
        dedup: [],
      });
      return;
    }
    const image = JSON.parse(data) as Image;
    if (image.version !== 1) throw new Error(`unknown queue table snapshot version ${image.version}`);
    this.load(image);
  }

  private load(image: Image): void {
    this.time = image.time;
    this.lastSeq = image.lastSeq;
    this.lastDelivery = image.lastDelivery;
    this.counters = { ...image.totals };
    this.configs = new Map(image.configs);
    this.shards = new Map(
      image.shards.map(([queue, shard, messages]) => [
        shardKey(queue, shard),
        { queue, shard, messages: new Map(messages.map((m) => [m.seq, m])) },
      ]),
    );
    this.dedup.load(image.dedup);
  }
}

function deliveryOf(shard: number, m: Message): Delivery {
  const d: Delivery = {
    id: m.id,
    body: m.body,
    receipt: formatReceipt({ shard, seq: m.seq, delivery: m.delivery }),
    attempts: m.attempts,
    enqueuedAt: m.enqueuedAt,
  };
  if (m.key !== undefined) d.key = m.key;
  return d;
}

/** Unambiguous: the shard number holds no `/` and comes first. */
function shardKey(queue: string, shard: number): string {
  return `${shard}/${queue}`;
}

/** Why a message cannot be enqueued, or undefined when it can. */
function invalid(m: unknown): string | undefined {
  if (typeof m !== "object" || m === null) return "not an object";
  const { id, body, key, delayMs } = m as Record<string, unknown>;
  if (typeof id !== "string" || id === "") return "id must be a non-empty string";
  if (typeof JSON.stringify(body) !== "string") return "body must be JSON";
  if (key !== undefined && typeof key !== "string") return "key must be a string";
  if (delayMs !== undefined && !(typeof delayMs === "number" && Number.isFinite(delayMs) && delayMs >= 0)) {
    return "delayMs must be a number ≥ 0";
  }
  return undefined;
}
