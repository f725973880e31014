import { DurableObject } from "cloudflare:workers";
import { ORDER_TIMEOUT_MS } from "../shared/cache/directory-service.js";
import {
  CacheNodeCore,
  type DeleteReply,
  type DirectoryLink,
  type DirtyStore,
  type DirtyValue,
  type GetReply,
  type NodeInfo,
  type PutReply,
} from "../shared/cache/node.js";
import type { Order, OrderReply, Propagation } from "../shared/cache/types.js";
import { cacheSettings, parsePeerId } from "../shared/cluster.js";
import { MAX_DRIFT_PPM } from "../shared/group/core.js";
import type { Env } from "../workers/env.js";
import { callGroup, groupOf } from "../workers/groups.js";

/** How long past the lease a directory request may take (orders, a commit, an election). */
const DIRECTORY_SLACK_MS = 2 * ORDER_TIMEOUT_MS + 4000;

/**
 * One cache node (`n1`..`nN`): thin glue around CacheNodeCore (shared/cache/node.ts). Its SQLite
 * keeps only dirty values (written here alone, E → M) until the directory has them; every other
 * line lives in memory and is simply lost in a crash, which coherence allows. Faults for the
 * admin routes: a crash, and a partition from some Raft peers (orders from them fail, requests
 * go through other peers).
 */
export class CacheNode extends DurableObject<Env> {
  private core: CacheNodeCore | undefined;
  private crashed = false;
  /** Raft peer ids this node cannot reach (both directions). */
  private blocked = new Set<number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS cache_dirty (key TEXT PRIMARY KEY, value TEXT NOT NULL, stamp INTEGER NOT NULL)",
    );
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS cache_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.crashed = this.meta("crashed") === "true";
    this.blocked = new Set(JSON.parse(this.meta("blocked") ?? "[]") as number[]);
  }

  async get(name: string, key: string): Promise<GetReply> {
    return (await this.serving(name))?.get(key) ?? down();
  }

  async put(name: string, key: string, value: string, propagation: Propagation, requestId: string): Promise<PutReply> {
    return (await this.serving(name))?.put(key, value, propagation, requestId) ?? down();
  }

  async delete(name: string, key: string, requestId: string): Promise<DeleteReply> {
    return (await this.serving(name))?.delete(key, requestId) ?? down();
  }

  /** An order from the directory on peer `from`; null when this node is down or cut off from it (a lost message). */
  async order(name: string, from: number, order: Order): Promise<OrderReply | null> {
    const core = await this.serving(name);
    if (core === undefined || this.blocked.has(from)) return null;
    return core.order(order);
  }

  async info(name: string): Promise<NodeInfo | null> {
    return (await this.serving(name))?.info() ?? null;
  }

  // ---- faults (admin routes) ----------------------------------------------------------------

  async crash(_name: string): Promise<void> {
    this.crashed = true;
    // Work still in flight on the old core must neither answer as served nor touch the store.
    this.core?.stop();
    this.core = undefined;
    this.setMeta("crashed", "true");
  }

  async restart(name: string): Promise<void> {
    this.crashed = false;
    this.setMeta("crashed", "false");
    await this.serving(name);
  }

  async setBlocked(_name: string, peers: number[]): Promise<void> {
    this.blocked = new Set(peers);
    this.setMeta("blocked", JSON.stringify(peers));
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  private async serving(name: string): Promise<CacheNodeCore | undefined> {
    if (this.crashed) return undefined;
    if (this.core === undefined) {
      const settings = cacheSettings(this.env);
      this.core = new CacheNodeCore({
        name,
        capacity: settings.capacity,
        maxDriftPpm: MAX_DRIFT_PPM,
        clock: () => Date.now(),
        directory: this.directory(settings.leaseMs),
        store: this.store(),
        newId: () => crypto.randomUUID(),
      });
    }
    return this.core;
  }

  /** The key's Raft group, through any peer this node can reach (a follower forwards to the leader). */
  private directory(leaseMs: number): DirectoryLink {
    return {
      call: async (req, requestId) => {
        const out = await callGroup(
          this.env,
          groupOf(this.env, req.key),
          async (peer, peerName) => {
            const id = parsePeerId(peerName.slice(peerName.indexOf("-") + 1));
            if (id !== undefined && this.blocked.has(id)) throw new Error("partitioned");
            return peer.cache(peerName, req, requestId);
          },
          leaseMs + DIRECTORY_SLACK_MS,
        );
        return out.ok ? out.value : { type: "no-quorum", detail: out.detail };
      },
    };
  }

  private store(): DirtyStore {
    const sql = this.ctx.storage.sql;
    return {
      put: (key, d) =>
        void sql.exec("INSERT OR REPLACE INTO cache_dirty (key, value, stamp) VALUES (?, ?, ?)", key, d.value, d.stamp),
      delete: (key) => void sql.exec("DELETE FROM cache_dirty WHERE key = ?", key),
      all: () =>
        sql
          .exec<{ key: string; value: string; stamp: number }>("SELECT key, value, stamp FROM cache_dirty")
          .toArray()
          .map((r): [string, DirtyValue] => [r.key, { value: r.value, stamp: r.stamp }]),
    };
  }

  private meta(key: string): string | undefined {
    return this.ctx.storage.sql.exec<{ value: string }>("SELECT value FROM cache_meta WHERE key = ?", key).toArray()[0]
      ?.value;
  }

  private setMeta(key: string, value: string): void {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO cache_meta (key, value) VALUES (?, ?)", key, value);
  }
}

function down(): { type: "unavailable"; detail: string } {
  return { type: "unavailable", detail: "the cache node is down" };
}
