/** Snapshots: a restored table behaves exactly like the one it was taken from. */
import { describe, expect, it } from "vitest";
import { QueueTable } from "../../shared/queue/index.js";
import { Rand } from "../../shared/raft/rand.js";
import { Group } from "./helpers.js";
import { QUEUES, SHARDS, Workload } from "./workload.js";

function live(table: QueueTable): number {
  const image = JSON.parse(table.snapshot()) as { shards: [string, number, unknown[]][] };
  return image.shards.reduce((n, [, , messages]) => n + messages.length, 0);
}

describe("queue table snapshots", () => {
  it("a table restored mid-workload gives identical results, stats, deadlines and snapshots", () => {
    const work = new Workload(new Rand(11));
    const original = new QueueTable();
    const observe = (cmd: Parameters<QueueTable["applyCommand"]>[0]) => {
      const applied = original.applyCommand(cmd);
      work.observe(applied.result);
      return applied;
    };
    let step = 0;
    for (; step < 1500; step++) observe(work.next(live(original)));
    const image = original.snapshot();
    const parsed = JSON.parse(image);
    // Really mid-workload: messages in flight, a DLQ, dedup memory and config.
    expect(parsed.shards.length).toBeGreaterThan(2);
    expect(parsed.dedup.length).toBeGreaterThan(0);
    expect(parsed.configs.length).toBeGreaterThan(0);
    const inflight = QUEUES.flatMap((q) => SHARDS.map((s) => original.stats(q, s, work.now).inflight));
    expect(inflight.reduce((a, b) => a + b)).toBeGreaterThan(0);

    const restored = new QueueTable();
    restored.restore(image);
    expect(restored.snapshot()).toBe(image);
    for (; step < 3000; step++) {
      const cmd = work.next(live(original));
      expect(restored.applyCommand(cmd)).toEqual(observe(cmd));
      for (const q of QUEUES)
        for (const s of SHARDS) expect(restored.stats(q, s, work.now)).toEqual(original.stats(q, s, work.now));
      expect(restored.nextDeadline()).toBe(original.nextDeadline());
      expect(restored.totals()).toEqual(original.totals());
    }
    expect(restored.snapshot()).toBe(original.snapshot());
  }, 30_000);

  it("restore replaces the whole state, and an empty image means an empty table", () => {
    const g = new Group();
    g.put("q", [1, 2]);
    g.run({ type: "configure", queue: "q", maxAttempts: 2 });
    const fresh = new QueueTable().snapshot();
    g.table.restore("");
    expect(g.table.snapshot()).toBe(fresh);
    expect(g.table.config("q").maxAttempts).toBe(5);
    expect(() => g.table.restore(JSON.stringify({ version: 2 }))).toThrow(/version/);
  });

  it("the image holds live messages and recent ids only, not history", () => {
    const g = new Group();
    for (let round = 0; round < 20; round++) {
      g.put(
        "q",
        Array.from({ length: 10 }, (_, i) => ({ round, i, pad: "p".repeat(100) })),
      );
      g.ack(
        "q",
        g.receive("q", 10).messages.map((d) => d.receipt),
      );
      g.now += 60_000;
    }
    const image = JSON.parse(g.table.snapshot());
    expect(image.shards).toEqual([]);
    expect(image.dedup.length).toBeLessThanOrEqual(50); // the last 5 minutes: 5 rounds of 10
    expect(image.totals).toMatchObject({ enqueued: 200, acked: 200 });
  });
});
