import { type ConfState, type Entry, type HardState, MemoryStorage, type Snapshot } from "../shared/raft/index.js";
import { splitText } from "../shared/replica/chunks.js";

/**
 * Characters per snapshot row (UTF-16 units; at most 3 bytes each in UTF-8, well under 2 MB). A row
 * may be one unit shorter: splitText never ends one between the two halves of a surrogate pair.
 */
const SNAPSHOT_CHUNK = 512 * 1024;

export interface SqliteStorageOptions {
  /**
   * UTF-16 units per snapshot row (default 512 Ki); tests pass tiny sizes to exercise the cutting.
   * With 1, a surrogate pair still makes one row of 2 units (see splitText).
   */
  snapshotChunkChars?: number;
}

/**
 * Raft storage in a Durable Object's SQLite database. Raft reads from the in-memory mirror it
 * inherits (MemoryStorage); every write goes to SQLite as well. `persist` writes one Ready in one
 * synchronous transaction, so a crash keeps all of it or none, and the output gate holds every
 * message sent afterwards until it is durable.
 */
export class SqliteStorage extends MemoryStorage {
  private readonly sql: SqlStorage;
  private readonly chunkChars: number;

  constructor(
    private readonly storage: DurableObjectStorage,
    genesis: ConfState,
    options: SqliteStorageOptions = {},
  ) {
    super(genesis);
    const chunk = options.snapshotChunkChars ?? SNAPSHOT_CHUNK;
    if (!Number.isSafeInteger(chunk) || chunk < 1) throw new RangeError(`snapshotChunkChars must be ≥ 1, not ${chunk}`);
    this.chunkChars = chunk;
    this.sql = storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS raft_hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS raft_snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, term INTEGER NOT NULL, conf TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS raft_snapshot_chunks (seq INTEGER PRIMARY KEY, data TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS raft_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL);
    `);
    this.load();
  }

  /** Rebuilds the in-memory mirror from SQLite (on every wake of the object). */
  private load(): void {
    const hs = this.sql
      .exec<{ term: number; vote: number; commit_index: number }>("SELECT * FROM raft_hard_state")
      .toArray()[0];
    if (hs !== undefined) this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit_index };
    const snap = this.sql
      .exec<{ idx: number; term: number; conf: string; data: string }>("SELECT * FROM raft_snapshot")
      .toArray()[0];
    if (snap !== undefined) {
      const chunks = this.sql.exec<{ data: string }>("SELECT data FROM raft_snapshot_chunks ORDER BY seq").toArray();
      const data = snap.data + chunks.map((c) => c.data).join("");
      this.snap = { metadata: { index: snap.idx, term: snap.term, conf: JSON.parse(snap.conf) }, data };
      this.ents = [{ term: snap.term, index: snap.idx, type: "normal", data: "" }];
    }
    const rows = this.sql.exec<{ idx: number; term: number; type: string; data: string }>(
      "SELECT idx, term, type, data FROM raft_entries WHERE idx > ? ORDER BY idx",
      this.snap.metadata.index,
    );
    for (const r of rows) this.ents.push({ index: r.idx, term: r.term, type: r.type as Entry["type"], data: r.data });
  }

  /** One Ready's durable part, atomically. */
  persist(rd: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot }): boolean {
    const hs = rd.hardState;
    // Term and vote must be durable before any message; the commit index need not be (Raft
    // learns it again from the leader), so a Ready that only moves the commit writes nothing.
    // Every write waits for durability before the object's next message leaves (output gate).
    const termOrVote = hs !== undefined && (hs.term !== this.hardState.term || hs.vote !== this.hardState.vote);
    if (!termOrVote && rd.entries.length === 0 && rd.snapshot === undefined) {
      if (hs !== undefined) super.setHardState(hs);
      return false;
    }
    this.storage.transactionSync(() => {
      if (rd.snapshot !== undefined) this.applySnapshot(rd.snapshot);
      this.append(rd.entries);
      this.setHardState(hs ?? this.hardState);
    });
    return true;
  }

  override setHardState(hs: HardState): void {
    super.setHardState(hs);
    this.sql.exec(
      "INSERT OR REPLACE INTO raft_hard_state (id, term, vote, commit_index) VALUES (0, ?, ?, ?)",
      hs.term,
      hs.vote,
      hs.commit,
    );
  }

  override append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const overwrites = first.index <= this.lastIndex();
    super.append(entries);
    // A follower's conflicting suffix is replaced: drop it, then write the new entries.
    if (overwrites) this.sql.exec("DELETE FROM raft_entries WHERE idx >= ?", first.index);
    // Multi-row inserts: one statement per 25 entries (100 bound parameters) instead of one each.
    const fresh = entries.filter((e) => e.index > this.snap.metadata.index);
    for (let i = 0; i < fresh.length; i += 25) {
      const rows = fresh.slice(i, i + 25);
      const values = rows.map(() => "(?, ?, ?, ?)").join(", ");
      this.sql.exec(
        `INSERT INTO raft_entries (idx, term, type, data) VALUES ${values}`,
        ...rows.flatMap((e) => [e.index, e.term, e.type, e.data]),
      );
    }
  }

  override applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    super.applySnapshot(snap);
    this.sql.exec("DELETE FROM raft_entries");
    this.writeSnapshot();
  }

  override createSnapshot(index: number, data: string): Snapshot {
    const before = this.snap;
    const snap = super.createSnapshot(index, data);
    if (snap !== before) {
      this.storage.transactionSync(() => {
        this.writeSnapshot();
        this.sql.exec("DELETE FROM raft_entries WHERE idx <= ?", index);
      });
    }
    return snap;
  }

  /**
   * Written in chunks: a Durable Object's SQLite refuses values over 2 MB, and a queue can be
   * larger. Cut by splitText, never inside a surrogate pair: either half alone is not valid UTF-8,
   * and SQLite would give it back as U+FFFDs (issue 8).
   */
  private writeSnapshot(): void {
    const { index, term, conf } = this.snap.metadata;
    const chunks = splitText(this.snap.data, this.chunkChars);
    this.sql.exec(
      "INSERT OR REPLACE INTO raft_snapshot (id, idx, term, conf, data) VALUES (0, ?, ?, ?, ?)",
      index,
      term,
      JSON.stringify(conf),
      chunks[0] ?? "",
    );
    this.sql.exec("DELETE FROM raft_snapshot_chunks");
    for (let seq = 1; seq < chunks.length; seq++) {
      this.sql.exec("INSERT INTO raft_snapshot_chunks (seq, data) VALUES (?, ?)", seq, chunks[seq]);
    }
  }
}
