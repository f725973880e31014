/**
 * The replicated cache directory (DirectoryTable), one MESI transition per row: a key's entry
 * before, one command, the result and the entry after. Then stamps, the exactly-once memory
 * (compact/replay) and snapshots.
 */
import { describe, expect, it } from "vitest";
import { type DirectoryEntry, DirectoryTable } from "../../shared/cache/directory.js";
import type { CacheApplied, CacheCommand, CacheResult, Propagation } from "../../shared/cache/types.js";

const KEY = "k";
/** Every row's command is group time NOW and is committed at INDEX; the key stood at stamp BEFORE. */
const NOW = 1_000;
const INDEX = 10;
const BEFORE = 7;
const LEASE = 500;
/** A lease still running at NOW, one that ended before NOW, and one that ends exactly at NOW (ended). */
const LIVE = NOW + 200;
const ENDED = NOW - 100;
const ENDS_NOW = NOW;
/** The lease a command granted at NOW hands out. */
const GRANTED = NOW + LEASE;

function tableWith(entry: DirectoryEntry | undefined): DirectoryTable {
  const t = new DirectoryTable();
  t.restore(entry === undefined ? "" : JSON.stringify([[KEY, entry]]));
  return t;
}

/** A stored entry, as `entry()` shows it (a deep copy: nothing the test holds can change it). */
function entryOf(t: DirectoryTable): DirectoryEntry | undefined {
  const e = t.entry(KEY);
  return e === undefined ? undefined : (JSON.parse(JSON.stringify(e)) as DirectoryEntry);
}

type Read = Extract<CacheCommand, { type: "cache-read" }>;
type Write = Extract<CacheCommand, { type: "cache-write" }>;
type Delete = Extract<CacheCommand, { type: "cache-delete" }>;

const read = (node: string, extra: { writeback?: string; basedOn?: number } = {}): Read => ({
  type: "cache-read",
  key: KEY,
  node,
  basedOn: BEFORE,
  now: NOW,
  leaseMs: LEASE,
  ...extra,
});

const write = (
  node: string,
  value: string,
  acked: string[],
  extra: { writeback?: string; basedOn?: number; propagation?: Propagation } = {},
): Write => ({
  type: "cache-write",
  key: KEY,
  node,
  value,
  propagation: "invalidate",
  acked,
  basedOn: BEFORE,
  now: NOW,
  leaseMs: LEASE,
  ...extra,
});

const del = (node: string, acked: string[], extra: { writeback?: string; basedOn?: number } = {}): Delete => ({
  type: "cache-delete",
  key: KEY,
  node,
  acked,
  basedOn: BEFORE,
  now: NOW,
  ...extra,
});

const writeback = (node: string, value: string, stamp: number): CacheCommand => ({
  type: "cache-writeback",
  key: KEY,
  node,
  value,
  stamp,
  now: NOW,
});

/** A read's grant (with the value) and a write's (without: the writer has it), both at INDEX. */
const granted = (state: "E" | "S", value: string): CacheResult => ({
  type: "granted",
  key: KEY,
  state,
  stamp: INDEX,
  value,
  leaseMs: LEASE,
});
const wrote = (state: "M" | "S"): CacheResult => ({ type: "written", key: KEY, state, stamp: INDEX, leaseMs: LEASE });
const conflict: CacheResult = { type: "conflict", key: KEY };
const at = (e: Omit<DirectoryEntry, "stamp">): DirectoryEntry => ({ stamp: BEFORE, ...e });
const now = (e: Omit<DirectoryEntry, "stamp">): DirectoryEntry => ({ stamp: INDEX, ...e });

interface Row {
  name: string;
  before: DirectoryEntry | undefined;
  cmd: CacheCommand;
  result: CacheResult;
  /** `"unchanged"`: the entry must be exactly as before. */
  after: DirectoryEntry | undefined | "unchanged";
  push?: CacheApplied["push"];
}

