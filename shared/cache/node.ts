import { KeyedMutex } from "./keyed-mutex.js";
import { Lru } from "./lru.js";
import type { DirectoryReply, DirectoryRequest, LineState, Order, OrderReply, Propagation, Stamp } from "./types.js";

/** One cached line. S lines are only served until `leaseUntil` (this node's clock). */
export interface Line {
  state: LineState;
  value: string;
  stamp: Stamp;
  leaseUntil: number;
}

/** A value this node wrote without the directory (E → M), kept durably until the directory has it. */
export interface DirtyValue {
  value: string;
  /** The stamp of the grant the write was made under. */
  stamp: Stamp;
}

/** The node's durable storage of dirty values (SQLite in the Durable Object, a Map in tests). */
export interface DirtyStore {
  put(key: string, dirty: DirtyValue): void;
  delete(key: string): void;
  all(): [string, DirtyValue][];
}

/** The way to the directory of a key: any peer of its group (workers/groups.ts), or a simulated one. */
export interface DirectoryLink {
  call(req: DirectoryRequest, requestId: string): Promise<DirectoryAnswer>;
}

export type DirectoryAnswer = DirectoryReply | { type: "no-quorum"; detail?: string };

class NodeStopped extends Error {
  constructor() {
    super("cache node stopped");
  }
}

export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  invalidations: number;
  writebacks: number;
  /** New values pushed here by update-mode writes elsewhere. */
  updates: number;
}

export type Unavailable = { type: "unavailable"; detail: string };
export type GetReply =
  | { type: "value"; key: string; value: string; state: LineState; hit: boolean }
  | { type: "absent" }
  | Unavailable;
export type PutReply = { type: "stored"; key: string; state: LineState } | Unavailable;
export type DeleteReply = { type: "deleted"; existed: boolean } | Unavailable;

export interface NodeInfo {
  node: string;
  capacity: number;
  lines: { key: string; state: LineState }[];
  stats: CacheStats & { hitRate: number };
}

export interface CacheNodeOptions {
  name: string;
  capacity: number;
  /** This node's clock rate may be off by this much; its leases end early by as much. */
  maxDriftPpm: number;
  clock: () => number;
  directory: DirectoryLink;
  store: DirtyStore;
  /** A fresh request id, for the directory's exactly-once memory. */
  newId: () => string;
}

/** Order stamps of keys with nothing in flight here are forgotten after this long (an update push comes right after its order). */
const REVOKED_KEEP_MS = 60_000;

/**
 * One cache node: an LRU of MESI lines, served alone on a hit, with the directory asked for
 * everything else. Pure: the Durable Object (objects/cache-node.ts) supplies the clock, the
 * durable store and the way to the directory.
 *
 * Why a hit needs nobody: a node holds E or M only while the directory names it the key's owner,
 * and the directory takes that back only through this node (a `share` or `invalidate` order it
 * must answer); S lines carry a lease the directory waits out before writing past a node it
 * cannot reach. Orders and grants race on the network, so both carry stamps (types.ts): a grant
 * older than an order already seen for its key is not installed.
 */
export class CacheNodeCore {
  readonly stats: CacheStats = { hits: 0, misses: 0, evictions: 0, invalidations: 0, writebacks: 0, updates: 0 };
  private readonly lines: Lru<Line>;
  /** Dirty values, in a line (M, or S after a share whose commit this node has not seen) or evicted. */
  private readonly dirty = new Map<string, DirtyValue>();
  /** Per key, the newest order stamp seen and when: grants at or below it are stale on arrival. */
  private readonly revoked = new Map<string, { stamp: Stamp; at: number }>();
  /** What a lease of `ms` is worth on this clock: it may run slow, so the lease is shortened by the drift bound. */
  private readonly lease: (ms: number) => number;
  /**
   * This node's own directory requests and silent writes run one at a time per key: a grant for
   * its own request must never land on a line written here after that grant was committed.
   */
  private readonly perKey = new KeyedMutex();
  private stopped = false;
  /** Keys this node is writing or deleting through the directory right now (see `changing`). */
  private readonly ownChanges = new Set<string>();

