/**
 * Randomized: the QueueTable against the simple reference queue over thousands of random
 * commands with a clock that advances (and sometimes steps back or jumps), checking every result,
 * the stats of every shard, the totals and the next deadline after each step, plus invariants
 * read from the table's own image. Now and then the table is replaced by a copy restored from
 * its snapshot.
 */
import { describe, expect, it } from "vitest";
import {
  groupKey,
  parseReceipt,
  type QueueApplied,
  QueueTable,
  type QueueTableOptions,
} from "../../shared/queue/index.js";
import type { Message } from "../../shared/queue/shard.js";
import { Rand } from "../../shared/raft/rand.js";
import { ReferenceQueue } from "./reference-model.js";
import { QUEUES, SHARDS, Workload } from "./workload.js";

const STEPS = 4000;

/** A failing check, for the hot loops (an `expect` per message per step is too slow). */
function check(ok: boolean, what: string): void {
  if (!ok) expect.fail(what);
}

/** toEqual, but cheap when the two are equal with the same key order (the common case). */
function same(actual: unknown, expected: unknown, where: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual, where).toEqual(expected);
}

interface Image {
  time: number;
  shards: [string, number, Message[]][];
}

/** Follows individual messages through the table's image and results. */
class Checker {
  /** Live copies per (queue family, shard, id): +1 when stored, −1 when acked. */
  private expected = new Map<string, number>();
  private ackedSeqs = new Set<number>();
  /** seq → the deadline of its current delivery, as of the last step's image. */
  private inFlightUntil = new Map<number, number>();
  counts = {
    delivered: 0,
    redelivered: 0,
    deadLettered: 0,
    acked: 0,
    duplicates: 0,
    rejected: 0,
    redriven: 0,
    removed: 0,
  };

  step(
    applied: QueueApplied,
    t: number,
    acked: { queue: string; shard: number; id: string }[],
    removed: { queue: string; shard: number; id: string }[] = [],
  ) {
    const r = applied.result;
    if (r.type === "enqueued") {
      for (const m of r.messages) {
        if (m.duplicate) this.counts.duplicates++;
        else this.bump(r.queue, m.shard, m.id, 1);
      }
    }
    if (r.type === "rejected") this.counts.rejected++;
    if (r.type === "redriven") this.counts.redriven += r.moved;
    if (r.type === "received") {
      this.counts.deadLettered += r.deadLettered;
      for (const d of r.messages) {
        const seq = parseReceipt(d.receipt)?.seq ?? -1;
        check(!this.ackedSeqs.has(seq), `acked message ${d.id} delivered again`);
        const until = this.inFlightUntil.get(seq);
        check(until === undefined || until <= t, `${d.id} delivered while its delivery is in flight`);
        this.counts.delivered++;
        if (d.attempts > 1) this.counts.redelivered++;
      }
    }
    if (r.type === "acked") {
      check(acked.length === r.acked, "the reference acked other messages");
      for (const m of acked) this.bump(m.queue, m.shard, m.id, -1);
      this.counts.acked += r.acked;
    }
    if (r.type === "purged" || r.type === "deleted") {
      check(removed.length === (r.type === "purged" ? r.purged : r.messages), "the reference removed others");
      for (const m of removed) this.bump(m.queue, m.shard, m.id, -1);
      this.counts.removed += removed.length;
    }
  }

  private bump(queue: string, shard: number, id: string, by: number): void {
    const k = `${groupKey(queue, shard)}|${id}`;
    const n = (this.expected.get(k) ?? 0) + by;
    if (n === 0) this.expected.delete(k);
    else this.expected.set(k, n);
  }