function check(row: Row): void {
  const t = tableWith(row.before);
  const applied = t.apply(row.cmd, INDEX);
  expect(applied.result).toEqual(row.result);
  expect(applied.push).toEqual(row.push);
  expect(entryOf(t)).toEqual(row.after === "unchanged" ? row.before : row.after);
  // The stamp is the index of the last command that changed the key (0 once it is gone).
  const after = row.after === "unchanged" ? row.before : row.after;
  expect(t.stamp(KEY)).toBe(after?.stamp ?? 0);
}

const READS: Row[] = [
  {
    name: "a miss on a key never written: absent, and no entry appears",
    before: undefined,
    cmd: read("A", { basedOn: 0 }),
    result: { type: "absent", key: KEY },
    after: undefined,
  },
  {
    name: "a miss with no holder: E",
    before: at({ value: "v", sharers: {} }),
    cmd: read("A"),
    result: granted("E", "v"),
    after: now({ value: "v", owner: "A", sharers: {} }),
  },
  {
    name: "the owner reads again: E",
    before: at({ value: "v", owner: "A", sharers: {} }),
    cmd: read("A"),
    result: granted("E", "v"),
    after: now({ value: "v", owner: "A", sharers: {} }),
  },
  {
    name: "an owner elsewhere that hands back a dirty value: both S, the dirty value backs the key",
    before: at({ value: "old", owner: "B", sharers: {} }),
    cmd: read("A", { writeback: "dirty" }),
    result: granted("S", "dirty"),
    after: now({ value: "dirty", sharers: { A: GRANTED, B: GRANTED } }),
  },
  {
    name: "an owner elsewhere with nothing dirty: both S on the backing value",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: read("A"),
    result: granted("S", "v"),
    after: now({ value: "v", sharers: { A: GRANTED, B: GRANTED } }),
  },
  {
    name: "live sharers: S, their leases kept",
    before: at({ value: "v", sharers: { B: LIVE, C: LIVE + 1 } }),
    cmd: read("A"),
    result: granted("S", "v"),
    after: now({ value: "v", sharers: { A: GRANTED, B: LIVE, C: LIVE + 1 } }),
  },
  {
    name: "only expired sharers (one ends exactly now): pruned, E",
    before: at({ value: "v", sharers: { B: ENDED, C: ENDS_NOW } }),
    cmd: read("A"),
    result: granted("E", "v"),
    after: now({ value: "v", owner: "A", sharers: {} }),
  },
  {
    name: "live and expired sharers: S, the expired ones pruned",
    before: at({ value: "v", sharers: { B: LIVE, C: ENDED } }),
    cmd: read("A"),
    result: granted("S", "v"),
    after: now({ value: "v", sharers: { A: GRANTED, B: LIVE } }),
  },
  {
    name: "the reader is the only live sharer: E",
    before: at({ value: "v", sharers: { A: LIVE, B: ENDED } }),
    cmd: read("A"),
    result: granted("E", "v"),
    after: now({ value: "v", owner: "A", sharers: {} }),
  },
  {
    name: "the reader is a live sharer among others: S, its lease renewed",
    before: at({ value: "v", sharers: { A: LIVE, B: LIVE } }),
    cmd: read("A"),
    result: granted("S", "v"),
    after: now({ value: "v", sharers: { A: GRANTED, B: LIVE } }),
  },
  {
    name: "based on an older stamp: conflict, nothing changes",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: read("A", { basedOn: BEFORE - 1, writeback: "dirty" }),
    result: conflict,
    after: "unchanged",
  },
  {
    name: "based on a stamp for a key that is gone: conflict",
    before: undefined,
    cmd: read("A"),
    result: conflict,
    after: undefined,
  },
];

