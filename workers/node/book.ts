/**
 * Node mode (`NODE_ID` set): this process is node `pK` and hosts peer `pK` of every group; the
 * other nodes are reached over HTTP at the addresses in this book. The book starts from `PEERS`
 * and learns the rest from joins and from the gossip every node's launcher drives
 * (`/internal/hello`), so a node that restarts with only `PEERS` learns of later joiners within
 * one gossip round. It lives in module memory: under Miniflare the Worker and its Durable
 * Objects share one isolate, so the routes and the peers see the same book.
 */
import { clusterShape, parsePeerId } from "../../shared/cluster.js";
import { normalizeUrl, parsePeers } from "../../shared/node/peers.js";
import type { Env } from "../env.js";

export interface NodeConfig {
  /** This node's id (the K of pK). */
  self: number;
  /** The URL other nodes reach this one at. */
  url: string;
  secret: string;
}

/** Per env object (the Worker's and each Durable Object's differ): parsed once each. */
const configs = new WeakMap<Env, NodeConfig | null>();
const book = new Map<number, string>();

/** This process's node settings, or undefined outside node mode (one process, Workers RPC). */
export function nodeConfig(env: Env): NodeConfig | undefined {
  let node = configs.get(env);
  if (node === undefined) {
    node = readConfig(env) ?? null;
    configs.set(env, node);
    if (node !== null) {
      for (const [id, url] of parsePeers(env.PEERS)) if (!book.has(id)) book.set(id, url);
      book.set(node.self, node.url);
    }
  }
  return node ?? undefined;
}

function readConfig(env: Env): NodeConfig | undefined {
  if (env.NODE_ID === undefined || env.NODE_ID === "") return undefined;
  const self = parsePeerId(env.NODE_ID);
  if (self === undefined) throw new Error(`NODE_ID must be a peer id like p1, got "${env.NODE_ID}"`);
  if (!env.CLUSTER_SECRET) throw new Error("node mode (NODE_ID set) needs CLUSTER_SECRET");
  if (!env.ADVERTISE_URL) throw new Error("node mode (NODE_ID set) needs ADVERTISE_URL");
  return { self, url: normalizeUrl(env.ADVERTISE_URL, "ADVERTISE_URL"), secret: env.CLUSTER_SECRET };
}

/** Where node `id` listens, if this node has heard of it. */
export function addressOf(id: number): string | undefined {
  return book.get(id);
}

/** Every address known, as `[id, url]` pairs. */
export function knownNodes(): [number, string][] {
  return [...book].sort(([a], [b]) => a - b);
}

/**
 * Merges addresses heard from another node. A node's own entry and addresses it already holds
 * for an id are kept (first come wins); returns the ids whose address conflicts.
 */
export function learn(self: number, entries: Iterable<[number, string]>): number[] {
  const conflicts: number[] = [];
  for (const [id, url] of entries) {
    if (id === self) continue;
    const known = book.get(id);
    if (known === undefined) book.set(id, url);
    else if (known !== url) conflicts.push(id);
  }
  return conflicts;
}

/** Replaces node `id`'s address (a join by hand, or a node that moved). */
export function setAddress(id: number, url: string): void {
  book.set(id, url);
}

/** Nodes that host a genesis peer: p1..pN (RAFT_PEERS). */
export function genesisNodes(env: Env): number {
  return clusterShape(env).peers;
}
