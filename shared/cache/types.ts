/**
 * The cache's messages, all plain JSON (shared/API.md "Cache"; docs/architecture.md "Cache").
 *
 * Three parties: a client asks a cache node (objects/cache-node.ts); the node serves hits alone
 * and asks the directory for everything else; the directory lives on the Raft group that owns the
 * key (shared/cache/directory.ts, replicated with the locks and queues) and its service on the
 * group's leader (directory-service.ts) sends orders back to the nodes that hold the key.
 *
 * Values travel as JSON text: the directory never parses them.
 */

/**
 * S leases travel with every grant and order that starts one (`leaseMs`): a node never serves an
 * S line longer than the directory that recorded it will wait, whatever each side's settings say.
 */

/** A line's MESI state. I (invalid) is a line the node does not have. */
export type LineState = "M" | "E" | "S";

/** How a write reaches other holders: dropped (the MESI default) or given the new value. */
export type Propagation = "invalidate" | "update";

/**
 * Every committed cache command stamps its key with the command's log index. Stamps order what the
 * directory did to a key across leader changes: an order carries the stamp its op read, a grant
 * the stamp of its commit, so a node can tell an order about an older grant from one about a newer.
 */
export type Stamp = number;

// ---- node → directory ----------------------------------------------------------------------

/** What a node asks of the directory (through any peer of the key's group). */
export type DirectoryRequest =
  | { op: "read"; key: string; node: string }
  | { op: "write"; key: string; node: string; value: string; propagation: Propagation }
  | { op: "delete"; key: string; node: string }
  /** An evicted line written without the directory (E → M): its value goes back. */
  | { op: "writeback"; key: string; node: string; value: string; stamp: Stamp };

export type DirectoryReply =
  /** A read's grant: E or S, with the value. */
  | { type: "granted"; key: string; state: "E" | "S"; stamp: Stamp; value: string; leaseMs: number }
  /**
   * A write's grant (M, or S after an update-mode write that reached others), without the value:
   * the writer has it. A retry gets this same answer however the key moved since: the write
   * applied once, at `stamp`, and a newer order or grant the node has seen keeps it from installing.
   */
  | { type: "written"; key: string; state: "M" | "S"; stamp: Stamp; leaseMs: number }
  | { type: "absent"; key: string }
  | { type: "deleted"; key: string; existed: boolean; stamp: Stamp }
  | { type: "written-back"; key: string; applied: boolean }
  /** A holder that must answer (the only copy of the latest value may be there) cannot be reached. */
  | { type: "unavailable"; key: string; node: string };

// ---- directory → node ----------------------------------------------------------------------

/**
 * `share`: drop to S (a read elsewhere); `invalidate`: drop the line (a write or delete elsewhere);
 * `update`: after a committed write in update mode, take the new value in S.
 */
export type Order =
  | { action: "invalidate"; key: string; stamp: Stamp }
  | { action: "share"; key: string; stamp: Stamp; leaseMs: number }
  | { action: "update"; key: string; stamp: Stamp; value: string; basedOn: Stamp; leaseMs: number };

/**
 * `dirty`: a value this node wrote without the directory, which the directory may not have yet;
 * `stale`: the node holds a newer grant than the order's op read (that op must start over).
 */
export type OrderReply = { ok: true; dirty?: string } | { ok: false; stale: true };

// ---- the replicated commands -----------------------------------------------------------------

/** Every command names the key's stamp its op read (`basedOn`): if it moved, the command changes nothing. */
interface Based {
  key: string;
  node: string;
  basedOn: Stamp;
  /** Group time (ms); raised to the group's latest time when applied. */
  now: number;
}

export type CacheCommand =
  | ({ type: "cache-read"; writeback?: string; leaseMs: number } & Based)
  | ({
      type: "cache-write";
      value: string;
      propagation: Propagation;
      /** Holders that answered their order (the owner's latest value, if any, is in `writeback`). */
      acked: string[];
      writeback?: string;
      leaseMs: number;
    } & Based)
  | ({ type: "cache-delete"; acked: string[]; writeback?: string } & Based)
  | { type: "cache-writeback"; key: string; node: string; value: string; stamp: Stamp; now: number };

export type CacheResult =
  | Exclude<DirectoryReply, { type: "unavailable" }>
  /** The key changed since the op read it, or a holder that did not answer still holds a lease. */
  | { type: "conflict"; key: string };

export interface CacheApplied {
  result: CacheResult;
  /** After an update-mode write: the holders to give the new value. */
  push?: { nodes: string[]; stamp: Stamp; basedOn: Stamp; leaseMs: number };
}
