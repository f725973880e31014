/** Peek, list, purge and delete on the queue table (the state behind `/v1/queues` housekeeping). */
import { describe, expect, it } from "vitest";
import { QueueTable } from "../../shared/queue/index.js";
import { Group, receipts, VIS } from "./helpers.js";

describe("peek", () => {
  it("shows visible messages oldest first without delivering them", () => {
    const g = new Group();
    g.put("q", [1, 2, 3]);
    const before = g.table.snapshot();
    const peeked = g.table.peek("q", 0, g.now, 10);
    expect(peeked.map((m) => JSON.parse(m.body))).toEqual([1, 2, 3]);
    for (const m of peeked) expect(m).toMatchObject({ attempts: 0, enqueuedAt: g.now });
    expect(peeked[0]).not.toHaveProperty("receipt");
    expect(g.table.snapshot()).toBe(before); // nothing changed
    expect(g.table.peek("q", 0, g.now, 2)).toHaveLength(2);
    // The receive that follows still gets all three, at their first attempt.
    expect(g.receive("q", 10).messages.map((d) => d.attempts)).toEqual([1, 1, 1]);
  });

  it("skips in-flight and delayed messages, keeps keys, and sees expired deliveries again", () => {
    const g = new Group();
    g.put("q", ["a"], { key: "k" });
    g.enqueue("q", [{ id: "late", body: "late", delayMs: 5000 }]);
    g.put("q", ["b"]);
    g.receive("q", 1); // "a" in flight
    expect(g.table.peek("q", 0, g.now, 10).map((m) => m.body)).toEqual(['"b"']);
    g.now += VIS;
    const peeked = g.table.peek("q", 0, g.now, 10);
    expect(peeked.map((m) => [m.body, m.attempts, m.key])).toEqual([
      ['"a"', 1, "k"],
      ['"late"', 0, undefined],
      ['"b"', 0, undefined],
    ]);
    expect(g.table.peek("nope", 0, g.now, 10)).toEqual([]);
  });
});

describe("purge", () => {
  it("drops the visible and delayed messages of one shard, not deliveries in flight, its DLQ or other shards", () => {
    const g = new Group();
    g.put("q", [1, 2, 3]);
    g.enqueue("q", [{ id: "d", body: 0, delayMs: 10_000 }]);
    g.put("q", [9], { shard: 1 });
    g.put("q.dlq", ["dead"]);
    const inflight = g.receive("q", 1);
    const r = g.run({ type: "purge", queue: "q", shard: 0 }).result;
    expect(r).toEqual({ type: "purged", queue: "q", shard: 0, purged: 3 });
    expect(g.stats("q")).toEqual({ visible: 0, inflight: 1, delayed: 0, dlq: 1 });
    expect(g.stats("q", 1).visible).toBe(1);
    expect(g.ack("q", receipts(inflight.messages))).toBe(1); // the delivery in flight finishes
    expect(g.run({ type: "purge", queue: "unknown", shard: 0 }).result).toMatchObject({ purged: 0 });
    // The queue keeps working.
    g.put("q", [4]);
    expect(g.bodies("q")).toEqual([4]);
  });
});

describe("delete", () => {
  it("forgets the queue, its config and its ids, not its DLQ; a later enqueue starts afresh", () => {
    const g = new Group();
    g.run({ type: "configure", queue: "q", maxAttempts: 2 });
    g.enqueue("q", [{ id: "x", body: 1 }]);
    g.put("q", [2], { shard: 3 });
    g.put("q.dlq", ["dead"]);
    g.put("other", [7]);
    const r = g.run({ type: "delete", queue: "q" }).result;
    expect(r).toEqual({ type: "deleted", queue: "q", messages: 2 });
    // What is left of q is its DLQ (listed under q).
    expect([...g.table.list(g.now).keys()].sort()).toEqual(["other", "q"]);
    expect(g.stats("q")).toEqual({ visible: 0, inflight: 0, delayed: 0, dlq: 1 });
    expect(g.table.config("q").maxAttempts).toBe(5);
    // The same id is a new message now, not a duplicate of the deleted one.
    const again = g.enqueue("q", [{ id: "x", body: 1 }]);
    expect(again).toMatchObject({ type: "enqueued", messages: [{ id: "x", duplicate: false }] });
    expect(g.bodies("q")).toEqual([1]);
    expect(g.bodies("other")).toEqual([7]);
    expect(g.run({ type: "delete", queue: "never" }).result).toEqual({
      type: "deleted",
      queue: "never",
      messages: 0,
    });
  });
});

describe("list", () => {
  it("names every queue with messages or a config, DLQs counted under their queue", () => {
    const g = new Group();
    g.put("a", [1, 2]);
    g.put("a", [3], { shard: 2 });
    g.receive("a", 1);
    g.enqueue("a", [{ id: "d", body: 0, delayMs: 1000 }], 1);
    g.put("b.dlq", ["dead"]);
    g.run({ type: "configure", queue: "c", visibilityMs: 5000 });
    const list = Object.fromEntries(g.table.list(g.now));
    expect(list).toEqual({
      a: { visible: 2, inflight: 1, delayed: 1, dlq: 0 },
      b: { visible: 0, inflight: 0, delayed: 0, dlq: 1 },
      c: { visible: 0, inflight: 0, delayed: 0, dlq: 0 },
    });
  });
});

describe("snapshots after housekeeping", () => {
  it("a restored table carries the effect of purge and delete (config and dedup memory included)", () => {
    const g = new Group();
    g.run({ type: "configure", queue: "q", maxAttempts: 2 });
    g.enqueue("q", [{ id: "x", body: 1 }]);
    g.put("keep", [1, 2]);
    g.run({ type: "delete", queue: "q" });
    g.put("keep", [3], { shard: 1 });
    g.run({ type: "purge", queue: "keep", shard: 0 });
    const restored = new QueueTable();
    restored.restore(g.table.snapshot());
    expect(restored.snapshot()).toBe(g.table.snapshot());
    expect(Object.fromEntries(restored.list(g.now))).toEqual(Object.fromEntries(g.table.list(g.now)));
    expect(restored.config("q").maxAttempts).toBe(5);
    const cmd = { type: "enqueue" as const, queue: "q", shard: 0, messages: [{ id: "x", body: 1 }], now: g.now };
    expect(restored.applyCommand(cmd)).toEqual(g.table.applyCommand(cmd));
    expect(restored.applyCommand(cmd).result).toMatchObject({ messages: [{ duplicate: true }] });
  });
});
