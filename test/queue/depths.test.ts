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
