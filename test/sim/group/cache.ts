/**
 * The cache nodes n1..nN, hosted as objects/cache-node.ts hosts them: each is the real
 * CacheNodeCore (shared/cache/node.ts) with its own clock (offset and drift, like a peer's), a
 * store of dirty values that survives crashes (the Durable Object's SQLite table), and a
 * DirectoryLink that calls the key's group through the Worker's `callGroup`, over its own links
 * to the peers. The other way, every peer's directory service (shared/cache/directory-service.ts)
 * reaches the nodes through `orderTransport`: an RPC from the peer to the node over the same
 * links, answered within ORDER_TIMEOUT_MS of the peer's clock or not at all.
 *
 * Links between nodes and peers lose and delay (so reorder) calls in both directions, and can be
 * cut both ways or one way (a node cut off from the key's leader is the interesting case). A crash
 * loses the node's lines and in-flight calls (their replies never come); the dirty store stays.
 */
import { type CacheNodes, ORDER_TIMEOUT_MS } from "../../../shared/cache/directory-service.js";
import {
  CacheNodeCore,
  type CacheStats,
  type DeleteReply,
  type DirectoryLink,
  type DirtyStore,
  type DirtyValue,
  type GetReply,
  type PutReply,
} from "../../../shared/cache/node.js";
import type { DirectoryReply, Order, OrderReply, Propagation } from "../../../shared/cache/types.js";
import type { Rand } from "../../../shared/raft/index.js";
import { PeerClock } from "./clock.js";
import type { Bug, SimPeer } from "./peer.js";
import { type Callee, type Leg, RpcError, rpc } from "./rpc.js";
import type { LinkFaults, SimWorker } from "./worker.js";
import type { Scheduled, World } from "./world.js";

/** As objects/cache-node.ts: how long past the lease a directory request may take. */
export const DIRECTORY_SLACK_MS = 2 * ORDER_TIMEOUT_MS + 4000;

/**
 * The links between cache nodes and Raft peers (named `n1`, `g0p2`): per call, lost or delayed;
 * cut one way or both.
 */
export class CacheLinks {
  /** Off once the faults heal. */
  faulty = true;
  private readonly cut = new Set<string>();

  constructor(
    private readonly rand: Rand,
    readonly faults: LinkFaults,
  ) {}

  /** Cuts the links of `node` to `peers`: both ways, only what the node sends, or only what it receives. */
  partition(node: string, peers: readonly string[], how: "both" | "fromNode" | "toNode"): void {
    for (const p of peers) {
      if (how !== "toNode") this.cut.add(`${node}>${p}`);
      if (how !== "fromNode") this.cut.add(`${p}>${node}`);
    }
  }

  isCut(from: string, to: string): boolean {
    return this.cut.size > 0 && this.cut.has(`${from}>${to}`);
  }

  isPartitioned(): boolean {
    return this.cut.size > 0;
  }

  heal(): void {
    this.cut.clear();
  }

  /** One direction of one call. */
  leg(from: string, to: string): Leg {
    const { rand, faults } = this;
    return {
      delay: () => (this.faulty ? rand.range(faults.minDelay, faults.maxDelay) : faults.minDelay),
      lost: () => this.isCut(from, to) || (this.faulty && rand.chance(faults.lossPerMille, 1000)),
    };
  }
}

export interface CacheNodeEnv {
  world: World;
  worker: SimWorker;
  links: CacheLinks;
  capacity: number;
  /** CACHE_LEASE_MS: bounds how long a directory request may take (objects/cache-node.ts). */
  leaseMs: number;
  /** The drift bound (the node's clock drifts at most this much). */
  maxDriftPpm: number;
  bug: Bug | undefined;
  /** Asked after every answer to a client: crash right after it? */
  crashAfterAnswer: (node: SimCacheNode) => boolean;
  log: (line: () => string) => void;
}

type Down = { type: "unavailable"; detail: string };
const down = (): Down => ({ type: "unavailable", detail: "the cache node is down" });

