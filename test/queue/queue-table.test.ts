/** The queue rules, one test each, on a single QueueTable (one Raft group). */
import { describe, expect, it } from "vitest";
import { DEDUP_WINDOW_MS, QueueTable } from "../../shared/queue/index.js";
import { Group, receipts, START, VIS } from "./helpers.js";

describe("delivery", () => {
  it("is FIFO by enqueue order across batches", () => {
    const g = new Group();
    g.put("q", [1, 2, 3]);
    g.put("q", [4, 5]);
    expect(g.bodies("q", 2)).toEqual([1, 2]);
    expect(g.bodies("q", 10)).toEqual([3, 4, 5]);
    expect(g.bodies("q", 10)).toEqual([]);
  });

  it("returns id, body text, key, receipt, attempts and enqueuedAt", () => {
    const g = new Group();
    g.enqueue("q", [{ id: "a", body: { x: [1, "y"] }, key: "k" }], 2);
    expect(g.receive("q", 1, { shard: 2 }).messages).toEqual([
      { id: "a", body: '{"x":[1,"y"]}', key: "k", receipt: "2:1:1", attempts: 1, enqueuedAt: START },
    ]);
  });

  it("an unacked message is invisible until its visibility runs out, then redelivered with attempts + 1", () => {
    const g = new Group();
    g.put("q", ["a"]);
    const first = g.receive("q", 1, { visibilityMs: 5000 }).messages;
    expect(first).toMatchObject([{ attempts: 1 }]);
    g.now += 4999;
    expect(g.bodies("q")).toEqual([]);
    g.now += 1;
    const second = g.receive("q").messages;
    expect(second).toMatchObject([{ id: first[0]?.id, attempts: 2 }]);
    expect(second[0]?.receipt).not.toBe(first[0]?.receipt);
  });

  it("a redelivered message keeps its place before newer messages", () => {
    const g = new Group();
    g.put("q", ["a"]);
    g.receive("q", 1, { visibilityMs: 1000 });
    g.put("q", ["b"]);
    g.now += 1000;
    expect(g.bodies("q")).toEqual(["a", "b"]);
  });

  it("time never runs backwards: a command stamped earlier uses the group's time", () => {
    const g = new Group();
    g.put("q", ["a"]);
    g.receive("q", 1, { visibilityMs: 1000 });
    g.now += 2000;
    g.put("q", ["b"]);
    g.now -= 1500; // a new leader whose clock is behind
    expect(g.bodies("q")).toEqual(["a", "b"]);
  });
});

