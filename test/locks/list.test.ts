/** LockTable.list: the state behind `GET /v1/locks?prefix=`. */
import { describe, expect, it } from "vitest";
import { LockTable } from "../../shared/locks/index.js";
import { Rand } from "../../shared/raft/rand.js";
import { Group, TTL } from "./helpers.js";
import { Workload } from "./workload.js";

describe("lock listing", () => {
  it("lists held and waited-for locks by prefix, sorted, holders and waiters as a view shows them", () => {
    const g = new Group();
    g.acquire("jobs/b", "A");
    g.acquire("jobs/a", "B", { mode: "shared" });
    g.acquire("jobs/a", "C", { mode: "shared" });
    g.acquire("jobs/b", "D", { waitMs: 10_000 });
    g.acquire("other", "E");
    const { locks, truncated } = g.table.list("jobs/", g.now, 1000);
    expect(truncated).toBe(false);
    expect(locks.map((l) => l.resource)).toEqual(["jobs/a", "jobs/b"]);
    expect(locks[0]).toEqual(g.table.view("jobs/a", g.now));
    expect(locks[1]?.holders.map((h) => h.owner)).toEqual(["A"]);
    expect(locks[1]?.waiters).toEqual([{ owner: "D", mode: "exclusive" }]);
    expect(g.table.list("", g.now, 1000).locks.map((l) => l.resource)).toEqual(["jobs/a", "jobs/b", "other"]);
    expect(g.table.list("nothing", g.now, 1000)).toEqual({ locks: [], truncated: false });
  });

  it("leaves out released and expired locks, and says when the limit cut the list", () => {
    const g = new Group();
    for (const r of ["r1", "r2", "r3", "r4"]) g.acquire(r, "A");
    g.release("r2", "A");
    expect(g.table.list("r", g.now, 2)).toMatchObject({ truncated: true });
    expect(g.table.list("r", g.now, 2).locks.map((l) => l.resource)).toEqual(["r1", "r3"]);
    expect(g.table.list("r", g.now, 3)).toMatchObject({ truncated: false });
    // Past the lease, nothing is listed even before an expire command runs.
    expect(g.table.list("r", g.now + TTL, 10)).toEqual({ locks: [], truncated: false });
  });

  it("a table restored from a snapshot lists the same", () => {
    const work = new Workload(new Rand(5));
    const original = new LockTable();
    for (let i = 0; i < 800; i++) original.applyCommand(work.next(original.waitEdges()), i + 1);
    const listed = original.list("", work.now, 1000);
    expect(listed.locks.length).toBeGreaterThan(0);
    const restored = new LockTable();
    restored.restore(original.snapshot());
    expect(restored.list("", work.now, 1000)).toEqual(listed);
    expect(restored.list("", work.now, 1)).toEqual(original.list("", work.now, 1));
  });
});