const WRITES: Row[] = [
  {
    name: "from I (no entry): M",
    before: undefined,
    cmd: write("A", "new", [], { basedOn: 0 }),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "from I with a backing value and no holder: M",
    before: at({ value: "v", sharers: {} }),
    cmd: write("A", "new", []),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "from S, every other sharer acked: M, the sharers gone",
    before: at({ value: "v", sharers: { A: LIVE, B: LIVE, C: LIVE } }),
    cmd: write("A", "new", ["B", "C"]),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "from I while others share, all acked: M",
    before: at({ value: "v", sharers: { B: LIVE } }),
    cmd: write("A", "new", ["B"]),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "by the owner: M, no one asked",
    before: at({ value: "v", owner: "A", sharers: {} }),
    cmd: write("A", "new", []),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "an owner elsewhere acked (its dirty value handed back): M with the new value",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: write("A", "new", ["B"], { writeback: "dirty" }),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "an expired sharer that did not ack does not block: M",
    before: at({ value: "v", sharers: { B: LIVE, C: ENDED, D: ENDS_NOW } }),
    cmd: write("A", "new", ["B"]),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "conflict: based on another stamp",
    before: at({ value: "v", sharers: {} }),
    cmd: write("A", "new", [], { basedOn: BEFORE + 1 }),
    result: conflict,
    after: "unchanged",
  },
  {
    name: "conflict: a live sharer is not in acked",
    before: at({ value: "v", sharers: { B: LIVE, C: LIVE } }),
    cmd: write("A", "new", ["B"]),
    result: conflict,
    after: "unchanged",
  },
  {
    name: "conflict: the owner elsewhere is not in acked (even with a writeback)",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: write("A", "new", ["C"], { writeback: "dirty" }),
    result: conflict,
    after: "unchanged",
  },
];

const UPDATES: Row[] = [
  {
    name: "other sharers acked: everyone S with a fresh lease, the others pushed",
    before: at({ value: "v", sharers: { A: LIVE, B: LIVE, C: LIVE } }),
    cmd: write("A", "new", ["B", "C"], { propagation: "update" }),
    result: wrote("S"),
    after: now({ value: "new", sharers: { A: GRANTED, B: GRANTED, C: GRANTED } }),
    push: { nodes: ["B", "C"], stamp: INDEX, basedOn: BEFORE, leaseMs: LEASE },
  },
  {
    name: "an owner elsewhere acked: both S, the old owner pushed",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: write("A", "new", ["B"], { propagation: "update", writeback: "dirty" }),
    result: wrote("S"),
    after: now({ value: "new", sharers: { A: GRANTED, B: GRANTED } }),
    push: { nodes: ["B"], stamp: INDEX, basedOn: BEFORE, leaseMs: LEASE },
  },
  {
    name: "an expired sharer that did not ack is neither kept nor pushed",
    before: at({ value: "v", sharers: { B: LIVE, C: ENDED } }),
    cmd: write("A", "new", ["B"], { propagation: "update" }),
    result: wrote("S"),
    after: now({ value: "new", sharers: { A: GRANTED, B: GRANTED } }),
    push: { nodes: ["B"], stamp: INDEX, basedOn: BEFORE, leaseMs: LEASE },
  },
  {
    name: "an expired sharer that acked was reached in phase one: pushed too",
    before: at({ value: "v", sharers: { B: LIVE, C: ENDED } }),
    cmd: write("A", "new", ["B", "C"], { propagation: "update" }),
    result: wrote("S"),
    after: now({ value: "new", sharers: { A: GRANTED, B: GRANTED, C: GRANTED } }),
    push: { nodes: ["B", "C"], stamp: INDEX, basedOn: BEFORE, leaseMs: LEASE },
  },
  {
    name: "no other holder: M, nothing pushed",
    before: undefined,
    cmd: write("A", "new", [], { propagation: "update", basedOn: 0 }),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "the writer is the only sharer: M",
    before: at({ value: "v", sharers: { A: LIVE } }),
    cmd: write("A", "new", [], { propagation: "update" }),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "the writer is the owner: M",
    before: at({ value: "v", owner: "A", sharers: {} }),
    cmd: write("A", "new", [], { propagation: "update" }),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "only an expired sharer that did not ack: M, nothing pushed",
    before: at({ value: "v", sharers: { B: ENDED } }),
    cmd: write("A", "new", [], { propagation: "update" }),
    result: wrote("M"),
    after: now({ value: "new", owner: "A", sharers: {} }),
  },
  {
    name: "conflict: a live sharer did not ack",
    before: at({ value: "v", sharers: { B: LIVE, C: LIVE } }),
    cmd: write("A", "new", ["B"], { propagation: "update" }),
    result: conflict,
    after: "unchanged",
  },
  {
    name: "conflict: the owner did not ack",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: write("A", "new", [], { propagation: "update" }),
    result: conflict,
    after: "unchanged",
  },
];