describe("receipts", () => {
  it("ack deletes the message; it is never delivered again", () => {
    const g = new Group();
    g.put("q", ["a", "b"]);
    const [a] = g.receive("q", 1, { visibilityMs: 1000 }).messages;
    expect(g.ack("q", [a?.receipt ?? ""])).toBe(1);
    g.now += 10_000;
    expect(g.bodies("q")).toEqual(["b"]);
    g.now += 100_000;
    expect(g.bodies("q")).toEqual(["b"]);
  });

  it("a receipt from an earlier delivery cannot ack, extend or nack", () => {
    const g = new Group();
    g.put("q", ["a"]);
    const old = receipts(g.receive("q", 1, { visibilityMs: 1000 }).messages);
    g.now += 1000;
    const fresh = receipts(g.receive("q", 1, { visibilityMs: 1000 }).messages);
    expect(g.ack("q", old)).toBe(0);
    expect(g.extend("q", old, 60_000)).toBe(0);
    expect(g.nack("q", old)).toBe(0);
    expect(g.stats("q")).toMatchObject({ inflight: 1, visible: 0 });
    expect(g.ack("q", fresh)).toBe(1);
  });

  it("a receipt whose visibility ran out is stale even before a redelivery", () => {
    const g = new Group();
    g.put("q", ["a"]);
    const r = receipts(g.receive("q", 1, { visibilityMs: 1000 }).messages);
    g.now += 1000;
    expect(g.extend("q", r, 60_000)).toBe(0);
    expect(g.ack("q", r)).toBe(0);
    expect(g.stats("q")).toMatchObject({ visible: 1, inflight: 0 });
  });

  it("unknown, malformed, foreign-shard and repeated receipts count as not acked, without error", () => {
    const g = new Group();
    g.put("q", ["a"]);
    const [r] = receipts(g.receive("q").messages);
    const other = `1${(r ?? "").slice(1)}`; // same seq and delivery, other shard
    expect(g.ack("q", ["", "x", "0:1", "0:a:1", "0:99:99", other])).toBe(0);
    expect(g.ack("nope", [r ?? ""])).toBe(0);
    expect(g.ack("q", [r ?? "", r ?? ""])).toBe(1);
  });

  it("nack makes the message visible again at once, or after delayMs", () => {
    const g = new Group();
    g.put("q", ["a", "b"]);
    const [a, b] = receipts(g.receive("q", 2).messages);
    expect(g.nack("q", [a ?? ""])).toBe(1);
    expect(g.nack("q", [b ?? ""], 3000)).toBe(1);
    expect(g.stats("q")).toMatchObject({ visible: 1, delayed: 1, inflight: 0 });
    expect(g.receive("q").messages).toMatchObject([{ body: '"a"', attempts: 2 }]);
    g.now += 2999;
    expect(g.bodies("q")).toEqual([]);
    g.now += 1;
    expect(g.receive("q").messages).toMatchObject([{ body: '"b"', attempts: 2 }]);
  });

  it("extend moves the in-flight deadline to now + visibilityMs", () => {
    const g = new Group();
    g.put("q", ["a"]);
    const r = receipts(g.receive("q", 1, { visibilityMs: 1000 }).messages);
    g.now += 900;
    expect(g.extend("q", r, 5000)).toBe(1);
    g.now += 4999; // long past the first deadline
    expect(g.bodies("q")).toEqual([]);
    expect(g.extend("q", r, 1000)).toBe(1); // still live, so it extends again
    g.now += 1000;
    expect(g.bodies("q")).toEqual(["a"]);
  });
});

describe("per-key order", () => {
  it("while a keyed message is in flight, later messages of its key wait; others pass", () => {
    const g = new Group();
    g.enqueue("q", [
      { id: "1", body: 1, key: "k" },
      { id: "2", body: 2, key: "k" },
      { id: "3", body: 3 },
      { id: "4", body: 4, key: "j" },
      { id: "5", body: 5, key: "j" },
    ]);
    const first = g.receive("q", 10).messages;
    expect(first.map((d) => d.body)).toEqual(["1", "3", "4"]);
    expect(g.bodies("q")).toEqual([]);
    g.ack("q", receipts(first.filter((d) => d.key === "k")));
    expect(g.bodies("q")).toEqual([2]);
  });

  it("a keyed message delayed by a nack still holds back its key", () => {
    const g = new Group();
    g.enqueue("q", [
      { id: "1", body: 1, key: "k" },
      { id: "2", body: 2, key: "k" },
    ]);
    g.nack("q", receipts(g.receive("q").messages), 5000);
    expect(g.bodies("q")).toEqual([]);
    g.now += 5000;
    expect(g.bodies("q")).toEqual([1]);
  });

  it("one receive takes at most one message per key", () => {
    const g = new Group();
    g.enqueue("q", [
      { id: "1", body: 1, key: "k" },
      { id: "2", body: 2, key: "k" },
    ]);
    expect(g.bodies("q", 10)).toEqual([1]);
  });
});