export class SimCacheNode implements Callee {
  life = 0;
  paused = false;
  backlog: Scheduled[] = [];
  serving = new Set<(e: Error) => void>();
  core: CacheNodeCore | undefined;
  /** The SQLite table cache_dirty: survives crashes (unless the planted bug cacheVolatileDirty). */
  readonly disk = new Map<string, DirtyValue>();
  crashes = 0;
  /** Directory calls of this life still waiting for their answer. */
  calls = 0;
  private idSeq = 0;
  private pauseToken = 0;
  /** The planted bug cacheLateGrant: the last grant the link saw per key, replayed to a later read. */
  private readonly oldGrants = new Map<string, DirectoryReply>();
  lateGrants = 0;
  /** Request ids of the PUTs and DELETEs this node answered as done (stored, deleted), whether or not the answer reached the client. */
  readonly done = new Set<string>();
  /** The node's counters over its earlier lives. */
  private readonly earlier: CacheStats = {
    hits: 0,
    misses: 0,
    evictions: 0,
    invalidations: 0,
    writebacks: 0,
    updates: 0,
  };

  constructor(
    readonly name: string,
    public clock: PeerClock,
    private readonly rand: Rand,
    private readonly env: CacheNodeEnv,
  ) {
    this.start();
  }

  get up(): boolean {
    return this.core !== undefined;
  }

