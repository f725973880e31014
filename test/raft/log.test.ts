/** RaftLog: durable entries (Storage) followed by the unstable tail. */
import { describe, expect, it } from "vitest";
import { CompactedError, type Entry, MemoryStorage } from "../../shared/raft/index.js";
import { RaftLog } from "../../shared/raft/log.js";
import { Unstable } from "../../shared/raft/log-unstable.js";
import { entry, ids } from "./helpers.js";

const conf3 = { voters: ids(3), learners: [] };

/** A log whose storage holds `stable` (terms of 1..k) and whose unstable tail holds `unstable`. */
function raftLog(stable: number[], unstable: number[] = [], commit = 0): RaftLog {
  const s = new MemoryStorage(conf3);
  s.append(stable.map((t, i) => entry(i + 1, t)));
  s.setHardState({ term: 0, vote: 0, commit });
  const log = new RaftLog(s);
  log.append(unstable.map((t, i) => entry(stable.length + i + 1, t)));
  return log;
}

const termsOf = (ents: Entry[]) => ents.map((e) => e.term);

describe("RaftLog", () => {
  it("reads terms and slices across storage and the unstable tail", () => {
    const log = raftLog([1, 1, 2], [2, 3]);
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm()]).toEqual([1, 5, 3]);
    expect([0, 1, 3, 4, 5, 6].map((i) => log.term(i))).toEqual([0, 1, 2, 2, 3, undefined]);
    expect(termsOf(log.slice(2, 5))).toEqual([1, 2, 2]);
    expect(termsOf(log.entries(4))).toEqual([2, 3]);
    expect(termsOf(log.entries(1, 2))).toEqual([1, 1]);
    expect(log.entries(6)).toEqual([]);
    expect(() => log.slice(3, 7)).toThrow(RangeError);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([4, 5]);
  });

  it("after compaction, earlier indexes are unavailable", () => {
    const s = new MemoryStorage(conf3);
    s.append([1, 1, 2, 2].map((t, i) => entry(i + 1, t)));
    s.setHardState({ term: 2, vote: 0, commit: 4 });
    s.createSnapshot(2, "");
    const log = new RaftLog(s);
    expect([log.firstIndex(), log.term(2), log.term(1)]).toEqual([3, 1, undefined]);
    expect(() => log.entries(2)).toThrow(CompactedError);
    expect(log.applied).toBe(2);
    expect(log.committed).toBe(4);
  });

  it.each([
    // (last index, last term) of the other log vs ours ending at (3, term 2)
    [3, 2, true],
    [4, 2, true],
    [2, 2, false],
    [1, 3, true],
    [9, 1, false],
  ])("isUpToDate(%i, %i) = %s against a log ending at (3, 2)", (i, t, want) => {
    expect(raftLog([1, 1, 2]).isUpToDate(i, t)).toBe(want);
  });

  it.each([
    [[], 0],
    [[entry(1, 1), entry(2, 1)], 0],
    [[entry(2, 1), entry(3, 2)], 0],
    [[entry(3, 2), entry(4, 4)], 4],
    [[entry(2, 1), entry(3, 3)], 3],
    [[entry(1, 9)], 1],
    [[entry(4, 2), entry(5, 2)], 4],
  ] as const)("findConflict(%j) = %i against 1@1 2@1 3@2", (ents, want) => {
    expect(raftLog([1, 1, 2]).findConflict(ents)).toBe(want);
  });

  it.each([
    // log terms 1 1 1 4 4 5 5 6 6 6 (index 1..10)
    [10, 6, 10, 6],
    [10, 5, 7, 5],
    [10, 4, 5, 4],
    [10, 3, 3, 1],
    [10, 0, 0, 0],
    [6, 4, 5, 4],
    [6, 9, 6, 5],
  ])("findConflictByTerm(%i, %i) = (%i, term %i)", (index, term, wantIndex, wantTerm) => {
    const log = raftLog([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
    expect(log.findConflictByTerm(index, term)).toEqual({ index: wantIndex, term: wantTerm });
  });

  it("findConflictByTerm stops at the compaction point", () => {
    const s = new MemoryStorage(conf3);
    s.append([1, 2, 3, 4, 5].map((t, i) => entry(i + 1, t)));
    s.setHardState({ term: 5, vote: 0, commit: 5 });
    s.createSnapshot(3, "");
    const log = new RaftLog(s);
    expect(log.findConflictByTerm(5, 1)).toEqual({ index: 2, term: 0 });
    expect(log.findConflictByTerm(5, 3)).toEqual({ index: 3, term: 3 });
  });

  it("maybeAppend checks the previous entry, truncates a conflict and commits up to the last new entry", () => {
    const log = raftLog([1, 2, 2], [], 1);
    expect(log.maybeAppend(3, 1, 3, [entry(4, 3)])).toBeUndefined(); // previous term mismatch
    expect(log.maybeAppend(4, 2, 3, [])).toBeUndefined(); // past the end
    expect(log.maybeAppend(2, 2, 9, [entry(3, 3), entry(4, 3)])).toBe(4);
    expect(termsOf(log.entries(1))).toEqual([1, 2, 3, 3]);
    expect(log.committed).toBe(4); // min(leader commit 9, last new 4)
    expect(log.maybeAppend(1, 1, 2, [])).toBe(1); // a heartbeat-like append does not lower the commit
    expect(log.committed).toBe(4);
  });

  it("maybeAppend of already present entries keeps a longer log", () => {
    const log = raftLog([1, 1, 1, 1]);
    expect(log.maybeAppend(1, 1, 0, [entry(2, 1)])).toBe(2);
    expect(log.lastIndex()).toBe(4);
  });

  it("refuses to overwrite a committed entry", () => {
    const log = raftLog([1, 1, 1], [], 2);
    expect(() => log.maybeAppend(1, 1, 0, [entry(2, 2)])).toThrow(/committed/);
    expect(() => log.append([entry(2, 2)])).toThrow(/committed/);
  });

  it("commitTo never goes back and never past the last index", () => {
    const log = raftLog([1, 1, 1], [], 2);
    log.commitTo(1);
    expect(log.committed).toBe(2);
    log.commitTo(3);
    expect(log.committed).toBe(3);
    expect(() => log.commitTo(4)).toThrow(/out of range/);
  });

  it("maybeCommit commits only an index of the given term (§5.4.2)", () => {
    const log = raftLog([1, 1, 2, 3]);
    expect(log.maybeCommit(3, 3)).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit(4, 3)).toBe(true);
    expect(log.committed).toBe(4);
    expect(log.maybeCommit(2, 1)).toBe(false);
  });

  it("nextEntries hands out committed, unapplied entries, at most max at a time", () => {
    const log = raftLog([1, 1, 1, 1], [1], 4);
    expect(log.hasNextEntries()).toBe(true);
    expect(log.nextEntries(2).map((e) => e.index)).toEqual([1, 2]);
    log.appliedTo(2);
    expect(log.nextEntries().map((e) => e.index)).toEqual([3, 4]);
    log.appliedTo(4);
    expect(log.hasNextEntries()).toBe(false);
    expect(log.nextEntries()).toEqual([]);
    expect(() => log.appliedTo(5)).toThrow(/out of range/);
    expect(() => log.appliedTo(3)).toThrow(/out of range/);
  });

  it("a restart resumes from the host's applied index, capped at the commit index", () => {
    const s = new MemoryStorage(conf3);
    s.append([1, 1, 1].map((t, i) => entry(i + 1, t)));
    s.setHardState({ term: 1, vote: 0, commit: 2 });
    expect(new RaftLog(s, 1).applied).toBe(1);
    expect(new RaftLog(s, 3).applied).toBe(2);
    expect(new RaftLog(s).nextEntries().map((e) => e.index)).toEqual([1, 2]);
  });

  it("restore replaces the log with a snapshot and commits up to it", () => {
    const log = raftLog([1, 1], [2]);
    log.restore({ metadata: { index: 7, term: 3, conf: conf3 }, data: "" });
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.term(7), log.term(3)]).toEqual([
      8,
      7,
      7,
      3,
      undefined,
    ]);
    expect(log.snapshot().metadata.index).toBe(7);
    expect(log.unstableEntries()).toEqual([]);
  });

  it("stableTo drops the unstable entries that were persisted, unless they were replaced", () => {
    const log = raftLog([1], [1, 1]);
    log.stableTo(2, 9); // wrong term: stale
    expect(log.unstableEntries().map((e) => e.index)).toEqual([2, 3]);
    log.stableTo(2, 1);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([3]);
  });
});