  /** Invariants on the image after a step. */
  invariants(table: QueueTable, ackedSeqs: number[]): void {
    for (const s of ackedSeqs) this.ackedSeqs.add(s);
    const image = JSON.parse(table.snapshot()) as Image;
    const t = image.time;
    const found = new Map<string, number>();
    const seqs = new Set<number>();
    this.inFlightUntil.clear();
    for (const [queue, shard, messages] of image.shards) {
      check(messages.length > 0, `empty shard ${queue}/${shard} kept`);
      const inflightKeys = new Set<string>();
      const firstOfKey = new Map<string, number>();
      let lastSeq = 0;
      for (const m of messages) {
        check(!seqs.has(m.seq), `seq ${m.seq} twice`);
        seqs.add(m.seq);
        check(m.seq > lastSeq, `${queue}/${shard} out of seq order`);
        lastSeq = m.seq;
        const k = `${groupKey(queue, shard)}|${m.id}`;
        found.set(k, (found.get(k) ?? 0) + 1);
        if (m.key !== undefined && !firstOfKey.has(m.key)) firstOfKey.set(m.key, m.seq);
        const inflight = m.delivery !== 0 && m.visibleAt > t;
        if (inflight) {
          this.inFlightUntil.set(m.seq, m.visibleAt);
          if (m.key !== undefined) {
            // Keyed order: one delivery of a key at a time, and only of its oldest message.
            check(!inflightKeys.has(m.key), `two of key ${m.key} in flight in ${queue}/${shard}`);
            inflightKeys.add(m.key);
            check(firstOfKey.get(m.key) === m.seq, `${m.id} of ${m.key} overtook an older one`);
          }
        }
      }
    }
    // Nothing lost, nothing doubled: every stored copy is in its queue or a DLQ until acked.
    same([...found].sort(), [...this.expected].sort(), "live copies");
  }
}

function run(seed: number, options: QueueTableOptions): Checker {
  const rand = new Rand(seed);
  const work = new Workload(rand.fork());
  const ref = new ReferenceQueue(options.dedupCap ?? 100_000, options.maxShardMessages ?? 100_000);
  let table = new QueueTable(options);
  const checker = new Checker();
  for (let step = 0; step < STEPS; step++) {
    const cmd = work.next(ref.msgs.length);
    const where = `seed ${seed} step ${step}: ${JSON.stringify(cmd)}`;
    const expected = ref.apply(cmd);
    const applied = table.apply({ index: step + 1, term: 1, type: "normal", data: JSON.stringify(cmd) });
    if (applied === null) throw new Error("no result");
    if (applied.result.type === "rejected" && expected.result.type === "rejected") {
      expected.result.detail = applied.result.detail; // the wording is the table's own
    }
    same(applied, expected, where);
    work.observe(applied.result);
    const acked = ref.lastAcked.map((m) => ({ queue: m.queue, shard: m.shard, id: m.id }));
    const removed = ref.lastRemoved.map((m) => ({ queue: m.queue, shard: m.shard, id: m.id }));
    checker.step(applied, ref.time, acked, removed);
    // Gone for good, like acked messages: never delivered again.
    const ackedSeqs = [...ref.lastAcked, ...ref.lastRemoved].map((m) => m.seq);
    checker.invariants(table, ackedSeqs);

    for (const q of QUEUES) {
      for (const s of SHARDS) same(table.stats(q, s, work.now), ref.stats(q, s, work.now), `${where} stats ${q}/${s}`);
    }
    same(table.totals(), ref.totals, where);
    check(table.nextDeadline() === ref.nextDeadline(), `${where}: next deadline`);
    if (rand.chance(1, 100)) {
      const image = table.snapshot();
      table = new QueueTable(options);
      table.restore(image);
      expect(table.snapshot()).toBe(image);
    }
  }
  return checker;
}

describe("queue table against the reference model", () => {
  it.each([1, 2, 3])(
    "seed %i: default limits",
    (seed) => {
      const c = run(seed, {});
      // The workload really exercised every rule.
      expect(c.counts.redelivered).toBeGreaterThan(200);
      expect(c.counts.deadLettered).toBeGreaterThan(100);
      expect(c.counts.acked).toBeGreaterThan(150);
      expect(c.counts.duplicates).toBeGreaterThan(10);
      expect(c.counts.redriven).toBeGreaterThan(100);
      expect(c.counts.rejected).toBeGreaterThan(0);
      expect(c.counts.removed).toBeGreaterThan(0);
    },
    30_000,
  );

  it.each([4, 5])(
    "seed %i: small dedup cap and shard limit",
    (seed) => {
      const c = run(seed, { dedupCap: 12, maxShardMessages: 8 });
      expect(c.counts.rejected).toBeGreaterThan(20);
      expect(c.counts.delivered).toBeGreaterThan(500);
    },
    30_000,
  );
});
