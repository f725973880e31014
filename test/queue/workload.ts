/**
 * Random queue commands for the model and snapshot tests: a few queues (one of them a DLQ used
 * directly), few shards and keys so that messages collide, ids that are sometimes retried
 * within and beyond the dedup window, receipts both live and stale, and a clock that mostly
 * advances, sometimes jumps past the dedup window and sometimes steps back (t = max).
 */

import type { NewMessage, QueueCommand, QueueResult } from "../../shared/queue/index.js";
import type { Rand } from "../../shared/raft/rand.js";

export const QUEUES = ["a", "b", "a.dlq"];
export const SHARDS = [0, 1, 2];
const KEYS = [undefined, undefined, undefined, "k1", "k2", "k3"];

export class Workload {
  now = 1_000;
  private nextId = 0;
  private ids: string[] = [];
  /** Receipts handed out, newest last (old ones stay: they exercise staleness). */
  receipts: { queue: string; shard: number; receipt: string }[] = [];

  constructor(private readonly rand: Rand) {}

  /** The next command; past a `backlog` of 40 live messages, most enqueues become receives. */
  next(backlog = 0): QueueCommand {
    const r = this.rand;
    if (r.chance(1, 200)) this.now += r.range(100_000, 400_000);
    else if (r.chance(1, 20)) this.now -= r.range(0, 5000);
    else this.now += r.range(0, 1000);
    const now = this.now;
    const queue = r.chance(1, 10) ? "a.dlq" : r.chance(2, 3) ? "a" : "b";
    const shard = r.chance(1, 2) ? 0 : r.pick(SHARDS);
    const roll = r.int(100);
    if (roll < 28 && (backlog < 40 || r.chance(1, 10))) {
      const messages = Array.from({ length: r.range(1, 4) }, () => this.message());
      if (r.chance(1, 40)) messages.splice(r.int(messages.length), 0, { id: this.id(), body: 0, delayMs: -1 });
      return { type: "enqueue", queue, shard, messages, now };
    }
    if (roll < 58) {
      const cmd: QueueCommand = { type: "receive", queue, shard, max: r.range(0, 4), now };
      if (r.chance(4, 5)) cmd.visibilityMs = r.range(500, 15_000);
      if (r.chance(1, 2)) cmd.maxAttempts = r.range(1, 4);
      return cmd;
    }
    if (roll < 83) {
      // Receipts are mostly of one recent delivery's shard, else the command's own (then mostly stale).
      const recent = this.receipts.length > 0 && r.chance(4, 5) ? r.pick(this.receipts.slice(-3)) : undefined;
      const on = recent === undefined ? { queue, shard } : { queue: recent.queue, shard: recent.shard };
      const receipts = this.someReceipts(on);
      if (roll < 72) return { type: "ack", ...on, receipts, now };
      const cmd: QueueCommand = { type: "nack", ...on, receipts, now };
      if (r.chance(1, 2)) cmd.delayMs = r.range(0, 5000);
      return cmd;
    }
    if (roll < 91) {
      const recent = this.receipts.length > 0 ? r.pick(this.receipts.slice(-6)) : { queue, shard };
      const on = { queue: recent.queue, shard: recent.shard };
      return { type: "extend", ...on, receipts: this.someReceipts(on), visibilityMs: r.range(0, 8000), now };
    }
    if (roll < 97) {
      const cmd: QueueCommand = { type: "redrive", queue: r.pick(["a", "b", "a.dlq"]), shard, now };
      if (r.chance(1, 2)) cmd.max = r.range(0, 3);
      return cmd;
    }
    // Now and then a purge of one shard, rarely a whole queue deleted (with its DLQ).
    if (roll === 97 && r.chance(1, 2)) {
      return r.chance(1, 4) ? { type: "delete", queue, now } : { type: "purge", queue, shard, now };
    }
    const cmd: QueueCommand = { type: "configure", queue, now };
    if (r.chance(2, 3)) cmd.maxAttempts = r.range(1, 4);
    if (r.chance(1, 2)) cmd.visibilityMs = r.range(500, 8000);
    return cmd;
  }

  /** Remembers the receipts of a receive, for later acks, nacks and extends. */
  observe(result: QueueResult): void {
    if (result.type !== "received") return;
    for (const d of result.messages)
      this.receipts.push({ queue: result.queue, shard: result.shard, receipt: d.receipt });
    if (this.receipts.length > 400) this.receipts.splice(0, 100);
  }

  private message(): NewMessage {
    const r = this.rand;
    const m: NewMessage = { id: this.id(), body: r.chance(1, 2) ? r.int(1000) : { n: r.int(1000), s: "x" } };
    const key = r.pick(KEYS);
    if (key !== undefined) m.key = key;
    if (r.chance(1, 6)) m.delayMs = r.range(0, 6000);
    return m;
  }

  /** A new id, or now and then a recent one again (a retry). */
  private id(): string {
    const r = this.rand;
    if (this.ids.length > 0 && r.chance(1, 8)) return r.pick(this.ids.slice(-20));
    const id = `m${this.nextId++}`;
    this.ids.push(id);
    return id;
  }

  /** 1–3 receipts: mostly recent ones of `on`, sometimes older or foreign ones, or junk. */
  private someReceipts(on: { queue: string; shard: number }): string[] {
    const r = this.rand;
    const mine = this.receipts.filter((x) => x.queue === on.queue && x.shard === on.shard).slice(-30);
    const out: string[] = [];
    for (let n = r.range(1, 3); n > 0; n--) {
      if (this.receipts.length === 0 || r.chance(1, 15)) out.push(r.pick(["junk", "0:1:1", "9:9:9", ""]));
      else if (mine.length > 0 && r.chance(5, 6)) out.push(r.pick(mine.slice(-3)).receipt);
      else out.push(r.pick(this.receipts).receipt);
    }
    return out;
  }
}