describe("dead letters", () => {
  it("the receive that would deliver a message a (maxAttempts+1)-th time moves it to <queue>.dlq instead", () => {
    const g = new Group();
    g.put("q", ["a", "b"]);
    for (let attempt = 1; attempt <= 2; attempt++) {
      expect(g.receive("q", 1, { maxAttempts: 2, visibilityMs: 1000 }).messages).toMatchObject([{ attempts: attempt }]);
      g.now += 1000;
    }
    // Its visibility ran out after the last allowed delivery: visible, not yet dead-lettered.
    expect(g.stats("q")).toEqual({ visible: 2, inflight: 0, delayed: 0, dlq: 0 });
    const applied = g.run({ type: "receive", queue: "q", shard: 0, max: 1, visibilityMs: 1000, maxAttempts: 2 });
    expect(applied.result).toMatchObject({ deadLettered: 1, messages: [{ body: '"b"', attempts: 1 }] });
    expect(applied.wake).toEqual([{ queue: "q.dlq", shard: 0, at: g.now }]);
    expect(g.stats("q")).toEqual({ visible: 0, inflight: 1, delayed: 0, dlq: 1 });
    // The DLQ is an ordinary queue: the message starts over there, with its original enqueue time.
    expect(g.receive("q.dlq").messages).toMatchObject([{ body: '"a"', attempts: 1, enqueuedAt: START }]);
    expect(g.table.totals()).toMatchObject({ deadLettered: 1, delivered: 4, redelivered: 1 });
  });

  it("without maxAttempts in the receive, the queue's configured value applies (default 5)", () => {
    const g = new Group();
    g.put("q", ["a"]);
    g.put("r", ["a"]);
    expect(g.run({ type: "configure", queue: "q", maxAttempts: 1 }).result).toEqual({
      type: "configured",
      queue: "q",
      maxAttempts: 1,
      visibilityMs: VIS,
    });
    expect(g.table.config("r")).toEqual({ maxAttempts: 5, visibilityMs: VIS });
    for (let i = 0; i < 6; i++) {
      for (const q of ["q", "r"]) g.run({ type: "receive", queue: q, shard: 0, max: 1, visibilityMs: 10 });
      g.now += 10;
    }
    expect(g.stats("q").dlq).toBe(1);
    expect(g.stats("r").dlq).toBe(1);
    expect(g.table.totals().delivered).toBe(1 + 5);
  });

  it("a configured visibilityMs applies to receives that give none", () => {
    const g = new Group();
    g.run({ type: "configure", queue: "q", visibilityMs: 2000 });
    g.put("q", ["a"]);
    g.run({ type: "receive", queue: "q", shard: 0, max: 1 });
    g.now += 1999;
    expect(g.stats("q").inflight).toBe(1);
    g.now += 1;
    expect(g.stats("q").visible).toBe(1);
  });

  it("a dead-lettered keyed message unblocks its key in the same receive", () => {
    const g = new Group();
    g.enqueue("q", [
      { id: "1", body: 1, key: "k" },
      { id: "2", body: 2, key: "k" },
    ]);
    g.receive("q", 1, { maxAttempts: 1, visibilityMs: 10 });
    g.now += 10;
    expect(g.bodies("q", 5, { maxAttempts: 1 })).toEqual([2]);
  });

  it("redrive moves up to max messages from <queue>.dlq to the back of <queue>, attempts from 0", () => {
    const g = new Group();
    g.put("q", ["a", "b", "c"]);
    g.receive("q", 3, { visibilityMs: 10 });
    g.now += 10;
    expect(g.receive("q", 3, { maxAttempts: 1 }).deadLettered).toBe(3);
    g.put("q", ["d"]);
    expect(g.redrive("q", 2)).toBe(2);
    expect(g.stats("q")).toMatchObject({ visible: 3, dlq: 1 });
    expect(g.receive("q", 3).messages.map((d) => [d.body, d.attempts])).toEqual([
      ['"d"', 1],
      ['"a"', 1],
      ['"b"', 1],
    ]);
    expect(g.redrive("q")).toBe(1);
    expect(g.redrive("q")).toBe(0);
    expect(g.table.totals().redriven).toBe(3);
  });

  it("redrive leaves DLQ messages that a consumer holds in flight", () => {
    const g = new Group();
    g.put("q", ["a", "b"]);
    g.receive("q", 2, { visibilityMs: 10 });
    g.now += 10;
    g.receive("q", 2, { maxAttempts: 1 });
    g.receive("q.dlq", 1);
    expect(g.redrive("q")).toBe(1);
    expect(g.stats("q").dlq).toBe(1);
  });
});

