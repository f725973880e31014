/** Snapshots: a restored table behaves exactly like the one it was taken from. */
import { describe, expect, it } from "vitest";
import { LockTable } from "../../shared/locks/index.js";
import { Rand } from "../../shared/raft/rand.js";
import { Group } from "./helpers.js";
import { OWNERS, RESOURCES, Workload } from "./workload.js";

describe("lock table snapshots", () => {
  it("a table restored mid-workload gives identical results, events, views and snapshots", () => {
    const work = new Workload(new Rand(7));
    const original = new LockTable();
    let index = 0;
    for (; index < 1500; index++) original.applyCommand(work.next(original.waitEdges()), index + 1);
    const image = original.snapshot();
    expect(JSON.parse(image).resources.length).toBeGreaterThan(0); // really mid-workload

    const restored = new LockTable();
    restored.restore(image);
    expect(restored.snapshot()).toBe(image);
    for (; index < 3000; index++) {
      const cmd = work.next(original.waitEdges());
      expect(restored.applyCommand(cmd, index + 1)).toEqual(original.applyCommand(cmd, index + 1));
      for (const r of RESOURCES) expect(restored.view(r, work.now)).toEqual(original.view(r, work.now));
      expect(restored.nextDeadline()).toBe(original.nextDeadline());
      expect(restored.waitEdges()).toEqual(original.waitEdges());
    }
    expect(restored.snapshot()).toBe(original.snapshot());
  });

  it("the image holds only live locks", () => {
    const g = new Group();
    for (const r of RESOURCES) for (const o of OWNERS) g.acquire(r, o, { mode: "shared" });
    const full = g.table.snapshot().length;
    for (const r of RESOURCES) for (const o of OWNERS.slice(1)) g.release(r, o);
    const one = g.table.snapshot().length;
    expect(one).toBeLessThan(full / 3);
    for (const r of RESOURCES) g.release(r, OWNERS[0] as string);
    expect(JSON.parse(g.table.snapshot())).toEqual({ version: 1, time: g.now, lastToken: 24, resources: [] });
  });

  it("restoring an empty image empties the table; an unknown version is refused", () => {
    const g = new Group();
    g.acquire("r", "A");
    g.table.restore("");
    expect(g.table.view("r", 0).holders).toEqual([]);
    expect(g.table.now).toBe(0);
    expect(() => g.table.restore('{"version":2}')).toThrow(/version 2/);
  });
});