  /** This node's Date.now(). */
  wall(): number {
    return this.clock.wall(this.env.world.now);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** First start and every restart: the dirty values come back from the store, nothing else. */
  start(): void {
    const life = this.life;
    // Only the current life writes (a crashed node's leftover continuations never run anyway:
    // their replies and timers belong to the life that started them).
    const store: DirtyStore = {
      put: (key, d) => {
        if (this.life === life) this.disk.set(key, { ...d });
      },
      delete: (key) => {
        if (this.life === life) this.disk.delete(key);
      },
      all: () => [...this.disk].map(([key, d]): [string, DirtyValue] => [key, { ...d }]),
    };
    this.core = new CacheNodeCore({
      name: this.name,
      capacity: this.env.capacity,
      maxDriftPpm: this.env.maxDriftPpm,
      clock: () => this.wall(),
      directory: this.link(life),
      store,
      newId: () => `${this.name}.${life}.${++this.idSeq}`,
    });
  }

  /** The node's counters over all its lives. */
  stats(): CacheStats {
    const now = this.core?.stats;
    const out = { ...this.earlier };
    if (now !== undefined) for (const k of Object.keys(out) as (keyof CacheStats)[]) out[k] += now[k];
    return out;
  }

  crash(why: string): void {
    const now = this.core?.stats;
    if (now !== undefined) for (const k of Object.keys(this.earlier) as (keyof CacheStats)[]) this.earlier[k] += now[k];
    this.env.log(() => `${this.name} crash (${why})${this.disk.size > 0 ? `, dirty: ${[...this.disk.keys()]}` : ""}`);
    this.life++;
    this.crashes++;
    // As CacheNode.crash: work still in flight on the old core neither answers nor touches the store.
    this.core?.stop();
    this.core = undefined;
    this.calls = 0;
    if (this.env.bug === "cacheVolatileDirty") this.disk.clear();
    this.env.world.crashed(this);
    const calls = [...this.serving];
    this.serving.clear();
    for (const fail of calls) fail(new RpcError(`${this.name} crashed`));
  }

  restart(): void {
    this.env.log(() => `${this.name} restart`);
    this.start();
  }

  /** Restarts on another machine (a Durable Object may move when it wakes): another clock. */
  migrate(clock: PeerClock): void {
    if (this.up) throw new Error("migrate a crashed node only");
    this.env.log(() => `${this.name} moves: clock offset ${clock.offsetMs} ms, drift ${clock.driftPpm} ppm`);
    this.clock = clock;
  }

  pause(ms: number): void {
    if (!this.up || this.paused) return;
    this.env.log(() => `${this.name} pause ${ms} ms`);
    this.paused = true;
    const token = ++this.pauseToken;
    this.env.world.after(ms, () => {
      if (this.pauseToken !== token || !this.paused) return;
      this.env.log(() => `${this.name} resume (${this.backlog.length} events)`);
      this.env.world.resume(this);
    });
  }

  // ---- the Durable Object's methods ---------------------------------------------------------

  get(key: string): Promise<GetReply> {
    return this.answer(this.core?.get(key));
  }

  put(key: string, value: string, propagation: Propagation, requestId: string): Promise<PutReply> {
    return this.answer(this.core?.put(key, value, propagation, requestId), requestId);
  }

  delete(key: string, requestId: string): Promise<DeleteReply> {
    return this.answer(this.core?.delete(key, requestId), requestId);
  }

  /** An order from the directory on `from`; throws (unreachable) when this node is down. */
  order(from: string, order: Order): OrderReply {
    const core = this.core;
    if (core === undefined) throw new RpcError(`cache node ${this.name} unreachable`);
    const reply = core.order(order);
    this.env.log(() => `${this.name} order from ${from}: ${describeOrder(order)} -> ${JSON.stringify(reply)}`);
    return reply;
  }

  private async answer<T extends { type: string }>(
    work: Promise<T> | undefined,
    requestId?: string,
  ): Promise<T | Down> {
    if (work === undefined) return down();
    const life = this.life;
    const out = await work;
    if (requestId !== undefined && out.type !== "unavailable") this.done.add(requestId);
    if (this.life === life && this.env.crashAfterAnswer(this)) {
      this.env.world.after(0, () => this.crash("after answering"), this);
    }
    return out;
  }

  // ---- the way to the directory -----------------------------------------------------------------

  /** objects/cache-node.ts `directory`: the key's group through any peer this node can reach. */
  private link(life: number): DirectoryLink {
    const { world, worker, links, leaseMs, bug } = this.env;
    return {
      call: async (req, requestId) => {
        if (bug === "cacheLateGrant" && req.op === "read") {
          const old = this.oldGrants.get(req.key);
          if (old !== undefined && this.rand.chance(1, 2)) {
            // The planted bug: an earlier grant answers this read, as if its reply came late.
            this.lateGrants++;
            await world.sleep(this.rand.range(1, 20), this);
            this.env.log(() => `${this.name} late grant ${JSON.stringify(old)}`);
            return old;
          }
        }
        this.calls++;
        this.env.log(() => `${this.name} asks ${req.op} ${req.key} (${requestId})`);
        const out = await worker.callGroup(
          worker.groupOf(req.key),
          (peer) => peer.cache(req, requestId),
          leaseMs + DIRECTORY_SLACK_MS,
          {
            caller: this,
            legs: (peer) => ({ out: links.leg(this.name, peer.name), back: links.leg(peer.name, this.name) }),
          },
        );
        if (this.life === life) this.calls--;
        const reply = out.ok ? out.value : ({ type: "no-quorum" } as const);
        this.env.log(() => `${this.name} ${req.op} ${req.key} (${requestId}): ${JSON.stringify(reply)}`);
        if (bug === "cacheLateGrant" && reply.type === "granted") this.oldGrants.set(req.key, reply);
        return reply;
      },
    };
  }
}

/**
 * How the directory on `peer` reaches the nodes (the `cacheNodes` option of createGroupCore):
 * an RPC over the links, given up after ORDER_TIMEOUT_MS on the peer's clock. (The directory
 * service has its own timeout of that length, on a real setTimeout, which never fires inside
 * a simulated run: this one takes its place.)
 */
export function orderTransport(
  peer: SimPeer,
  nodes: ReadonlyMap<string, SimCacheNode>,
  links: CacheLinks,
  world: World,
  bug: Bug | undefined,
  counts: { orders: number; ordersFailed: number },
): CacheNodes {
  return {
    order: (name: string, order: Order): Promise<OrderReply> => {
      const node = nodes.get(name);
      if (node === undefined) return Promise.reject(new Error(`no cache node ${name}`));
      counts.orders++;
      const call = rpc(
        world,
        links.leg(peer.name, name),
        links.leg(name, peer.name),
        node,
        async () => node.order(peer.name, order),
        peer,
      );
      const timeout = new Promise<never>((_, reject) =>
        world.after(
          peer.clock.realDuration(ORDER_TIMEOUT_MS),
          () => reject(new RpcError(`order to ${name} timed out`)),
          peer,
        ),
      );
      const reply = Promise.race([call, timeout]);
      reply.catch(() => counts.ordersFailed++);
      // The planted bug: an order that did not get through counts as acknowledged.
      if (bug === "cacheFalseAck") return reply.catch((): OrderReply => ({ ok: true }));
      return reply;
    },
  };
}

export function describeOrder(o: Order): string {
  return o.action === "update"
    ? `update ${o.key} @${o.stamp} (on ${o.basedOn}) ${o.value}`
    : `${o.action} ${o.key} @${o.stamp}`;
}

/** A clock within the run's bounds. */
export function randomClock(rand: Rand, maxOffsetMs: number, maxDriftPpm: number): PeerClock {
  return new PeerClock(rand.range(-maxOffsetMs, maxOffsetMs), rand.range(-maxDriftPpm, maxDriftPpm));
}
