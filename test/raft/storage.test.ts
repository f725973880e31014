/** MemoryStorage: the host's "disk" in tests and in the simulator. */
import { describe, expect, it } from "vitest";
import { CompactedError, type Entry, encodeConfChange, MemoryStorage } from "../../shared/raft/index.js";
import { entry, ids } from "./helpers.js";

const conf3 = { voters: ids(3), learners: [] };

/** Storage holding entries 1..n with the given terms. */
function withTerms(terms: number[]): MemoryStorage {
  const s = new MemoryStorage(conf3);
  s.append(terms.map((t, i) => entry(i + 1, t)));
  return s;
}

const termsOf = (ents: Entry[]) => ents.map((e) => e.term);

describe("MemoryStorage", () => {
  it("starts empty, with the genesis configuration in a snapshot at index 0", () => {
    const s = new MemoryStorage(conf3);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.entries(1, 1)).toEqual([]);
    expect(s.initialState()).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      snapshot: { index: 0, term: 0, conf: conf3 },
    });
  });

  it("appends at the end and truncates a conflicting suffix", () => {
    const s = withTerms([1, 1, 2]);
    expect(s.lastIndex()).toBe(3);
    s.append([entry(4, 2), entry(5, 3)]);
    expect(termsOf(s.entries(1, 6))).toEqual([1, 1, 2, 2, 3]);
    s.append([entry(3, 4)]); // overwrites 3, drops 4 and 5
    expect(s.lastIndex()).toBe(3);
    expect(termsOf(s.entries(1, 4))).toEqual([1, 1, 4]);
    s.append([entry(1, 5), entry(2, 5)]);
    expect(termsOf(s.entries(1, 3))).toEqual([5, 5]);
    expect(s.lastIndex()).toBe(2);
  });

  it("refuses an append that leaves a gap", () => {
    const s = withTerms([1]);
    expect(() => s.append([entry(3, 1)])).toThrow(/gap/);
    expect(s.lastIndex()).toBe(1);
  });

  it("an empty append changes nothing", () => {
    const s = withTerms([1, 1]);
    s.append([]);
    expect(s.lastIndex()).toBe(2);
  });

  it("entries(lo, hi) is half-open and bounded by the log", () => {
    const s = withTerms([1, 2, 3, 4]);
    expect(s.entries(2, 4).map((e) => e.index)).toEqual([2, 3]);
    expect(s.entries(4, 5).map((e) => e.index)).toEqual([4]);
    expect(() => s.entries(2, 6)).toThrow(RangeError);
    expect(() => s.entries(0, 2)).toThrow(CompactedError);
  });

  it("term(i) covers the snapshot index and the log; past the end is an error", () => {
    const s = withTerms([1, 2]);
    expect([s.term(0), s.term(1), s.term(2)]).toEqual([0, 1, 2]);
    expect(() => s.term(3)).toThrow(RangeError);
  });

  it("createSnapshot compacts the log up to its index", () => {
    const s = withTerms([1, 1, 2, 2, 3]);
    const snap = s.createSnapshot(3, "img");
    expect(snap).toEqual({ metadata: { index: 3, term: 2, conf: conf3 }, data: "img" });
    expect(s.snapshot()).toBe(snap);
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(5);
    expect(s.term(3)).toBe(2);
    expect(termsOf(s.entries(4, 6))).toEqual([2, 3]);
    expect(() => s.term(2)).toThrow(CompactedError);
    expect(() => s.entries(3, 5)).toThrow(CompactedError);
    expect(s.initialState().snapshot.index).toBe(3);
  });

  it("createSnapshot at or below the current snapshot is a no-op; past the end is an error", () => {
    const s = withTerms([1, 1, 2]);
    const snap = s.createSnapshot(2, "a");
    expect(s.createSnapshot(1, "b")).toBe(snap);
    expect(s.createSnapshot(2, "c")).toBe(snap);
    expect(() => s.createSnapshot(4, "d")).toThrow(RangeError);
    expect(s.firstIndex()).toBe(3);
  });

  it("createSnapshot folds the conf changes up to its index into the snapshot's configuration", () => {
    const s = new MemoryStorage(conf3);
    const cc = (index: number, data: string): Entry => ({ index, term: 1, type: "conf", data });
    s.append([
      entry(1, 1),
      cc(2, encodeConfChange({ type: "addLearner", node: 4 })),
      cc(3, encodeConfChange({ type: "promote", node: 4 })),
      cc(4, encodeConfChange({ type: "remove", node: 1 })),
    ]);
    expect(s.createSnapshot(2, "").metadata.conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(s.createSnapshot(3, "").metadata.conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(s.createSnapshot(4, "").metadata.conf).toEqual({ voters: [2, 3, 4], learners: [] });
  });

  it("append skips the entries a snapshot already covers", () => {
    const s = withTerms([1, 1, 1, 1]);
    s.createSnapshot(3, "");
    s.append([entry(2, 1), entry(3, 1), entry(4, 1), entry(5, 2)]);
    expect(s.firstIndex()).toBe(4);
    expect(termsOf(s.entries(4, 6))).toEqual([1, 2]);
    s.append([entry(1, 1), entry(2, 1)]); // entirely covered: nothing happens
    expect(s.lastIndex()).toBe(5);
  });

  it("applySnapshot replaces the whole log; an older snapshot is ignored", () => {
    const s = withTerms([1, 1, 2, 2]);
    const snap = { metadata: { index: 6, term: 3, conf: conf3 }, data: "img" };
    s.applySnapshot(snap);
    expect(s.snapshot()).toEqual(snap);
    expect([s.firstIndex(), s.lastIndex(), s.term(6)]).toEqual([7, 6, 3]);
    s.applySnapshot({ metadata: { index: 5, term: 3, conf: conf3 }, data: "old" });
    expect(s.snapshot().data).toBe("img");
    s.append([entry(7, 3)]);
    expect(s.lastIndex()).toBe(7);
  });

  it("setHardState stores a copy", () => {
    const s = new MemoryStorage(conf3);
    const hs = { term: 2, vote: 1, commit: 0 };
    s.setHardState(hs);
    hs.term = 9;
    expect(s.initialState().hardState).toEqual({ term: 2, vote: 1, commit: 0 });
  });
});