describe("enqueue", () => {
  it("an id seen in the queue within 5 minutes is acknowledged again without a second copy", () => {
    const g = new Group();
    expect(g.enqueue("q", [{ id: "x", body: 1 }], 3)).toMatchObject({
      messages: [{ id: "x", shard: 3, duplicate: false }],
    });
    g.now += DEDUP_WINDOW_MS - 1;
    // A retry on another shard of the group is answered with the shard of the first copy.
    expect(g.enqueue("q", [{ id: "x", body: 2 }], 5)).toEqual({
      type: "enqueued",
      queue: "q",
      shard: 5,
      messages: [{ id: "x", shard: 3, duplicate: true }],
    });
    expect(g.stats("q", 3).visible + g.stats("q", 5).visible).toBe(1);
    expect(g.enqueue("other", [{ id: "x", body: 1 }], 3)).toMatchObject({ messages: [{ duplicate: false }] });
    g.now += 1;
    expect(g.enqueue("q", [{ id: "x", body: 3 }], 3)).toMatchObject({ messages: [{ shard: 3, duplicate: false }] });
    expect(g.bodies("q", 10, { shard: 3 })).toEqual([1, 3]);
    expect(g.table.totals()).toMatchObject({ enqueued: 3, duplicates: 1 });
  });

  it("an id twice in one batch is stored once", () => {
    const g = new Group();
    const r = g.enqueue("q", [
      { id: "x", body: 1 },
      { id: "x", body: 2 },
    ]);
    expect(r).toMatchObject({ messages: [{ duplicate: false }, { duplicate: true }] });
    expect(g.stats("q").visible).toBe(1);
  });

  it("a delayed message becomes visible at now + delayMs", () => {
    const g = new Group();
    const applied = g.run({ type: "enqueue", queue: "q", shard: 0, messages: [{ id: "d", body: "d", delayMs: 4000 }] });
    expect(applied.wake).toEqual([{ queue: "q", shard: 0, at: START + 4000 }]);
    g.put("q", ["now"]);
    expect(g.stats("q")).toMatchObject({ visible: 1, delayed: 1 });
    expect(g.table.nextVisibleAt("q", 0)).toBe(START + 4000);
    expect(g.bodies("q")).toEqual(["now"]);
    g.now += 3999;
    expect(g.bodies("q")).toEqual([]);
    g.now += 1;
    expect(g.bodies("q")).toEqual(["d"]);
  });

  it("a batch is all or nothing: one invalid message refuses the whole batch and leaves no trace", () => {
    const g = new Group();
    const before = g.table.snapshot();
    const r = g.enqueue("q", [
      { id: "a", body: 1 },
      { id: "b", body: 2, delayMs: -1 },
    ]);
    expect(r).toMatchObject({ type: "rejected", reason: "invalid", detail: expect.stringContaining("messages[1]") });
    expect(g.table.snapshot()).toBe(before.replace(`"time":0`, `"time":${START}`));
    expect(g.enqueue("q", [{ id: "a", body: 1 }])).toMatchObject({ messages: [{ duplicate: false }] });
    expect(g.enqueue("q", [{ id: "", body: 1 }])).toMatchObject({ type: "rejected" });
    expect(g.enqueue("q", [{ id: "c" } as never])).toMatchObject({ type: "rejected" });
    expect(g.enqueue("q", [])).toMatchObject({ type: "rejected" });
  });

  it("a batch that would overfill the shard is refused whole", () => {
    const g = new Group({ maxShardMessages: 3 });
    g.put("q", [1, 2]);
    expect(
      g.enqueue("q", [
        { id: "x", body: 3 },
        { id: "y", body: 4 },
      ]),
    ).toMatchObject({ type: "rejected", reason: "full" });
    expect(g.stats("q").visible).toBe(2);
    expect(g.enqueue("q", [{ id: "x", body: 3 }])).toMatchObject({ type: "enqueued" });
  });

  it("past the dedup cap the oldest ids are forgotten first", () => {
    const g = new Group({ dedupCap: 2 });
    for (const id of ["a", "b", "c"]) g.enqueue("q", [{ id, body: id }]);
    expect(g.enqueue("q", [{ id: "a", body: 0 }])).toMatchObject({ messages: [{ duplicate: false }] });
    expect(g.enqueue("q", [{ id: "c", body: 0 }])).toMatchObject({ messages: [{ duplicate: true }] });
  });

  it("enqueue and nack tell the host which shard got visible messages", () => {
    const g = new Group();
    expect(g.run({ type: "enqueue", queue: "q", shard: 4, messages: [{ id: "a", body: 1 }] }).wake).toEqual([
      { queue: "q", shard: 4, at: START },
    ]);
    const r = receipts(g.receive("q", 1, { shard: 4 }).messages);
    expect(g.run({ type: "nack", queue: "q", shard: 4, receipts: r, delayMs: 50 }).wake).toEqual([
      { queue: "q", shard: 4, at: START + 50 },
    ]);
    expect(g.run({ type: "ack", queue: "q", shard: 4, receipts: r }).wake).toEqual([]);
  });
});

