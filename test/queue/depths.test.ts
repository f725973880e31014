import { describe, expect, it } from "vitest";
import { QueueTable } from "../../shared/queue/queue-table.js";

describe("QueueTable.depths", () => {
  it("sums visible, in-flight and delayed messages per queue over the group's shards", () => {
    const t = new QueueTable();
    t.applyCommand({ type: "enqueue", queue: "a", shard: 0, messages: [{ id: "1", body: 1 }], now: 1000 });
    t.applyCommand({
      type: "enqueue",
      queue: "a",
      shard: 3,
      messages: [
        { id: "2", body: 2 },
        { id: "3", body: 3, delayMs: 5000 },
      ],
      now: 1000,
    });
    t.applyCommand({ type: "enqueue", queue: "b.dlq", shard: 1, messages: [{ id: "4", body: 4 }], now: 1000 });
    t.applyCommand({ type: "receive", queue: "a", shard: 0, max: 1, now: 1001 });
    expect(Object.fromEntries(t.depths(1002))).toEqual({
      a: { visible: 1, inflight: 1, delayed: 1 },
      "b.dlq": { visible: 1, inflight: 0, delayed: 0 },
    });
    // Later, the delay has passed.
    expect(t.depths(7000).get("a")).toEqual({ visible: 2, inflight: 1, delayed: 0 });
  });
});

describe("QueueTable.hasDeliverable", () => {
  it("is false for a keyed message waiting behind an in-flight one of its key, true again after the ack", () => {
    const t = new QueueTable();
    t.applyCommand({
      type: "enqueue",
      queue: "q",
      shard: 0,
      messages: [
        { id: "1", body: 1, key: "k" },
        { id: "2", body: 2, key: "k" },
      ],
      now: 1000,
    });
    expect(t.hasDeliverable("q", 0, 1000)).toBe(true);
    const got = t.applyCommand({ type: "receive", queue: "q", shard: 0, max: 10, now: 1001 });
    expect(got.result.type === "received" && got.result.messages.length).toBe(1);
    // Message 2 counts as visible, but a receive would deliver nothing.
    expect(t.stats("q", 0, 1002).visible).toBe(1);
    expect(t.hasDeliverable("q", 0, 1002)).toBe(false);
    expect(t.hasDeliverable("q", 7, 1002)).toBe(false);
    const receipt = got.result.type === "received" ? (got.result.messages[0]?.receipt ?? "") : "";
    const acked = t.applyCommand({ type: "ack", queue: "q", shard: 0, receipts: [receipt], now: 1003 });
    expect(acked.wake).toEqual([{ queue: "q", shard: 0, at: 1003 }]);
    expect(t.hasDeliverable("q", 0, 1004)).toBe(true);
  });
});
