import type { CacheApplied, CacheCommand, CacheResult, DirectoryRequest, Stamp } from "./types.js";

/**
 * One key as the directory knows it. `value` is the backing store (JSON text; absent when the key
 * was never written or was deleted). At most one of `owner` (E or M: the directory cannot tell,
 * since E → M is silent) and `sharers` (S) is non-empty.
 */
export interface DirectoryEntry {
  value?: string;
  stamp: Stamp;
  owner?: string;
  /** Node → the end of its S lease (group time): past it the node serves nothing without asking. */
  sharers: Record<string, number>;
}

/** The stored part of a result: a grant without its value, which a retry reads from the state. */
export type StoredCacheResult =
  | Exclude<CacheResult, { type: "granted" }>
  | { type: "granted-stored"; key: string; state: "E" | "S"; stamp: Stamp; leaseMs: number };

/**
 * The cache directory of one Raft group: a pure state machine, replicated with the lock table and
 * the queue shards (shared/group/state.ts). It decides MESI transitions; the service on the leader
 * (directory-service.ts) does the talking to cache nodes first and proposes what they answered.
 *
 * Every command names the key's stamp its op read (`basedOn`); a command whose key moved since, or
 * which would drop a sharer whose lease is still running without that sharer's answer, changes
 * nothing and answers `conflict` (the op starts over). So whatever the leader did or believed, a
 * line some node may still serve is only ever dropped with its node's consent or after its lease.
 */
export class DirectoryTable {
  private entries = new Map<string, DirectoryEntry>();

  entry(key: string): DirectoryEntry | undefined {
    return this.entries.get(key);
  }

  /** The key's stamp now (0: never seen, or deleted). */
  stamp(key: string): Stamp {
    return this.entries.get(key)?.stamp ?? 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** `index`: the command's log index, the new stamp of its key. */
  apply(cmd: CacheCommand, index: number): CacheApplied {
    const e = this.entries.get(cmd.key) ?? { stamp: 0, sharers: {} };
    if (cmd.type === "cache-writeback") {
      if (e.owner !== cmd.node || e.stamp !== cmd.stamp) {
        // Already taken back by a recall (the stamp moved) or superseded: nothing to do.
        return { result: { type: "written-back", key: cmd.key, applied: false } };
      }
      this.entries.set(cmd.key, { value: cmd.value, stamp: index, sharers: {} });
      return { result: { type: "written-back", key: cmd.key, applied: true } };
    }
    if (e.stamp !== cmd.basedOn) return conflict(cmd.key);
    const live = liveSharers(e, cmd.now);
    if (cmd.type === "cache-read") {
      // The owner answered its `share` order: its value is the latest, dirty or not.
      const value = cmd.writeback ?? e.value;
      if (value === undefined) return { result: { type: "absent", key: cmd.key } };
      const lease = cmd.now + cmd.leaseMs;
      let next: DirectoryEntry;
      let state: "E" | "S";
      if (e.owner !== undefined && e.owner !== cmd.node) {
        next = { value, stamp: index, sharers: { ...live, [e.owner]: lease, [cmd.node]: lease } };
        state = "S";
      } else if (e.owner === cmd.node || Object.keys(live).every((n) => n === cmd.node)) {
        next = { value, stamp: index, owner: cmd.node, sharers: {} };
        state = "E";
      } else {
        next = { value, stamp: index, sharers: { ...live, [cmd.node]: lease } };
        state = "S";
      }
      this.entries.set(cmd.key, next);
      return { result: { type: "granted", key: cmd.key, state, stamp: index, value, leaseMs: cmd.leaseMs } };
    }
    // A write or a delete: every other holder has answered, or (a sharer) its lease has ended.
    const acked = new Set(cmd.acked);
    if (e.owner !== undefined && e.owner !== cmd.node && !acked.has(e.owner)) return conflict(cmd.key);
    if (Object.keys(live).some((n) => n !== cmd.node && !acked.has(n))) return conflict(cmd.key);
    if (cmd.type === "cache-delete") {
      const existed = (cmd.writeback ?? e.value) !== undefined;
      this.entries.delete(cmd.key);
      return { result: { type: "deleted", key: cmd.key, existed, stamp: index } };
    }
    const others = [...(e.owner !== undefined ? [e.owner] : []), ...Object.keys(e.sharers)].filter(
      (n) => n !== cmd.node && acked.has(n),
    );
    if (cmd.propagation === "update" && others.length > 0) {
      const lease = cmd.now + cmd.leaseMs;
      const sharers = Object.fromEntries([cmd.node, ...others].map((n) => [n, lease]));
      this.entries.set(cmd.key, { value: cmd.value, stamp: index, sharers });
      return {
        result: { type: "written", key: cmd.key, state: "S", stamp: index, leaseMs: cmd.leaseMs },
        push: { nodes: others, stamp: index, basedOn: cmd.basedOn, leaseMs: cmd.leaseMs },
      };
    }
    this.entries.set(cmd.key, { value: cmd.value, stamp: index, owner: cmd.node, sharers: {} });
    return { result: { type: "written", key: cmd.key, state: "M", stamp: index, leaseMs: cmd.leaseMs } };
  }

  /** What the exactly-once memory keeps: no values. */
  compact(result: CacheResult): StoredCacheResult {
    if (result.type !== "granted") return result;
    const { value: _value, ...rest } = result;
    return { ...rest, type: "granted-stored" };
  }

  /** A retry's answer: the grant with the key's value now, if nothing has happened to the key since. */
  replay(stored: StoredCacheResult): CacheResult {
    if (stored.type !== "granted-stored") return stored;
    const e = this.entries.get(stored.key);
    if (e === undefined || e.stamp !== stored.stamp || e.value === undefined) return conflict(stored.key).result;
    return { ...stored, type: "granted", value: e.value };
  }

  snapshot(): string {
    return JSON.stringify([...this.entries]);
  }

  restore(data: string): void {
    this.entries = new Map(data === "" ? [] : (JSON.parse(data) as [string, DirectoryEntry][]));
  }
}

/** Sharers whose lease has not ended at group time `now`. */
function liveSharers(e: DirectoryEntry, now: number): Record<string, number> {
  return Object.fromEntries(Object.entries(e.sharers).filter(([, end]) => end > now));
}

function conflict(key: string): CacheApplied {
  return { result: { type: "conflict", key } };
}

/**
 * The command for a node's read, write or delete, once its op has sent its orders: what the op
 * read (`basedOn`), who answered (`acked`), the owner's handed-back value, the S lease to grant.
 * (`now` is stamped at proposal.)
 */
export function commandFor(
  req: Exclude<DirectoryRequest, { op: "writeback" }>,
  o: { basedOn: Stamp; acked: string[]; writeback?: string; leaseMs: number; now?: number },
): CacheCommand {
  const based = { key: req.key, node: req.node, basedOn: o.basedOn, now: o.now ?? 0 };
  switch (req.op) {
    case "read":
      return { type: "cache-read", ...based, writeback: o.writeback, leaseMs: o.leaseMs };
    case "write": {
      const { value, propagation } = req;
      return {
        type: "cache-write",
        ...based,
        value,
        propagation,
        acked: o.acked,
        writeback: o.writeback,
        leaseMs: o.leaseMs,
      };
    }
    case "delete":
      return { type: "cache-delete", ...based, acked: o.acked, writeback: o.writeback };
  }
}
