import { confAfter } from "./conf.js";
import type { ConfState, Entry, HardState, Snapshot } from "./types.js";

/** The requested index is older than the last snapshot: the leader must send a snapshot instead. */
export class CompactedError extends Error {
  constructor(index: number) {
    super(`index ${index} is compacted`);
  }
}

/**
 * What Raft reads from durable storage. Raft never writes to it: the host persists each Ready
 * (hard state, entries, snapshot) and then calls `advance`. Index 0 is the empty position before
 * the log; an initial snapshot at index 0 carries the bootstrap configuration.
 */
export interface Storage {
  initialState(): { hardState: HardState; snapshot: SnapshotMetadataOnly };
  /** Entries in [lo, hi). Throws CompactedError when lo ≤ the snapshot index. */
  entries(lo: number, hi: number): Entry[];
  /** Term of entry i; the snapshot index gives the snapshot term. Throws CompactedError below it. */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export type SnapshotMetadataOnly = Snapshot["metadata"];

/** An in-memory Storage, also used by the simulator as each node's "disk". */
export class MemoryStorage implements Storage {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  protected snap: Snapshot;
  /** ents[0] is a dummy at the snapshot index/term, so ents[i - snapIndex] is entry i. */
  protected ents: Entry[];

  /**
   * `genesis` is the group's initial configuration. Every peer starts from the same one, including
   * peers that join later: the log records only changes to it.
   */
  constructor(genesis: ConfState = { voters: [], learners: [] }) {
    this.snap = { metadata: { index: 0, term: 0, conf: genesis }, data: "" };
    this.ents = [{ term: 0, index: 0, type: "normal", data: "" }];
  }

  initialState() {
    return { hardState: { ...this.hardState }, snapshot: this.snap.metadata };
  }

  private offset(): number {
    return this.snap.metadata.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new CompactedError(i);
    const e = this.ents[i - off];
    if (e === undefined) throw new RangeError(`term(${i}) past the last index ${this.lastIndex()}`);
    return e.term;
  }

  entries(lo: number, hi: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new RangeError(`entries(${lo}, ${hi}) past the last index`);
    return this.ents.slice(lo - off, hi - off);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /** Appends entries, truncating any conflicting suffix (what a follower's persist does). */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const off = this.offset();
    if (first.index > this.lastIndex() + 1) throw new Error(`append at ${first.index} leaves a gap`);
    // Entries at or below the snapshot are already covered by it.
    const fresh = first.index <= off ? entries.slice(off + 1 - first.index) : entries;
    const start = fresh[0];
    if (start === undefined) return;
    this.ents.length = start.index - off;
    for (const e of fresh) this.ents.push(e);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.offset()) return;
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: "normal", data: "" }];
  }

  /** Records a state machine image at `index` (≤ applied) and drops the log before it. */
  createSnapshot(index: number, data: string): Snapshot {
    const off = this.offset();
    if (index <= off) return this.snap;
    if (index > this.lastIndex()) throw new RangeError(`snapshot at ${index} past the last index`);
    const conf = confAfter(this.snap.metadata.conf, this.ents.slice(1, index - off + 1));
    this.snap = { metadata: { index, term: this.term(index), conf }, data };
    this.ents = this.ents.slice(index - off);
    return this.snap;
  }
}
