/**
 * Cluster shape: `groups` Raft groups (g0..), each of `peers` peers (p1..) at genesis. A peer of
 * a group is one Durable Object named `g<group>-p<id>`; its Raft NodeId is the number after "p".
 */
import { DEFAULT_SHARDS } from "./queue/types.js";

export interface ClusterShape {
  groups: number;
  peers: number;
}

export interface ClusterSettings {
  RAFT_GROUPS?: string;
  RAFT_PEERS?: string;
}

export function clusterShape(env: ClusterSettings): ClusterShape {
  return {
    groups: positive(env.RAFT_GROUPS, 3, "RAFT_GROUPS", 64),
    peers: positive(env.RAFT_PEERS, 3, "RAFT_PEERS", 64),
  };
}

/** Shards per queue: QUEUE_SHARDS, default 8, in 1..256. */
export function queueShards(env: { QUEUE_SHARDS?: string }): number {
  return positive(env.QUEUE_SHARDS, DEFAULT_SHARDS, "QUEUE_SHARDS", 256);
}

function positive(value: string | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new Error(`${name} must be an integer in 1..${max}, got "${value}"`);
  return n;
}

/**
 * The settings that decide where data lives, fixed when a cluster is created: the groups (which
 * group holds each lock and queue shard), the genesis peers of every group (its first voters),
 * and the shards per queue (which shard holds each message). A cluster stores the shape it was
 * created with and refuses to run under another one (`shapeMismatch`); docs/operations.md says
 * how each is changed.
 */
export interface StoredShape {
  groups: number;
  peers: number;
  queueShards: number;
}

export interface ShapeSettings extends ClusterSettings {
  QUEUE_SHARDS?: string;
}

/** The shape the settings ask for (throws on a malformed setting, as `clusterShape` does). */
export function configuredShape(env: ShapeSettings): StoredShape {
  return { ...clusterShape(env), queueShards: queueShards(env) };
}

/**
 * A stored shape read back (JSON), checked; throws when it is not one. Extra fields are ignored,
 * so a later version may store more.
 */
export function parseStoredShape(value: unknown): StoredShape {
  const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const field = (name: keyof StoredShape, max: number): number => {
    const n = v[name];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > max) {
      throw new Error(`not a stored cluster shape: ${name} is ${JSON.stringify(n)} in ${JSON.stringify(value)}`);
    }
    return n;
  };
  return { groups: field("groups", 64), peers: field("peers", 64), queueShards: field("queueShards", 256) };
}

/**
 * Undefined when the configured shape is the stored one; otherwise what an operator needs to
 * know, one line per setting that disagrees: the setting, both values, why it cannot simply
 * change, and what to do.
 */
export function shapeMismatch(stored: StoredShape, configured: StoredShape): string | undefined {
  const problems: string[] = [];
  if (configured.groups !== stored.groups) {
    problems.push(
      `RAFT_GROUPS=${configured.groups} but this cluster was created with ${stored.groups} groups: the number of groups ` +
        "decides which group holds each lock and queue shard, so changing it would lose held locks, send fencing " +
        `tokens backwards and strand queued messages; there is no online resharding. Set RAFT_GROUPS=${stored.groups}, ` +
        'or follow "Changing the number of groups or queue shards" in docs/operations.md.',
    );
  }
  if (configured.peers !== stored.peers) {
    problems.push(
      `RAFT_PEERS=${configured.peers} but this cluster was created with ${stored.peers} peers per group: peers are ` +
        "added with POST /v1/cluster/peers and removed with DELETE /v1/cluster/peers/<id>, not by changing RAFT_PEERS " +
        `(which changes every group's genesis voters: two leaders could be elected at once). Set RAFT_PEERS=${stored.peers} ` +
        "(see docs/operations.md).",
    );
  }
  if (configured.queueShards !== stored.queueShards) {
    problems.push(
      `QUEUE_SHARDS=${configured.queueShards} but this cluster was created with ${stored.queueShards} shards per ` +
        "queue: the number of shards decides which shard holds each message, so fewer shards would strand the " +
        "messages on the shards no longer read, and any change breaks per-key order and lets a retried message id " +
        "be stored twice. " +
        `Set QUEUE_SHARDS=${stored.queueShards}, or follow "Changing the number of groups or queue shards" in ` +
        "docs/operations.md.",
    );
  }
  return problems.length === 0 ? undefined : problems.join("\n");
}

export function peerName(group: number, id: number): string {
  return `g${group}-p${id}`;
}

/** "p3" → 3; undefined when it is not a peer id. */
export function parsePeerId(id: string): number | undefined {
  const m = /^p([1-9][0-9]{0,3})$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

export function groupName(group: number): string {
  return `g${group}`;
}

/** The genesis voters of every group: p1..pN. */
export function genesisVoters(shape: ClusterShape): number[] {
  return Array.from({ length: shape.peers }, (_, i) => i + 1);
}

/** Cloudflare's location hints (https://developers.cloudflare.com/durable-objects/reference/data-location/). */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

/**
 * `PEER_REGIONS` ("wnam,enam,weur"): peer pK of every group is created in region K of the list
 * (round robin), so each group's peers sit in different regions and a group keeps its quorum
 * through a region's outage. Empty: no hints. Throws on a name that is not a location hint.
 */
export function peerRegions(value: string | undefined): LocationHint[] {
  const names = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const name of names) {
    if (!(LOCATION_HINTS as readonly string[]).includes(name)) {
      throw new Error(`PEER_REGIONS: "${name}" is not a location hint (${LOCATION_HINTS.join(", ")})`);
    }
  }
  return names as LocationHint[];
}

/** The region for peer `id` under `regions`, or undefined without hints. */
export function regionOf(regions: readonly LocationHint[], id: number): LocationHint | undefined {
  return regions.length === 0 ? undefined : regions[(id - 1) % regions.length];
}

/** The cache's settings: nodes n1..nN (CACHE_NODES), lines per node (CACHE_CAPACITY), S leases (CACHE_LEASE_MS). */
export interface CacheSettings {
  nodes: number;
  capacity: number;
  leaseMs: number;
}

export function cacheSettings(env: {
  CACHE_NODES?: string;
  CACHE_CAPACITY?: string;
  CACHE_LEASE_MS?: string;
}): CacheSettings {
  return {
    nodes: positive(env.CACHE_NODES, 4, "CACHE_NODES", 64),
    capacity: positive(env.CACHE_CAPACITY, 1024, "CACHE_CAPACITY", 1_000_000),
    leaseMs: positive(env.CACHE_LEASE_MS, 10_000, "CACHE_LEASE_MS", 600_000),
  };
}

/** `n3` → 3 when the cluster has that node; undefined otherwise. */
export function cacheNodeName(name: string, settings: CacheSettings): string | undefined {
  const m = /^n([1-9][0-9]*)$/.exec(name);
  return m !== null && Number(m[1]) <= settings.nodes ? name : undefined;
}
