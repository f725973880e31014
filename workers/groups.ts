import type { CacheNode } from "../objects/cache-node.js";
import type { PeerReply, RaftPeer } from "../objects/raft-peer.js";
import { clusterShape, groupName, type LocationHint, peerName, peerRegions, regionOf } from "../shared/cluster.js";
import { HashRing } from "../shared/hashing/ring.js";
import { cacheHost } from "../shared/node/peers.js";
import type { NodeId } from "../shared/raft/index.js";
import type { Env } from "./env.js";
import { genesisNodes, nodeConfig } from "./node/book.js";
import { remoteStub } from "./node/client.js";

type Peer = DurableObjectStub<RaftPeer>;

/** The last leader seen per group, in this isolate: most requests go straight to it. */
const leaderHints = new Map<number, NodeId>();
let ring: { groups: number; ring: HashRing } | undefined;

/** The Raft group that owns `key` (a lock resource, a queue shard, a cache key). */
export function groupOf(env: Env, key: string): number {
  const { groups } = clusterShape(env);
  if (ring?.groups !== groups) {
    ring = { groups, ring: new HashRing(Array.from({ length: groups }, (_, g) => groupName(g))) };
  }
  return Number(ring.ring.lookup(key).slice(1));
}

/**
 * Peer `id` of `group`: its Durable Object in this process, or in node mode, when another node
 * hosts it, a stand-in that calls that node over HTTP (workers/node/client.ts).
 */
export function peerStub(env: Env, group: number, id: NodeId): Peer {
  const node = nodeConfig(env);
  if (node !== undefined && id !== node.self) return remoteStub<Peer>(node, id, "peer");
  // The hint only matters when the object is first created; Miniflare ignores it.
  const locationHint = regionOf(regionsOf(env), id);
  return env.RAFT_PEER.get(env.RAFT_PEER.idFromName(peerName(group, id)), locationHint ? { locationHint } : undefined);
}

let regions: { value: string | undefined; parsed: LocationHint[] } | undefined;
function regionsOf(env: Env): LocationHint[] {
  if (regions === undefined || regions.value !== env.PEER_REGIONS) {
    regions = { value: env.PEER_REGIONS, parsed: peerRegions(env.PEER_REGIONS) };
  }
  return regions.parsed;
}

/** The Durable Object of cache node `node` (n1..nN), here or (node mode) on the node that hosts it. */
export function cacheNodeStub(env: Env, node: string): DurableObjectStub<CacheNode> {
  const config = nodeConfig(env);
  if (config !== undefined) {
    const host = cacheHost(Number(node.slice(1)), genesisNodes(env));
    if (host !== config.self) return remoteStub<DurableObjectStub<CacheNode>>(config, host, "cache");
  }
  return env.CACHE_NODE.get(env.CACHE_NODE.idFromName(node));
}

/** A failure says why when a peer could tell: a misconfigured cluster or a command that could not apply. */
export type GroupOutcome<T> = { ok: true; value: T } | { ok: false; reason: "no-quorum"; detail?: string };

/**
 * Runs `call` on the leader of `group`: tries the last known leader, follows not-leader hints,
 * skips peers that are down, and retries until `deadlineMs` has passed (then: no quorum).
 * A call that timed out after proposing is not retried: its outcome is unknown.
 */
export async function callGroup<T>(
  env: Env,
  group: number,
  call: (peer: Peer, name: string) => Promise<PeerReply<T>>,
  deadlineMs: number,
  /** Enter through this peer only (it forwards to the leader if it can reach it): `x-raft-peer`. */
  via?: NodeId,
): Promise<GroupOutcome<T>> {
  const { peers } = clusterShape(env);
  const until = Date.now() + deadlineMs;
  let next = via ?? leaderHints.get(group) ?? 1;
  for (let attempt = 0; ; attempt++) {
    const id = next;
    let reply: PeerReply<T> | undefined;
    try {
      reply = await call(peerStub(env, group, id), peerName(group, id));
    } catch {
      reply = undefined; // unreachable: try another peer
    }
    if (reply?.ok) {
      if (via === undefined) leaderHints.set(group, id);
      return reply;
    }
    if (reply?.error === "timeout") return { ok: false, reason: "no-quorum" };
    // Final answers: retrying elsewhere would meet the same data, settings or bug.
    if (reply?.error === "failed" || reply?.error === "misconfigured") {
      return { ok: false, reason: "no-quorum", detail: reply.detail };
    }
    if (Date.now() >= until) return { ok: false, reason: "no-quorum" };
    // Follow the peer's hint, else try the next one; pause after each round (an election runs).
    const hint = reply?.error === "not-leader" ? reply.leader : 0;
    next = via ?? (hint !== 0 && hint !== id ? hint : (id % peers) + 1);
    if ((attempt + 1) % peers === 0) await new Promise((r) => setTimeout(r, 50));
  }
}