describe("Unstable", () => {
  it("truncateAndAppend appends, replaces everything, or truncates in the middle", () => {
    const u = new Unstable(5);
    u.truncateAndAppend([entry(5, 1), entry(6, 1)]);
    expect([u.offset, termsOf(u.entries)]).toEqual([5, [1, 1]]);
    u.truncateAndAppend([entry(7, 1)]); // directly after
    expect(u.maybeLastIndex()).toBe(7);
    u.truncateAndAppend([entry(6, 2)]); // in the middle
    expect([u.offset, termsOf(u.entries)]).toEqual([5, [1, 2]]);
    u.truncateAndAppend([entry(4, 3)]); // before the offset: replaces all
    expect([u.offset, termsOf(u.entries)]).toEqual([4, [3]]);
  });

  it("knows the snapshot's index and term, and nothing below it", () => {
    const u = new Unstable(1);
    expect([u.maybeFirstIndex(), u.maybeLastIndex(), u.maybeTerm(0)]).toEqual([undefined, undefined, undefined]);
    u.restore({ metadata: { index: 4, term: 2, conf: conf3 }, data: "" });
    expect([u.maybeFirstIndex(), u.maybeLastIndex(), u.maybeTerm(4), u.maybeTerm(3)]).toEqual([5, 4, 2, undefined]);
    u.stableSnapTo(3);
    expect(u.snapshot).toBeDefined();
    u.stableSnapTo(4);
    expect(u.snapshot).toBeUndefined();
  });
});