describe("stats and compaction", () => {
  it("counts visible, in-flight, delayed and dead-lettered messages per shard, and group totals", () => {
    const g = new Group();
    g.put("q", [1, 2, 3, 4]);
    g.enqueue("q", [{ id: "late", body: 0, delayMs: 100 }]);
    g.put("q", [9], { shard: 1 });
    const [a] = receipts(g.receive("q", 2, { visibilityMs: 10 }).messages);
    g.ack("q", [a ?? ""]);
    g.now += 10; // b's visibility runs out
    g.receive("q", 3, { maxAttempts: 1 }); // b is dead-lettered; 3 and 4 are taken
    expect(g.stats("q")).toEqual({ visible: 0, inflight: 2, delayed: 1, dlq: 1 });
    expect(g.stats("q", 1)).toEqual({ visible: 1, inflight: 0, delayed: 0, dlq: 0 });
    expect(g.stats("never")).toEqual({ visible: 0, inflight: 0, delayed: 0, dlq: 0 });
    expect(g.table.totals()).toEqual({
      enqueued: 6,
      duplicates: 0,
      delivered: 4,
      redelivered: 0,
      acked: 1,
      deadLettered: 1,
      redriven: 0,
    });
    expect(g.table.nextDeadline()).toBe(START + 100); // the delayed message, before 3 and 4 come back
    expect(g.table.nextVisibleAt("q", 1)).toBeUndefined();
  });

  it("acked messages leave no trace: the image holds live messages only", () => {
    const g = new Group();
    for (let i = 0; i < 50; i++) g.put("q", [{ payload: "x".repeat(200), i }], { shard: i % 4 });
    const full = g.table.snapshot().length;
    for (let s = 0; s < 4; s++) g.ack("q", receipts(g.receive("q", 100, { shard: s }).messages), s);
    const empty = g.table.snapshot().length;
    expect(empty).toBeLessThan(full / 4);
    g.now += DEDUP_WINDOW_MS;
    g.run({ type: "ack", queue: "q", shard: 0, receipts: [] });
    const image = JSON.parse(g.table.snapshot());
    expect(image).toMatchObject({ shards: [], dedup: [], lastSeq: 50 });
    expect(g.table.nextDeadline()).toBeUndefined();
  });

  it("a shard emptied and used again does not accept receipts of its first life", () => {
    const g = new Group();
    g.put("q", ["a"]);
    const old = receipts(g.receive("q").messages);
    g.ack("q", old);
    g.put("q", ["b"]);
    g.receive("q");
    expect(g.ack("q", old)).toBe(0);
  });
});

describe("entries", () => {
  it("no-op and configuration entries give null", () => {
    const t = new QueueTable();
    expect(t.apply({ index: 1, term: 1, type: "normal", data: "" })).toBeNull();
    expect(t.apply({ index: 2, term: 1, type: "conf", data: "{}" } as never)).toBeNull();
  });
});
