/**
 * A QueueTable driven like a Raft group would drive it: every command goes through `apply` as
 * the next entry's JSON, stamped with the group's clock `now`, which the tests move by hand.
 */
import { expect } from "vitest";
import {
  type Delivery,
  type NewMessage,
  type QueueApplied,
  type QueueCommand,
  type QueueResult,
  QueueTable,
  type QueueTableOptions,
} from "../../shared/queue/index.js";

export const START = 1_000;
export const VIS = 30_000;

/** Distributes Omit over the command union (plain Omit would merge the union into one type). */
type WithoutNow<C> = C extends QueueCommand ? Omit<C, "now"> : never;

export class Group {
  readonly table: QueueTable;
  index = 0;
  now = START;

  constructor(options: QueueTableOptions = {}) {
    this.table = new QueueTable(options);
  }

  run(cmd: WithoutNow<QueueCommand>): QueueApplied {
    this.index++;
    const data = JSON.stringify({ ...cmd, now: this.now });
    const applied = this.table.apply({ index: this.index, term: 1, type: "normal", data });
    if (applied === null) throw new Error("a command gave no result");
    return applied;
  }

  enqueue(queue: string, messages: NewMessage[], shard = 0): QueueResult {
    return this.run({ type: "enqueue", queue, shard, messages }).result;
  }

  /** Enqueues one message per body, ids `<prefix><n>`. */
  put(queue: string, bodies: unknown[], o: { key?: string; shard?: number; prefix?: string } = {}): void {
    const messages = bodies.map((body, n) => {
      const m: NewMessage = { id: `${o.prefix ?? "m"}${this.index}-${n}`, body };
      if (o.key !== undefined) m.key = o.key;
      return m;
    });
    expect(this.enqueue(queue, messages, o.shard ?? 0).type).toBe("enqueued");
  }

  receive(queue: string, max = 10, o: { shard?: number; visibilityMs?: number; maxAttempts?: number } = {}) {
    const { shard = 0, visibilityMs = VIS, maxAttempts } = o;
    const cmd: WithoutNow<QueueCommand> =
      maxAttempts === undefined
        ? { type: "receive", queue, shard, max, visibilityMs }
        : { type: "receive", queue, shard, max, visibilityMs, maxAttempts };
    const r = this.run(cmd).result;
    if (r.type !== "received") throw new Error(`expected received, got ${JSON.stringify(r)}`);
    return r;
  }

  /** The bodies of a receive, parsed. */
  bodies(queue: string, max = 10, o: { shard?: number; visibilityMs?: number; maxAttempts?: number } = {}): unknown[] {
    return this.receive(queue, max, o).messages.map((d) => JSON.parse(d.body));
  }

  ack(queue: string, receipts: string[], shard = 0): number {
    const r = this.run({ type: "ack", queue, shard, receipts }).result;
    return r.type === "acked" ? r.acked : Number.NaN;
  }

  nack(queue: string, receipts: string[], delayMs?: number, shard = 0): number {
    const cmd: WithoutNow<QueueCommand> =
      delayMs === undefined
        ? { type: "nack", queue, shard, receipts }
        : { type: "nack", queue, shard, receipts, delayMs };
    const r = this.run(cmd).result;
    return r.type === "released" ? r.released : Number.NaN;
  }

  extend(queue: string, receipts: string[], visibilityMs: number, shard = 0): number {
    const r = this.run({ type: "extend", queue, shard, receipts, visibilityMs }).result;
    return r.type === "extended" ? r.extended : Number.NaN;
  }

  redrive(queue: string, max?: number, shard = 0): number {
    const cmd: WithoutNow<QueueCommand> =
      max === undefined ? { type: "redrive", queue, shard } : { type: "redrive", queue, shard, max };
    const r = this.run(cmd).result;
    return r.type === "redriven" ? r.moved : Number.NaN;
  }

  stats(queue: string, shard = 0) {
    return this.table.stats(queue, shard, this.now);
  }
}

export function receipts(ds: readonly Delivery[]): string[] {
  return ds.map((d) => d.receipt);
}
