/**
 * A small in-memory directory for cache-node tests: a real DirectoryTable applied at increasing
 * indexes, with the protocol of the service on the key's leader (shared/cache/directory-service.ts:
 * orders to the other holders first, then the command, then update pushes) done synchronously,
 * as one leader that serves one request at a time would. A Map is the nodes' dirty store and one
 * manual clock (`time`) is everybody's. Requests can be held before they reach the directory or
 * after they committed (their reply on its way), to make replies and orders race.
 */
import { commandFor, DirectoryTable } from "../../shared/cache/directory.js";
import { CacheNodeCore, type DirectoryLink, type DirtyStore, type DirtyValue } from "../../shared/cache/node.js";
import type {
  CacheApplied,
  CacheCommand,
  CacheResult,
  DirectoryReply,
  DirectoryRequest,
  Order,
  OrderReply,
} from "../../shared/cache/types.js";

/** The directory's S lease, and what is left of it on a node whose clock may run 10% slow. */
export const LEASE = 1_000;
export const DRIFT_PPM = 100_000;
export const NODE_LEASE = 900;

export class MapStore implements DirtyStore {
  readonly map = new Map<string, DirtyValue>();
  /** Called on every put: a silent write (E → M) taking effect. */
  onPut?: (key: string, dirty: DirtyValue) => void;
  put(key: string, dirty: DirtyValue): void {
    this.map.set(key, { ...dirty });
    this.onPut?.(key, dirty);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  all(): [string, DirtyValue][] {
    return [...this.map].map(([k, d]) => [k, { ...d }]);
  }
}

type Held = { req: DirectoryRequest; release: () => void };
type Hold = { when: "before" | "after"; match: (req: DirectoryRequest) => boolean };

/** Lets every promise chain that can move on do so (no time passes on the manual clock). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Directory {
  readonly table = new DirectoryTable();
  index = 0;
  time = 10_000;
  readonly nodes = new Map<string, CacheNodeCore>();
  /** Nodes that do not answer orders. */
  readonly down = new Set<string>();
  readonly requests: DirectoryRequest[] = [];
  readonly orders: { node: string; order: Order; reply: OrderReply | undefined }[] = [];
  readonly holds: Hold[] = [];
  readonly held: Held[] = [];
  /** Runs after an op's orders were answered, before its command commits. */
  beforeCommit?: () => void;
  /** Runs after each command applied (whatever its result). */
  onCommit?: (cmd: CacheCommand, result: CacheResult, requestId: string) => void;
  private readonly kill = new Map<string, () => void>();
  private ids = 0;

  /**
   * A node named `name` on this directory (a restart when the name is taken: the old core loses
   * its link, its requests in flight are never answered, and orders go to the new one).
   */
  node(
    name: string,
    opts: { capacity?: number; store?: MapStore; directory?: DirectoryLink; clock?: () => number } = {},
  ) {
    // As the Durable Object does on a crash: the old core stops, and its link goes dead.
    this.nodes.get(name)?.stop();
    this.kill.get(name)?.();
    let alive = true;
    this.kill.set(name, () => {
      alive = false;
    });
    const store = opts.store ?? new MapStore();
    const link: DirectoryLink = {
      call: async (req, id) => {
        if (!alive) return new Promise(() => {});
        const reply = await this.call(req, id);
        return alive ? reply : new Promise(() => {});
      },
    };
    const core = new CacheNodeCore({
      name,
      capacity: opts.capacity ?? 8,
      maxDriftPpm: DRIFT_PPM,
      clock: opts.clock ?? (() => this.time),
      directory: opts.directory ?? link,
      store,
      newId: () => `${name}-id-${++this.ids}`,
    });
    this.nodes.set(name, core);
    return { core, store };
  }

  /** Holds matching requests before they reach the directory, or their replies after they committed. */
  hold(when: Hold["when"], match: Hold["match"]): void {
    this.holds.push({ when, match });
  }