  constructor(private readonly o: CacheNodeOptions) {
    this.lines = new Lru(o.capacity);
    // A lease measured on a clock that may run slow ends earlier here than at the directory.
    this.lease = (ms) => Math.floor(ms * (1 - o.maxDriftPpm / 1e6));
    // After a restart dirty values come back without lines: the next use of the key hands the
    // value to the directory first (a lost S lease, or a demotion never seen, is never trusted).
    for (const [key, d] of o.store.all()) this.dirty.set(key, d);
  }

  get name(): string {
    return this.o.name;
  }

  async get(key: string): Promise<GetReply> {
    return this.hit(key) ?? this.serial(key, async () => this.hit(key) ?? this.miss(key));
  }

  /**
   * A crash (the admin fault): this core's memory is gone and a new one takes over the store.
   * Work still running here (a reply on its way, a request queued behind it) must not touch the
   * store or answer as if it had served: each step after an await checks.
   */
  stop(): void {
    this.stopped = true;
  }

  /** Runs `fn` after this node's earlier work on `key`; a stop turns it into an error answer. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T | Unavailable> {
    return this.perKey.run(key, async () => {
      try {
        this.checkRunning();
        return await fn();
      } catch (e) {
        if (e instanceof NodeStopped) return { type: "unavailable", detail: "the cache node crashed" } as const;
        throw e;
      }
    });
  }

  private checkRunning(): void {
    if (this.stopped) throw new NodeStopped();
  }

  /** The directory's answer, unless this node was stopped while it waited. */
  private async ask(req: DirectoryRequest, requestId: string): Promise<DirectoryAnswer> {
    const reply = await this.o.directory.call(req, requestId);
    this.checkRunning();
    return reply;
  }

  private hit(key: string): GetReply | undefined {
    const line = this.valid(key);
    if (line === undefined) return undefined;
    this.stats.hits++;
    return { type: "value", key, value: line.value, state: line.state, hit: true };
  }

  private async miss(key: string): Promise<GetReply> {
    this.stats.misses++;
    const settled = await this.settleDirty(key);
    if (settled !== undefined) return settled;
    const sentAt = this.o.clock();
    const reply = await this.ask({ op: "read", key, node: this.o.name }, this.o.newId());
    if (reply.type === "granted") {
      this.install(key, reply, sentAt);
      return { type: "value", key, value: reply.value, state: reply.state, hit: false };
    }
    if (reply.type === "absent") return { type: "absent" };
    return unavailable(reply);
  }

  put(key: string, value: string, propagation: Propagation, requestId: string): Promise<PutReply> {
    return this.serial(key, () => this.write(key, value, propagation, requestId));
  }

  delete(key: string, requestId: string): Promise<DeleteReply> {
    return this.serial(key, () => this.remove(key, requestId));
  }

  private async write(key: string, value: string, propagation: Propagation, requestId: string): Promise<PutReply> {
    const line = this.valid(key);
    if (line !== undefined && (line.state === "E" || line.state === "M")) {
      // The point of E: this node is the only holder, so it writes alone (and durably: the only copy).
      line.state = "M";
      line.value = value;
      this.setDirty(key, { value, stamp: line.stamp });
      return { type: "stored", key, state: "M" };
    }
    const sentAt = this.o.clock();
    const reply = await this.changing(key, () =>
      this.ask({ op: "write", key, node: this.o.name, value, propagation }, requestId),
    );
    if (reply.type !== "written") return unavailable(reply);
    this.install(key, { ...reply, value }, sentAt);
    return { type: "stored", key, state: reply.state };
  }

