/**
 * A deliberately simple reference for the queue rules: one flat array of every message of the
 * group, searched from scratch for every decision. Slow and obvious; the model test checks the
 * QueueTable against it after every command.
 */
import {
  DEDUP_WINDOW_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_VISIBILITY_MS,
  type Delivery,
  type Enqueued,
  type QueueApplied,
  type QueueCommand,
  type QueueConfig,
  type QueueResult,
  type QueueTotals,
  type ShardStats,
  type Wake,
} from "../../shared/queue/index.js";

interface Msg {
  queue: string;
  shard: number;
  seq: number;
  id: string;
  body: string;
  key: string | undefined;
  enqueuedAt: number;
  attempts: number;
  visibleAt: number;
  delivery: number;
}

export class ReferenceQueue {
  msgs: Msg[] = [];
  private seen: { queue: string; id: string; shard: number; at: number }[] = [];
  private configs = new Map<string, QueueConfig>();
  time = 0;
  private seq = 0;
  private delivery = 0;
  totals: QueueTotals = {
    enqueued: 0,
    duplicates: 0,
    delivered: 0,
    redelivered: 0,
    acked: 0,
    deadLettered: 0,
    redriven: 0,
  };
  /** What the last ack removed, so the checker can follow individual messages. */
  lastAcked: Msg[] = [];
  /** What the last purge or delete dropped. */
  lastRemoved: Msg[] = [];

  constructor(
    private readonly dedupCap: number,
    private readonly maxShardMessages: number,
  ) {}

  apply(c: QueueCommand): QueueApplied {
    this.time = Math.max(this.time, c.now);
    const t = this.time;
    this.seen = this.seen.filter((s) => s.at + DEDUP_WINDOW_MS > t);
    this.lastAcked = [];
    this.lastRemoved = [];
    const wake: Wake[] = [];
    const result = this.run(c, t, wake);
    return { result, wake };
  }