  /** Lets the held request (or reply) at `i` (the oldest by default) go on, and waits until it is taken in. */
  async release(i = 0): Promise<void> {
    await settle();
    const [h] = this.held.splice(i, 1);
    if (h === undefined) throw new Error("nothing held");
    h.release();
    await settle();
  }

  async call(req: DirectoryRequest, requestId = ""): Promise<DirectoryReply> {
    const hold = this.holds.find((h) => h.match(req));
    if (hold?.when === "before") await this.wait(req);
    const reply = this.serve(req, requestId);
    if (hold?.when === "after") await this.wait(req);
    return reply;
  }

  /** A key with a backing value and no holder: written by a node that then handed it back. */
  seed(key: string, value: string): void {
    this.commit(
      {
        type: "cache-write",
        key,
        node: "seed",
        value,
        propagation: "invalidate",
        acked: [],
        basedOn: this.table.stamp(key),
        now: this.time,
        leaseMs: LEASE,
      },
      "",
    );
    this.commit(
      { type: "cache-writeback", key, node: "seed", value, stamp: this.table.stamp(key), now: this.time },
      "",
    );
  }

  requestsOf(node: string): string[] {
    return this.requests.filter((r) => r.node === node).map((r) => `${r.op} ${r.key}`);
  }

  private wait(req: DirectoryRequest): Promise<void> {
    return new Promise((release) => this.held.push({ req, release }));
  }

  private commit(cmd: CacheCommand, requestId: string): CacheApplied {
    const applied = this.table.apply(cmd, ++this.index);
    this.onCommit?.(cmd, applied.result, requestId);
    return applied;
  }

  private send(node: string, order: Order): OrderReply | undefined {
    const reply = this.down.has(node) ? undefined : this.nodes.get(node)?.order(order);
    this.orders.push({ node, order, reply });
    return reply;
  }

  /** What the service on the key's leader does for one request, with no retries and no waiting. */
  private serve(req: DirectoryRequest, requestId: string): DirectoryReply {
    this.requests.push(req);
    const { key } = req;
    if (req.op === "writeback") {
      return this.commit({ type: "cache-writeback", ...req, now: this.time }, requestId).result as DirectoryReply;
    }
    const e = this.table.entry(key);
    const basedOn = e?.stamp ?? 0;
    const owner = e?.owner !== undefined && e.owner !== req.node ? e.owner : undefined;
    const targets: [string, Order][] = [];
    if (owner !== undefined) {
      targets.push([
        owner,
        req.op === "read"
          ? { action: "share", key, stamp: basedOn, leaseMs: LEASE }
          : { action: "invalidate", key, stamp: basedOn },
      ]);
    }
    if (req.op !== "read") {
      for (const n of Object.keys(e?.sharers ?? {}))
        if (n !== req.node) targets.push([n, { action: "invalidate", key, stamp: basedOn }]);
    }
    const replies = targets.map(([n, o]) => ({ node: n, reply: this.send(n, o) }));
    if (replies.some((r) => r.reply?.ok === false))
      throw new Error(`a stale order for ${key}: one leader never sends one`);
    const ownerReply = replies.find((r) => r.node === owner)?.reply;
    if (owner !== undefined && ownerReply === undefined) return { type: "unavailable", key, node: owner };
    this.beforeCommit?.();
    const writeback = ownerReply?.ok ? ownerReply.dirty : undefined;
    const acked = replies.filter((r) => r.reply?.ok).map((r) => r.node);
    const cmd = commandFor(req, { basedOn, acked, writeback, leaseMs: LEASE, now: this.time });
    const applied = this.commit(cmd, requestId);
    // The service would wait out the silent sharers' leases and try again: here, the holder is named.
    if (applied.result.type === "conflict") {
      const silent = replies.find((r) => r.reply === undefined)?.node ?? "(none)";
      return { type: "unavailable", key, node: silent };
    }
    if (applied.push !== undefined && req.op === "write") {
      const { stamp, basedOn: phaseOne, leaseMs } = applied.push;
      for (const n of applied.push.nodes)
        this.send(n, { action: "update", key, value: req.value, stamp, basedOn: phaseOne, leaseMs });
    }
    return applied.result;
  }
}