const deleted = (existed: boolean): CacheResult => ({ type: "deleted", key: KEY, existed, stamp: INDEX });

const DELETES: Row[] = [
  {
    name: "a key never written: existed false",
    before: undefined,
    cmd: del("A", [], { basedOn: 0 }),
    result: deleted(false),
    after: undefined,
  },
  {
    name: "a key with a value and no holder: existed true, the entry gone",
    before: at({ value: "v", sharers: {} }),
    cmd: del("A", []),
    result: deleted(true),
    after: undefined,
  },
  {
    name: "by the owner: existed true",
    before: at({ value: "v", owner: "A", sharers: {} }),
    cmd: del("A", []),
    result: deleted(true),
    after: undefined,
  },
  {
    name: "sharers acked, an expired one not: deleted",
    before: at({ value: "v", sharers: { B: LIVE, C: ENDED } }),
    cmd: del("A", ["B"]),
    result: deleted(true),
    after: undefined,
  },
  {
    name: "existed only through the owner's writeback",
    before: at({ owner: "B", sharers: {} }),
    cmd: del("A", ["B"], { writeback: "dirty" }),
    result: deleted(true),
    after: undefined,
  },
  {
    name: "no value and no writeback: existed false",
    before: at({ owner: "B", sharers: {} }),
    cmd: del("A", ["B"]),
    result: deleted(false),
    after: undefined,
  },
  {
    name: "conflict: the owner did not ack",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: del("A", []),
    result: conflict,
    after: "unchanged",
  },
  {
    name: "conflict: a live sharer did not ack",
    before: at({ value: "v", sharers: { B: LIVE } }),
    cmd: del("A", []),
    result: conflict,
    after: "unchanged",
  },
  {
    name: "conflict: based on another stamp",
    before: at({ value: "v", sharers: {} }),
    cmd: del("A", [], { basedOn: 0 }),
    result: conflict,
    after: "unchanged",
  },
];

const written = (applied: boolean): CacheResult => ({ type: "written-back", key: KEY, applied });

const WRITEBACKS: Row[] = [
  {
    name: "by the owner at its stamp: applied, the owner gone",
    before: at({ value: "v", owner: "A", sharers: {} }),
    cmd: writeback("A", "dirty", BEFORE),
    result: written(true),
    after: now({ value: "dirty", sharers: {} }),
  },
  {
    name: "by a node that is not the owner: ignored",
    before: at({ value: "v", owner: "B", sharers: {} }),
    cmd: writeback("A", "dirty", BEFORE),
    result: written(false),
    after: "unchanged",
  },
  {
    name: "by the owner at an older stamp (a recall took it since): ignored",
    before: at({ value: "v", owner: "A", sharers: {} }),
    cmd: writeback("A", "dirty", BEFORE - 1),
    result: written(false),
    after: "unchanged",
  },
  {
    name: "by a former owner now a sharer: ignored",
    before: at({ value: "v", sharers: { A: LIVE, B: LIVE } }),
    cmd: writeback("A", "dirty", BEFORE),
    result: written(false),
    after: "unchanged",
  },
  {
    name: "for a key that is gone: ignored, no entry appears",
    before: undefined,
    cmd: writeback("A", "dirty", BEFORE),
    result: written(false),
    after: undefined,
  },
];

describe("DirectoryTable.apply", () => {
  describe("read", () => {
    it.each(READS)("$name", check);
  });
  describe("write (invalidate)", () => {
    it.each(WRITES)("$name", check);
  });
  describe("write (update)", () => {
    it.each(UPDATES)("$name", check);
  });
  describe("delete", () => {
    it.each(DELETES)("$name", check);
  });
  describe("writeback", () => {
    it.each(WRITEBACKS)("$name", check);
  });
});