  private async remove(key: string, requestId: string): Promise<DeleteReply> {
    const reply = await this.changing(key, () => this.ask({ op: "delete", key, node: this.o.name }, requestId));
    if (reply.type !== "deleted") return unavailable(reply);
    // A read of this key granted before the delete must not install.
    this.noteRevoked(key, reply.stamp);
    this.seen(key, reply.stamp);
    return { type: "deleted", existed: reply.existed };
  }

  /** An order from the directory's service on the key's leader. Synchronous: no hit runs halfway through it. */
  order(o: Order): OrderReply {
    const { key } = o;
    const line = this.lines.peek(key);
    const dirty = this.dirty.get(key);
    if (o.action === "update") return this.update(o);
    // An order about an older state than a grant this node holds: its op read a stale directory.
    if ((line?.stamp ?? 0) > o.stamp || (dirty?.stamp ?? 0) > o.stamp) return { ok: false, stale: true };
    this.noteRevoked(key, o.stamp);
    let handBack: string | undefined;
    if (dirty !== undefined) {
      // A newer stamp proves the directory moved past this value: a recall committed it already.
      if (dirty.stamp < o.stamp) this.clearDirty(key);
      else handBack = dirty.value;
    }
    if (o.action === "invalidate") {
      this.stats.invalidations++;
      if (line !== undefined) this.lines.delete(key);
    } else if (line !== undefined) {
      if (line.stamp < o.stamp) this.lines.delete(key);
      else {
        if (line.state === "M") this.stats.writebacks++;
        // Repeated share orders (retries, a new leader) keep the earliest end: the directory records
        // the lease at its commit, after the order of the op that commits.
        const until = this.o.clock() + this.lease(o.leaseMs);
        line.leaseUntil = line.state === "S" ? Math.min(line.leaseUntil, until) : until;
        line.state = "S";
      }
    }
    return handBack === undefined ? { ok: true } : { ok: true, dirty: handBack };
  }

  info(): NodeInfo {
    const lines: NodeInfo["lines"] = [];
    const now = this.o.clock();
    for (const [key, line] of this.lines.entries()) {
      if (line.state !== "S" || line.leaseUntil > now) lines.push({ key, state: line.state });
    }
    const looked = this.stats.hits + this.stats.misses;
    return {
      node: this.o.name,
      capacity: this.lines.capacity,
      lines,
      stats: { ...this.stats, hitRate: looked === 0 ? 0 : this.stats.hits / looked },
    };
  }

  /** The line if it may be served now (an S line whose lease ended is dropped). */
  private valid(key: string): Line | undefined {
    const line = this.lines.get(key);
    if (line === undefined) return undefined;
    if (line.state === "S" && line.leaseUntil <= this.o.clock()) {
      this.lines.delete(key);
      return undefined;
    }
    return line;
  }

  /**
   * Before asking for a key whose dirty value has no line (evicted, or back from a restart):
   * hand the value to the directory, or the directory would grant this node its older one.
   */
  private async settleDirty(key: string): Promise<Unavailable | undefined> {
    const dirty = this.dirty.get(key);
    if (dirty === undefined) return undefined;
    const reply = await this.writeBack(key, dirty);
    return reply.type === "written-back" ? undefined : unavailable(reply);
  }

  private async writeBack(key: string, dirty: DirtyValue): Promise<DirectoryAnswer> {
    const req = { op: "writeback", key, node: this.o.name, value: dirty.value, stamp: dirty.stamp } as const;
    const reply = await this.ask(req, this.o.newId());
    // Applied, or already taken by a recall: either way the directory has it (unless rewritten since).
    if (reply.type === "written-back" && this.dirty.get(key) === dirty) this.clearDirty(key);
    return reply;
  }

