/**
 * A peer's durable log, modelled on objects/sqlite-storage.ts: MemoryStorage as the in-memory
 * mirror Raft reads, plus a `Disk` that holds what SQLite would (hard state, entries, snapshot
 * rows). One Ready is written atomically; the commit index is written only along with other
 * writes; a snapshot is stored as rows of at most `chunkUnits` UTF-16 units, each of which goes
 * through SQLite TEXT storage (`sqliteTextRoundTrip`). A crash keeps the Disk and loses the rest;
 * a restart loads the mirror from the Disk, as a Durable Object does on wake.
 */
import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Snapshot,
} from "../../../shared/raft/index.js";
import { splitText, sqliteTextRoundTrip } from "../../../shared/replica/chunks.js";
import type { DurableLog } from "../../../shared/replica/replica.js";

/** What survives a crash: the rows of the three SQLite tables. */
export interface Disk {
  hardState: HardState | undefined;
  /** raft_snapshot (rows[0] is its data column) and raft_snapshot_chunks (rows[1..]). */
  snapshot: { index: number; term: number; conf: string; rows: string[] } | undefined;
  /** raft_entries in index order, each as read back from TEXT. */
  entries: Entry[];
}

export function emptyDisk(): Disk {
  return { hardState: undefined, snapshot: undefined, entries: [] };
}

/** Thrown inside the host loop to crash the peer at that point (caught by the peer). */
export class CrashSignal extends Error {
  constructor(readonly point: string) {
    super(`crash ${point}`);
  }
}

export interface Chunking {
  /** UTF-16 units per snapshot row (a small number per seed, to exercise the cutting). */
  units: number;
  /** The planted bug: plain `slice` cuts, which can split a surrogate pair between two rows. */
  naive: boolean;
}

/** `text` cut by plain slicing (the code before the fix of issue 8, fault 1). */
export function naiveChunks(text: string, units: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += units) out.push(text.slice(i, i + units));
  return out;
}

export class SimStorage extends MemoryStorage implements DurableLog {
  /** Set by the fault injector: the next persist crashes the peer before or after its write. */
  crashAt: "beforePersist" | "afterPersist" | undefined;
  /** Snapshot rows written (for statistics). */
  snapshotsWritten = 0;

  constructor(
    genesis: ConfState,
    private readonly disk: Disk,
    private readonly chunking: Chunking,
  ) {
    super(genesis);
    this.load();
  }

  /** Rebuilds the mirror from the Disk (SqliteStorage.load). */
  private load(): void {
    const d = this.disk;
    if (d.hardState !== undefined) this.hardState = { ...d.hardState };
    if (d.snapshot !== undefined) {
      const s = d.snapshot;
      this.snap = { metadata: { index: s.index, term: s.term, conf: JSON.parse(s.conf) }, data: s.rows.join("") };
      this.ents = [{ term: s.term, index: s.index, type: "normal", data: "" }];
    }
    for (const e of d.entries) if (e.index > this.snap.metadata.index) this.ents.push({ ...e });
  }

  persist(rd: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot }): boolean {
    if (this.crashAt === "beforePersist") {
      this.crashAt = undefined;
      throw new CrashSignal("beforePersist");
    }
    const hs = rd.hardState;
    const termOrVote = hs !== undefined && (hs.term !== this.hardState.term || hs.vote !== this.hardState.vote);
    let wrote = false;
    if (!termOrVote && rd.entries.length === 0 && rd.snapshot === undefined) {
      if (hs !== undefined) super.setHardState(hs);
    } else {
      // One transaction: all of it reaches the Disk, or (crash before) none.
      if (rd.snapshot !== undefined) this.applySnapshot(rd.snapshot);
      this.append(rd.entries);
      this.setHardState(hs ?? this.hardState);
      wrote = true;
    }
    if (this.crashAt === "afterPersist") {
      this.crashAt = undefined;
      throw new CrashSignal("afterPersist");
    }
    return wrote;
  }

  override setHardState(hs: HardState): void {
    super.setHardState(hs);
    this.disk.hardState = { ...hs };
  }

  override append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const overwrites = first.index <= this.lastIndex();
    super.append(entries);
    if (overwrites) this.disk.entries = this.disk.entries.filter((e) => e.index < first.index);
    const snapIndex = this.snap.metadata.index;
    for (const e of entries) {
      if (e.index > snapIndex) this.disk.entries.push({ ...e, data: sqliteTextRoundTrip(e.data) });
    }
  }

  override applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    super.applySnapshot(snap);
    this.disk.entries = [];
    this.writeSnapshot();
  }

  override createSnapshot(index: number, data: string): Snapshot {
    const before = this.snap;
    const snap = super.createSnapshot(index, data);
    if (snap !== before) {
      this.writeSnapshot();
      this.disk.entries = this.disk.entries.filter((e) => e.index > index);
    }
    return snap;
  }

  private writeSnapshot(): void {
    const { index, term, conf } = this.snap.metadata;
    const { units, naive } = this.chunking;
    const rows = naive ? naiveChunks(this.snap.data, units) : splitText(this.snap.data, units);
    this.disk.snapshot = { index, term, conf: JSON.stringify(conf), rows: rows.map(sqliteTextRoundTrip) };
    this.snapshotsWritten++;
  }
}