  private run(c: QueueCommand, t: number, wake: Wake[]): QueueResult {
    switch (c.type) {
      case "enqueue": {
        const { queue, shard } = c;
        for (const [i, m] of c.messages.entries()) {
          const bad =
            typeof m.id !== "string" ||
            m.id === "" ||
            (m.delayMs !== undefined && !(m.delayMs >= 0 && Number.isFinite(m.delayMs)));
          if (bad) return { type: "rejected", queue, shard, reason: "invalid", detail: `messages[${i}]` };
        }
        if (c.messages.length === 0) return { type: "rejected", queue, shard, reason: "invalid", detail: "" };
        const answers: Enqueued[] = [];
        const fresh: Msg[] = [];
        for (const m of c.messages) {
          const earlier =
            fresh.find((f) => f.id === m.id) !== undefined
              ? shard
              : this.seen.find((s) => s.queue === queue && s.id === m.id)?.shard;
          if (earlier !== undefined) {
            answers.push({ id: m.id, shard: earlier, duplicate: true });
            continue;
          }
          answers.push({ id: m.id, shard, duplicate: false });
          fresh.push({
            queue,
            shard,
            seq: 0,
            id: m.id,
            body: JSON.stringify(m.body),
            key: m.key,
            enqueuedAt: t,
            attempts: 0,
            visibleAt: t + (m.delayMs ?? 0),
            delivery: 0,
          });
        }
        if (fresh.length > 0 && this.inShard(queue, shard).length + fresh.length > this.maxShardMessages) {
          return { type: "rejected", queue, shard, reason: "full", detail: "" };
        }
        for (const f of fresh) {
          f.seq = ++this.seq;
          this.msgs.push(f);
          this.seen = this.seen.filter((s) => !(s.queue === queue && s.id === f.id));
          this.seen.push({ queue, id: f.id, shard, at: t });
          while (this.seen.length > this.dedupCap) this.seen.shift();
        }
        if (fresh.length > 0) wake.push({ queue, shard, at: Math.min(...fresh.map((f) => f.visibleAt)) });
        this.totals.enqueued += fresh.length;
        this.totals.duplicates += answers.length - fresh.length;
        return { type: "enqueued", queue, shard, messages: answers };
      }
      case "receive": {
        const config = this.config(c.queue);
        const maxAttempts = c.maxAttempts ?? config.maxAttempts;
        const vis = c.visibilityMs ?? config.visibilityMs;
        const out: Delivery[] = [];
        let dead = 0;
        while (out.length < c.max) {
          const shardMsgs = this.inShard(c.queue, c.shard);
          // The oldest visible message that is also the oldest of its key.
          const next = shardMsgs.find(
            (m) => m.visibleAt <= t && (m.key === undefined || shardMsgs.find((o) => o.key === m.key) === m),
          );
          if (next === undefined) break;
          if (next.attempts >= maxAttempts) {
            next.queue = `${c.queue}.dlq`;
            next.seq = ++this.seq;
            next.attempts = 0;
            next.delivery = 0;
            next.visibleAt = t;
            this.sort();
            dead++;
            continue;
          }
          if (next.attempts > 0) this.totals.redelivered++;
          this.totals.delivered++;
          next.attempts++;
          next.delivery = ++this.delivery;
          next.visibleAt = t + vis;
          const d: Delivery = {
            id: next.id,
            body: next.body,
            receipt: `${c.shard}:${next.seq}:${next.delivery}`,
            attempts: next.attempts,
            enqueuedAt: next.enqueuedAt,
          };
          if (next.key !== undefined) d.key = next.key;
          out.push(d);
        }
        this.totals.deadLettered += dead;
        if (dead > 0) wake.push({ queue: `${c.queue}.dlq`, shard: c.shard, at: t });
        return { type: "received", queue: c.queue, shard: c.shard, messages: out, deadLettered: dead };
      }
      case "ack": {
        const live = this.live(c.queue, c.shard, c.receipts, t);
        this.msgs = this.msgs.filter((m) => !live.includes(m));
        this.lastAcked = live;
        this.totals.acked += live.length;
        // An ack may unblock the next message of a key: long polls look again.
        if (live.length > 0) wake.push({ queue: c.queue, shard: c.shard, at: t });
        return { type: "acked", queue: c.queue, shard: c.shard, acked: live.length };
      }
      case "nack": {
        const live = this.live(c.queue, c.shard, c.receipts, t);
        const at = t + Math.max(0, c.delayMs ?? 0);
        for (const m of live) {
          m.delivery = 0;
          m.visibleAt = at;
        }
        if (live.length > 0) wake.push({ queue: c.queue, shard: c.shard, at });
        return { type: "released", queue: c.queue, shard: c.shard, released: live.length };
      }
      case "extend": {
        const live = this.live(c.queue, c.shard, c.receipts, t);
        for (const m of live) m.visibleAt = t + c.visibilityMs;
        if (live.length > 0) wake.push({ queue: c.queue, shard: c.shard, at: t + c.visibilityMs });
        return { type: "extended", queue: c.queue, shard: c.shard, extended: live.length };
      }
      case "redrive": {
        const movable = this.inShard(`${c.queue}.dlq`, c.shard).filter((m) => !(m.delivery !== 0 && m.visibleAt > t));
        const moving = movable.slice(0, c.max ?? movable.length);
        for (const m of moving) {
          m.queue = c.queue;
          m.seq = ++this.seq;
          m.attempts = 0;
          m.delivery = 0;
          m.visibleAt = t;
        }
        this.sort();
        if (moving.length > 0) wake.push({ queue: c.queue, shard: c.shard, at: t });
        this.totals.redriven += moving.length;
        return { type: "redriven", queue: c.queue, shard: c.shard, moved: moving.length };
      }
      case "configure": {
        const config = this.config(c.queue);
        if (c.maxAttempts !== undefined) config.maxAttempts = c.maxAttempts;
        if (c.visibilityMs !== undefined) config.visibilityMs = c.visibilityMs;
        this.configs.set(c.queue, config);
        return { type: "configured", queue: c.queue, ...config };
      }
      case "purge": {
        // Visible and delayed messages go; deliveries in flight stay.
        const inflight = (m: Msg) => m.delivery !== 0 && m.visibleAt > t;
        this.lastRemoved = this.inShard(c.queue, c.shard).filter((m) => !inflight(m));
        this.msgs = this.msgs.filter((m) => !(m.queue === c.queue && m.shard === c.shard && !inflight(m)));
        return { type: "purged", queue: c.queue, shard: c.shard, purged: this.lastRemoved.length };
      }
      case "delete": {
        const gone = [c.queue]; // the .dlq stays
        this.lastRemoved = this.msgs.filter((m) => gone.includes(m.queue));
        this.msgs = this.msgs.filter((m) => !gone.includes(m.queue));
        for (const q of gone) this.configs.delete(q);
        this.seen = this.seen.filter((s) => !gone.includes(s.queue));
        return { type: "deleted", queue: c.queue, messages: this.lastRemoved.length };
      }
    }
  }

  /** The distinct messages whose current, unexpired delivery a receipt names. */
  private live(queue: string, shard: number, receipts: string[], t: number): Msg[] {
    return this.inShard(queue, shard).filter(
      (m) => m.delivery !== 0 && m.visibleAt > t && receipts.includes(`${shard}:${m.seq}:${m.delivery}`),
    );
  }

  private config(queue: string): QueueConfig {
    return {
      ...(this.configs.get(queue) ?? { maxAttempts: DEFAULT_MAX_ATTEMPTS, visibilityMs: DEFAULT_VISIBILITY_MS }),
    };
  }

  inShard(queue: string, shard: number): Msg[] {
    return this.msgs.filter((m) => m.queue === queue && m.shard === shard);
  }

  private sort(): void {
    this.msgs.sort((a, b) => a.seq - b.seq);
  }

  stats(queue: string, shard: number, now: number): ShardStats {
    const t = Math.max(this.time, now);
    const mine = this.inShard(queue, shard);
    return {
      visible: mine.filter((m) => m.visibleAt <= t).length,
      inflight: mine.filter((m) => m.visibleAt > t && m.delivery !== 0).length,
      delayed: mine.filter((m) => m.visibleAt > t && m.delivery === 0).length,
      dlq: this.inShard(`${queue}.dlq`, shard).length,
    };
  }

  nextDeadline(): number | undefined {
    const pending = this.msgs.filter((m) => m.visibleAt > this.time).map((m) => m.visibleAt);
    return pending.length === 0 ? undefined : Math.min(...pending);
  }
}