/** A table driven by a log: each command at the next index, as the Raft group applies them. */
class Log {
  readonly table = new DirectoryTable();
  index = 0;
  time = 0;
  apply(cmd: CacheCommand): CacheApplied {
    return this.table.apply({ ...cmd, now: this.time }, ++this.index);
  }
  /** A command based on the key's stamp now. */
  based<C extends CacheCommand>(cmd: C): C {
    return "basedOn" in cmd ? { ...cmd, basedOn: this.table.stamp(cmd.key) } : cmd;
  }
}

describe("stamps", () => {
  it("every command that changes a key stamps it with its log index; the others leave it alone", () => {
    const log = new Log();
    const stamps: number[] = [];
    const step = (cmd: CacheCommand) => {
      const applied = log.apply(log.based(cmd));
      stamps.push(log.table.stamp(KEY));
      return applied;
    };
    expect(step(read("A")).result.type).toBe("absent"); // 1: nothing to stamp
    expect(step(write("A", "v1", [])).result).toMatchObject({ type: "written", state: "M", stamp: 2 });
    expect(step(read("B", { writeback: "v2" })).result).toMatchObject({ state: "S", stamp: 3, value: "v2" });
    expect(step(read("A")).result).toMatchObject({ state: "S", stamp: 4, value: "v2" });
    expect(step(writeback("A", "stale", 3)).result).toEqual({ type: "written-back", key: KEY, applied: false });
    expect(step(write("C", "v3", ["A", "B"])).result).toMatchObject({ state: "M", stamp: 6 });
    expect(step(writeback("C", "v4", 6)).result).toEqual({ type: "written-back", key: KEY, applied: true });
    expect(step(read("A")).result).toMatchObject({ state: "E", stamp: 8, value: "v4" });
    expect(step(del("B", ["A"])).result).toEqual({ type: "deleted", key: KEY, existed: true, stamp: 9 });
    expect(stamps).toEqual([0, 2, 3, 4, 4, 6, 7, 8, 0]);
  });

  it("a conflict leaves the stamp and the entry where they were", () => {
    const log = new Log();
    log.apply(log.based(write("A", "v", [])));
    const before = log.table.entry(KEY);
    expect(log.apply({ ...read("B", { writeback: "x" }), basedOn: 0 }).result).toEqual(conflict);
    expect(log.table.stamp(KEY)).toBe(1);
    expect(log.table.entry(KEY)).toEqual(before);
  });

  it("keys are stamped independently", () => {
    const log = new Log();
    log.apply({ ...write("A", "x", []), key: "x", basedOn: 0 });
    log.apply({ ...write("A", "y", []), key: "y", basedOn: 0 });
    expect([log.table.stamp("x"), log.table.stamp("y"), log.table.size]).toEqual([1, 2, 2]);
  });
});

