import type { CacheNode } from "../objects/cache-node.js";
import type { DeadlockDetector } from "../objects/deadlock-detector.js";
import type { RaftPeer } from "../objects/raft-peer.js";

/** Bindings and settings (strings from wrangler.toml vars, `.env` or secrets). */
export interface Env {
  RAFT_PEER: DurableObjectNamespace<RaftPeer>;
  DEADLOCK_DETECTOR: DurableObjectNamespace<DeadlockDetector>;
  CACHE_NODE: DurableObjectNamespace<CacheNode>;
  API_TOKEN?: string;
  ADMIN_TOKEN?: string;
  FAULT_INJECTION?: string;
  RAFT_GROUPS?: string;
  RAFT_PEERS?: string;
  /** Wall-clock length of a Raft tick (default 50 ms: heartbeats every 100 ms, elections after 0.5–1 s). */
  RAFT_TICK_MS?: string;
  /** Applied entries between log compactions, at the least (default 1000). */
  RAFT_COMPACT_EVERY?: string;
  /** Shards per queue (default 8). */
  QUEUE_SHARDS?: string;
  /** Cache nodes n1..nN (default 4). */
  CACHE_NODES?: string;
  /** Lines per cache node (default 1024). */
  CACHE_CAPACITY?: string;
  /** S leases of cache lines, ms (default 10000): a write waits at most this long for a node it cannot reach. */
  CACHE_LEASE_MS?: string;
  /** "true": admin routes are open without ADMIN_TOKEN (npm start / npm run node on loopback only). */
  INSECURE_LOCAL?: string;
  /** Cloudflare: regions for peers p1, p2, ... of every group (location hints, e.g. "wnam,enam,weur"). */
  PEER_REGIONS?: string;
  /** Node mode (one process per node, `npm run node`): this node's peer id, e.g. `p1`. */
  NODE_ID?: string;
  /** Node mode: the genesis nodes, `p1=http://host:port,...` (this node's own entry may be included). */
  PEERS?: string;
  /** Node mode: the URL the other nodes reach this one at. */
  ADVERTISE_URL?: string;
  /** Node mode: the key that signs node-to-node calls (HMAC-SHA256). */
  CLUSTER_SECRET?: string;
}