  /**
   * While this node's own write or delete of `key` is on its way, it serves nothing of the key:
   * once the directory commits it, no order reaches this node's old line (the entry names the
   * writer's new line, or is gone), and other nodes may already serve the new state (an update
   * push, a write after the delete). So the line is dropped before asking, and pushes that
   * arrive meanwhile are not installed; the answer brings the line, if any. (A dirty value
   * stays in the store and goes back to the directory like an evicted one.)
   */
  private async changing<T>(key: string, ask: () => Promise<T>): Promise<T> {
    this.lines.delete(key);
    this.ownChanges.add(key);
    try {
      return await ask();
    } finally {
      this.ownChanges.delete(key);
    }
  }

  /** Installs a grant unless an order or a grant newer than it has been seen for its key. */
  private install(
    key: string,
    grant: { state: LineState; stamp: Stamp; value: string; leaseMs: number },
    leaseFrom: number,
  ): void {
    if ((this.revoked.get(key)?.stamp ?? 0) >= grant.stamp) return;
    const current = this.lines.peek(key);
    if (current !== undefined && current.stamp > grant.stamp) return;
    this.seen(key, grant.stamp);
    this.setLine(key, {
      state: grant.state,
      value: grant.value,
      stamp: grant.stamp,
      leaseUntil: leaseFrom + this.lease(grant.leaseMs),
    });
  }

  /** Phase two of an update-mode write: the new value, if no other order came since phase one. */
  private update(o: Extract<Order, { action: "update" }>): OrderReply {
    const revoked = this.revoked.get(o.key);
    const line = this.lines.peek(o.key);
    if (this.ownChanges.has(o.key)) return { ok: true };
    if (revoked?.stamp !== o.basedOn || (line !== undefined && line.stamp >= o.stamp)) return { ok: true };
    this.seen(o.key, o.stamp);
    this.stats.updates++;
    // The lease runs from phase one, which this node saw before the directory committed.
    this.setLine(o.key, { state: "S", value: o.value, stamp: o.stamp, leaseUntil: revoked.at + this.lease(o.leaseMs) });
    return { ok: true };
  }

  /** A committed stamp for `key` reached this node: older dirty values are in the directory. */
  private seen(key: string, stamp: Stamp): void {
    const dirty = this.dirty.get(key);
    if (dirty !== undefined && dirty.stamp < stamp) this.clearDirty(key);
  }

  private setLine(key: string, line: Line): void {
    for (const [evictedKey, evicted] of this.lines.set(key, line)) {
      this.stats.evictions++;
      if (evicted.state !== "M") continue;
      this.stats.writebacks++;
      const dirty = this.dirty.get(evictedKey);
      // Fire and forget: until it lands, the value stays in the dirty store and any order for the
      // key (or the next use of it here) hands it over.
      if (dirty !== undefined) {
        void this.perKey.run(evictedKey, () => this.writeBack(evictedKey, dirty)).catch(() => undefined);
      }
    }
  }

  private noteRevoked(key: string, stamp: Stamp): void {
    const now = this.o.clock();
    const prev = this.revoked.get(key);
    // For one stamp the first order counts: an update's lease runs from before the commit, and a
    // stale leader's order with the same stamp may arrive after it.
    if (prev === undefined || prev.stamp < stamp) this.revoked.set(key, { stamp, at: now });
    if (this.revoked.size > 4 * this.lines.capacity) {
      // A request of this node's own in flight for the key still needs the stamp.
      for (const [k, r] of this.revoked)
        if (now - r.at > REVOKED_KEEP_MS && !this.perKey.busy(k)) this.revoked.delete(k);
    }
  }

  private setDirty(key: string, d: DirtyValue): void {
    this.dirty.set(key, d);
    this.o.store.put(key, d);
  }

  private clearDirty(key: string): void {
    this.dirty.delete(key);
    this.o.store.delete(key);
  }
}

function unavailable(reply: { type: string; detail?: string; node?: string }): Unavailable {
  if (reply.type === "unavailable")
    return { type: "unavailable", detail: `cache node ${reply.node} holds the key and does not answer` };
  return { type: "unavailable", detail: reply.detail ?? "the key's Raft group has no leader that can commit" };
}
