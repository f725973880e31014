/** The leader's view of a follower: probe / replicate / snapshot, and the Inflights window. */
import { describe, expect, it } from "vitest";
import { Inflights } from "../../shared/raft/inflights.js";
import { Progress } from "../../shared/raft/progress.js";

function progress(state: "probe" | "replicate" | "snapshot", match: number, next: number, inflight = 256): Progress {
  const pr = new Progress(next, inflight);
  pr.match = match;
  if (state === "replicate") {
    pr.becomeReplicate();
    pr.next = next;
  }
  if (state === "snapshot") pr.becomeSnapshot(next);
  return pr;
}

describe("Progress", () => {
  it("starts probing at the given next index", () => {
    const pr = new Progress(7, 4);
    expect([pr.state, pr.match, pr.next, pr.isPaused()]).toEqual(["probe", 0, 7, false]);
  });

  it("probe → replicate restarts right after match", () => {
    const pr = progress("probe", 3, 9);
    pr.becomeReplicate();
    expect([pr.state, pr.next]).toEqual(["replicate", 4]);
  });

  it("replicate → probe restarts right after match", () => {
    const pr = progress("replicate", 3, 9);
    pr.becomeProbe();
    expect([pr.state, pr.next]).toEqual(["probe", 4]);
  });

  it("snapshot → probe continues after the snapshot (or match, if further)", () => {
    const pr = progress("snapshot", 3, 10);
    expect(pr.pendingSnapshot).toBe(10);
    pr.becomeProbe();
    expect([pr.state, pr.next, pr.pendingSnapshot]).toEqual(["probe", 11, 0]);
    const pr2 = progress("snapshot", 12, 10);
    pr2.becomeProbe();
    expect(pr2.next).toBe(13);
  });

  it("a probe pauses after one append until acknowledged", () => {
    const pr = progress("probe", 0, 5);
    pr.sentEntries(7);
    expect([pr.isPaused(), pr.next]).toEqual([true, 5]);
    expect(pr.maybeUpdate(7)).toBe(true);
    expect([pr.isPaused(), pr.match, pr.next]).toEqual([false, 7, 8]);
  });

  it("replicate moves next optimistically and pauses when the window is full", () => {
    const pr = progress("replicate", 0, 1, 2);
    pr.sentEntries(3);
    expect([pr.next, pr.isPaused()]).toEqual([4, false]);
    pr.sentEntries(5);
    expect([pr.next, pr.isPaused(), pr.inflights.count()]).toEqual([6, true, 2]);
    pr.maybeUpdate(3);
    pr.inflights.freeLE(3);
    expect(pr.isPaused()).toBe(false);
  });

  it("a snapshot in flight pauses everything", () => {
    expect(progress("snapshot", 0, 10).isPaused()).toBe(true);
  });

  it("maybeUpdate ignores stale acknowledgements but never lowers next", () => {
    const pr = progress("replicate", 5, 9);
    expect(pr.maybeUpdate(4)).toBe(false);
    expect([pr.match, pr.next]).toEqual([5, 9]);
    expect(pr.maybeUpdate(6)).toBe(true);
    expect([pr.match, pr.next]).toEqual([6, 9]);
    expect(pr.maybeUpdate(10)).toBe(true);
    expect([pr.match, pr.next]).toEqual([10, 11]);
  });

  it.each([
    // [state, match, next, rejected, hint, result, next after]
    ["replicate", 5, 10, 5, 0, false, 10], // stale: at or below match
    ["replicate", 5, 10, 4, 0, false, 10],
    ["replicate", 5, 10, 9, 7, true, 6], // back to match + 1 (the hint is for probes)
    ["probe", 0, 10, 5, 0, false, 10], // not the probe in flight
    ["probe", 0, 10, 9, 9, true, 9], // hint past the rejection: one step back
    ["probe", 0, 10, 9, 3, true, 4], // jump to the hint
    ["probe", 5, 10, 9, 1, true, 6], // never below match + 1
    ["probe", 0, 1, 0, 0, true, 1],
  ] as const)(
    "maybeDecrTo in %s (match %i, next %i) for rejected %i, hint %i → %s, next %i",
    (state, match, next, rejected, hint, ok, after) => {
      const pr = progress(state, match, next);
      if (state === "probe") pr.probeSent = true;
      expect(pr.maybeDecrTo(rejected, hint)).toBe(ok);
      expect(pr.next).toBe(after);
      if (state === "probe" && ok) expect(pr.probeSent).toBe(false);
    },
  );
});

describe("Inflights", () => {
  it("is a bounded FIFO of last indexes", () => {
    const inf = new Inflights(3);
    inf.add(2);
    inf.add(4);
    expect([inf.count(), inf.full()]).toEqual([2, false]);
    inf.add(9);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(10)).toThrow(/full/);
  });

  it("freeLE frees every message acknowledged by an index", () => {
    const inf = new Inflights(5);
    for (const i of [2, 4, 6, 8]) inf.add(i);
    inf.freeLE(1);
    expect(inf.count()).toBe(4);
    inf.freeLE(5);
    expect(inf.count()).toBe(2);
    inf.freeLE(8);
    expect(inf.count()).toBe(0);
  });

  it("freeFirstOne frees the oldest; reset frees all", () => {
    const inf = new Inflights(2);
    inf.add(3);
    inf.add(5);
    inf.freeFirstOne();
    expect([inf.count(), inf.full()]).toEqual([1, false]);
    inf.freeLE(4);
    expect(inf.count()).toBe(1); // 5 is still in flight
    inf.reset();
    expect(inf.count()).toBe(0);
    inf.freeFirstOne(); // on empty: harmless
    expect(inf.count()).toBe(0);
  });
});