describe("the exactly-once memory", () => {
  it("a read's grant is kept without its value, and replayed with the key's value", () => {
    const t = tableWith(at({ value: "a big value", sharers: {} }));
    const { result } = t.apply(read("A"), INDEX);
    const stored = t.compact(result);
    expect(stored).toEqual({ type: "granted-stored", key: KEY, state: "E", stamp: INDEX, leaseMs: LEASE });
    expect(JSON.stringify(stored)).not.toContain("a big value");
    expect(t.replay(stored)).toEqual(result);
  });

  it.each<CacheResult>([
    { type: "absent", key: KEY },
    { type: "conflict", key: KEY },
    { type: "deleted", key: KEY, existed: true, stamp: 3 },
    { type: "written-back", key: KEY, applied: false },
    { type: "written", key: KEY, state: "M", stamp: 3, leaseMs: LEASE },
  ])("a $type result is kept and replayed as it is", (result) => {
    const t = new DirectoryTable();
    expect(t.compact(result)).toEqual(result);
    expect(t.replay(t.compact(result))).toEqual(result);
  });

  it("a write's answer is replayed as it was after the key moved (the write applied once)", () => {
    const log = new Log();
    const first = log.apply(log.based(write("A", "one", [])));
    const stored = log.table.compact(first.result);
    log.apply(log.based(write("B", "two", ["A"])));
    expect(log.table.replay(stored)).toEqual(first.result);
    expect(log.table.entry(KEY)).toMatchObject({ value: "two", owner: "B" });
  });

  it("a replayed read grant whose key a writeback moved since is a conflict", () => {
    const log = new Log();
    log.apply(log.based(write("B", "v", [])));
    log.apply(writeback("B", "v", 1)); // 2: no holder
    const grant = log.apply(log.based(read("A")));
    expect(grant.result).toMatchObject({ state: "E", stamp: 3 });
    const stored = log.table.compact(grant.result);
    expect(log.table.replay(stored)).toEqual(grant.result);
    log.apply(writeback("A", "v2", 3));
    expect(log.table.replay(stored)).toEqual(conflict);
  });

  it("a replayed read grant for a key deleted since is a conflict", () => {
    const log = new Log();
    log.apply(log.based(write("B", "v", [])));
    const grant = log.apply(log.based(read("A")));
    expect(grant.result).toMatchObject({ type: "granted", state: "S" });
    log.apply(log.based(del("B", ["A"])));
    expect(log.table.replay(log.table.compact(grant.result))).toEqual(conflict);
  });

  it("a replayed read grant for a key rewritten since is a conflict, not the newer value", () => {
    const log = new Log();
    log.apply(log.based(write("B", "v1", [])));
    const grant = log.apply(log.based(read("A")));
    log.apply(log.based(write("B", "v2", ["A"])));
    expect(log.table.replay(log.table.compact(grant.result))).toEqual(conflict);
  });
});

describe("snapshots", () => {
  it("restore(snapshot()) gives the same entries, stamps and behaviour", () => {
    const log = new Log();
    log.time = NOW;
    log.apply({ ...write("A", "x1", []), key: "x", basedOn: 0 });
    log.apply({ ...read("B"), key: "x", basedOn: 1 }); // x: S for A and B (A handed nothing back)
    log.apply({ ...write("C", "y1", []), key: "y", basedOn: 0 });
    log.apply({ ...write("D", "z1", []), key: "z", basedOn: 0 });
    log.apply({ ...del("D", []), key: "z", basedOn: 4 });
    log.apply({ ...write("E", '{"json":"\\"quoted\\" ☃ 😀"}', []), key: "w", basedOn: 0 });
    log.apply({ ...writeback("E", "back", 6), key: "w" });

    const copy = new DirectoryTable();
    copy.restore(log.table.snapshot());
    expect(copy.size).toBe(3);
    for (const key of ["x", "y", "z", "w"]) {
      expect(copy.entry(key), key).toEqual(log.table.entry(key));
      expect(copy.stamp(key), key).toBe(log.table.stamp(key));
    }
    expect(copy.entry("x")).toEqual({ value: "x1", stamp: 2, sharers: { A: NOW + LEASE, B: NOW + LEASE } });
    expect(copy.snapshot()).toBe(log.table.snapshot());
    // Both go on the same way.
    const next = { ...write("C", "x2", ["A"]), key: "x", basedOn: 2 };
    expect(copy.apply(next, 8)).toEqual(log.table.apply(next, 8));
    expect(copy.apply(next, 8).result).toEqual({ type: "conflict", key: "x" }); // B's lease still runs
  });

  it("restore replaces what was there; restoring the empty string empties the table", () => {
    const t = new DirectoryTable();
    t.apply(write("A", "v", [], { basedOn: 0 }), 1);
    const other = new DirectoryTable();
    other.apply({ ...write("B", "u", [], { basedOn: 0 }), key: "u" }, 5);
    t.restore(other.snapshot());
    expect(t.entry(KEY)).toBeUndefined();
    expect(t.entry("u")).toEqual({ value: "u", stamp: 5, owner: "B", sharers: {} });
    t.restore("");
    expect(t.size).toBe(0);
    expect(t.stamp("u")).toBe(0);
  });

  it("an empty table's snapshot restores to an empty table", () => {
    const t = new DirectoryTable();
    t.restore(new DirectoryTable().snapshot());
    expect(t.size).toBe(0);
  });
});
