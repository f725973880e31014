/**
 * Node mode: one process per node, and node `pK` hosts peer `pK` of every Raft group. These are
 * the pure parts of its configuration: the address list (`PEERS`), the id a joining node takes,
 * and which node hosts each cache node.
 */
import { parsePeerId } from "../cluster.js";

/** `PEERS`: comma-separated `p1=http://host:port` entries (order and blanks do not matter). */
export function parsePeers(value: string | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const part of (value ?? "").split(",")) {
    const entry = part.trim();
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    const id = eq < 0 ? undefined : parsePeerId(entry.slice(0, eq).trim());
    if (id === undefined) throw new Error(`PEERS entries are p<k>=<url>, got "${entry}"`);
    const url = normalizeUrl(entry.slice(eq + 1).trim(), `PEERS entry p${id}`);
    const known = out.get(id);
    if (known !== undefined && known !== url) throw new Error(`PEERS names p${id} twice (${known}, ${url})`);
    out.set(id, url);
  }
  return out;
}

/** An http(s) origin without a trailing slash; throws naming `what` otherwise. */
export function normalizeUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${what} must be an http(s) URL, got "${value}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`${what} must be an http(s) URL, got "${value}"`);
  }
  return url.origin;
}

export function formatPeers(peers: ReadonlyMap<number, string>): string {
  return [...peers]
    .sort(([a], [b]) => a - b)
    .map(([id, url]) => `p${id}=${url}`)
    .join(",");
}

/** Ids a joining node derives from its name live in 100..9999, clear of the genesis ids p1..p99. */
export const JOINER_IDS = { first: 100, last: 9999 } as const;

/**
 * The id of a node that joins without a NODE_ID: a hash of its host name, so a container that
 * restarts under the same name (and so the same data directory) comes back as the same peer.
 * Two names may hash alike; the join is then refused (the id is taken by another address).
 */
export function joinerId(hostname: string): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < hostname.length; i++) {
    h ^= hostname.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return JOINER_IDS.first + (h % (JOINER_IDS.last - JOINER_IDS.first + 1));
}

/**
 * The node that hosts cache node `nK`: the genesis nodes take them in turn (n1 on p1, n2 on
 * p2, ...), so cache nodes never move when nodes join or leave.
 */
export function cacheHost(cacheNode: number, genesisNodes: number): number {
  return ((cacheNode - 1) % genesisNodes) + 1;
}
