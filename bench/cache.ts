// `npm run bench -- cache`: hits on keys each node holds; read-heavy and write-heavy mixes over many keys.
import type { Client } from "./http.js";
import type { Check, Messages, Phase, Scenario, Timed } from "./load.js";

/** The hit targets: ≥ 70% of the no-op ceiling at every concurrency, p95 < 2 ms at this one. */
const HITS_CONCURRENCY = 4;
const HITS_SHARE_MIN = 70;
const HITS_P95_MAX_MS = 2;
/** Well under a node's capacity (1024 by default): nothing is evicted, every GET of the hits phase hits. */
const HOT_KEYS_PER_NODE = 64;
/** The mixes' keys, more than the nodes hold together by default (4 x 1024): some reads must miss. */
const KEYS = 5_000;
/** Zipf exponent of the mixes' key choice: rank r is read or written in proportion to 1 / r^s. */
const ZIPF_S = 1;
/** PUTs in flight while a phase writes its keys, before its warm-up. */
const PREPARE_PARALLEL = 32;
/** CACHE_NODES is at most 64 (shared/cluster.ts). */
const MAX_NODES = 64;

/** Keys of their own per phase, and per run (a --url server keeps the lines of earlier runs). */
const RUN = Date.now().toString(36);
const cachePath = (key: string, node: string) => `/v1/cache/${encodeURIComponent(key)}?node=${node}`;

/** Every value the bench writes names its key, so a GET answering another key's value shows. */
interface Value {
  k: string;
  v: number;
}

interface NodeStats {
  hits: number;
  misses: number;
  evictions: number;
  invalidations: number;
  writebacks: number;
}

interface NodeInfo {
  node: string;
  lines: { key: string; state: string }[];
  stats: NodeStats;
}

/** GET /v1/cache/nodes/{node}; undefined for a node that does not exist (404). */
async function nodeInfo(client: Client, node: string): Promise<NodeInfo | undefined> {
  const reply = await client.call("GET", `/v1/cache/nodes/${node}`, undefined, true);
  if (reply.status === 404) return undefined;
  if (reply.status !== 200) throw new Error(`GET /v1/cache/nodes/${node}: ${reply.outcome} ${reply.body ?? ""}`);
  return reply.json as NodeInfo;
}

/** The server's nodes n1..nN (CACHE_NODES), found by asking for each in turn until one is unknown. */
async function discoverNodes(client: Client): Promise<string[]> {
  const nodes: string[] = [];
  for (let i = 1; i <= MAX_NODES; i++) {
    const info = await nodeInfo(client, `n${i}`);
    if (info === undefined) break;
    nodes.push(info.node);
  }
  if (nodes.length === 0) throw new Error("no cache nodes: GET /v1/cache/nodes/n1 answered 404");
  return nodes;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** P(rank r) ∝ 1 / (r + 1)^s over `n` ranks; draws a rank by binary search of the cumulative weights. */
function zipf(n: number, s: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) cdf[r] = sum += 1 / (r + 1) ** s;
  return () => {
    const u = Math.random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] ?? 0) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * One phase's keys and nodes, and what its GET replies said over the whole phase (warm-up and the
 * ops in flight at its end too, unlike the table), to hold against the nodes' own counters.
 */
class CachePhase {
  nodes: string[] = [];
  private hits = 0;
  private gets = 0;
  private before: NodeStats[] = [];

  constructor(readonly prefix: string) {}

  /** Finds the nodes, writes each key on its node (`placed` says where), then notes the nodes' counters. */
  async prepare(client: Client, placed: (nodes: string[]) => [key: string, node: string][]): Promise<void> {
    this.nodes = await discoverNodes(client);
    await inParallel(placed(this.nodes), PREPARE_PARALLEL, async ([key, node]) => {
      const reply = await client.call("PUT", cachePath(key, node), { value: { k: key, v: -1 } });
      if (reply.status !== 200) throw new Error(`writing ${key} on ${node}: ${reply.outcome} ${reply.body ?? ""}`);
    });
    this.before = (await this.infos(client)).map((i) => i.stats);
  }

  /** A timed GET; a 200 whose body is not this key's value on this node counts as an error. */
  async get(client: Client, timed: Timed, key: string, node: string): Promise<void> {
    const hit: Messages = (reply) => {
      const got = reply.json as { key?: unknown; node?: unknown; state?: unknown; hit?: unknown; value?: Value };
      if (got.key !== key || got.node !== node || got.value?.k !== key) return "200 another key's or node's value";
      if (got.state !== "M" && got.state !== "E" && got.state !== "S") return `200 state ${String(got.state)}`;
      if (typeof got.hit !== "boolean") return "200 no hit field";
      return got.hit ? 1 : 0;
    };
    const reply = await timed("get", () => client.call("GET", cachePath(key, node), undefined, true), hit);
    if (reply?.status !== 200) return;
    this.gets++;
    if ((reply.json as { hit?: unknown }).hit === true) this.hits++;
  }

  /** A timed PUT (invalidating the other copies): the writer must end up in M. */
  async put(client: Client, timed: Timed, key: string, node: string, v: number): Promise<void> {
    const inM: Messages = (reply) => {
      const { state } = reply.json as { state?: unknown };
      return state === "M" ? 0 : `200 state ${String(state)} after a write`;
    };
    await timed("put", () => client.call("PUT", cachePath(key, node), { value: { k: key, v } }, true), inM);
  }

  /** The nodes' counters since `prepare` against the replies, and MESI's invariant over this phase's keys. */
  async check(client: Client): Promise<Check[]> {
    const after = await this.infos(client);
    const delta = (field: keyof NodeStats) =>
      after.reduce((sum, info, i) => sum + info.stats[field] - (this.before[i]?.[field] ?? 0), 0);
    const [hits, misses] = [delta("hits"), delta("misses")];
    const rate = (h: number, n: number) => `${((100 * h) / n).toFixed(1)}%`;
    const agree = hits === this.hits && hits + misses === this.gets;
    const counters: Check = {
      ok: agree,
      note:
        `nodes' stats over the phase (warm-up included): ${hits} hits, ${misses} misses (${rate(hits, hits + misses)}), ` +
        `${delta("evictions")} evictions, ${delta("invalidations")} invalidations, ${delta("writebacks")} writebacks; ` +
        `replies: ${this.hits} hits of ${this.gets} GETs answered 200 (${rate(this.hits, this.gets)}): ` +
        (agree ? "they agree" : "they DIFFER"),
    };
    return [counters, this.coherence(after)];
  }

  /** At most one node holds a key in M or E, and never beside an S copy elsewhere (API.md). */
  private coherence(infos: NodeInfo[]): Check {
    const holders = new Map<string, string[]>();
    for (const info of infos) {
      for (const { key, state } of info.lines) {
        if (!key.startsWith(this.prefix)) continue;
        holders.set(key, [...(holders.get(key) ?? []), `${info.node} ${state}`]);
      }
    }
    const broken = [...holders].filter(([, held]) => {
      const owners = held.filter((h) => !h.endsWith(" S")).length;
      return owners > 1 || (owners === 1 && held.length > 1);
    });
    const example = broken[0] === undefined ? "" : ` (e.g. ${broken[0][0]}: ${broken[0][1].join(", ")})`;
    return {
      ok: broken.length === 0,
      note: `lines after the phase: ${holders.size} of its keys cached; ${broken.length} held in M/E beside another copy${example}`,
    };
  }

  private async infos(client: Client): Promise<NodeInfo[]> {
    const infos = await Promise.all(this.nodes.map((node) => nodeInfo(client, node)));
    return infos.map((info, i) => {
      if (info === undefined) throw new Error(`cache node ${this.nodes[i]} went missing`);
      return info;
    });
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function hits(concurrency: number): Phase {
  const name = "hits";
  const phase = new CachePhase(`bench-${RUN}-${name}-c${concurrency}`);
  const keyOf = (node: string, k: number) => `${phase.prefix}-${node}-${k}`;
  const label = "cache hits";
  return {
    name,
    concurrency,
    describe:
      `${HOT_KEYS_PER_NODE} keys per node, each written first on its node (M there); ` +
      `worker w GETs node n(w mod N)'s keys in turn, so every GET should hit`,
    hitsOf: "get",
    targets: [
      { op: "get", metric: "% of no-op", min: HITS_SHARE_MIN, label },
      ...(concurrency === HITS_CONCURRENCY ? [{ op: "get", metric: "p95", max: HITS_P95_MAX_MS, label } as const] : []),
    ],
    prepare: (client) =>
      phase.prepare(client, (nodes) =>
        nodes.flatMap((node) => range(HOT_KEYS_PER_NODE).map((k): [string, string] => [keyOf(node, k), node])),
      ),
    check: (client) => phase.check(client),
    iteration: (client) => async (worker, i, timed) => {
      const node = phase.nodes[worker % phase.nodes.length] as string;
      await phase.get(client, timed, keyOf(node, (worker + i) % HOT_KEYS_PER_NODE), node);
    },
  };
}

/** `readPercent`% GETs, the rest PUTs; the key by Zipf rank, the node uniformly at random, per op. */
function mix(name: string, readPercent: number, concurrency: number): Phase {
  const phase = new CachePhase(`bench-${RUN}-${name}-c${concurrency}`);
  const keyOf = (rank: number) => `${phase.prefix}-${rank}`;
  const rank = zipf(KEYS, ZIPF_S);
  return {
    name,
    concurrency,
    describe:
      `${readPercent}% GET, ${100 - readPercent}% PUT; key Zipf (s=${ZIPF_S}) over ${KEYS} keys, ` +
      `all written first round-robin over the nodes; node uniformly random per op`,
    hitsOf: "get",
    prepare: (client) =>
      phase.prepare(client, (nodes) => range(KEYS).map((r) => [keyOf(r), nodes[r % nodes.length] as string])),
    check: (client) => phase.check(client),
    iteration: (client) => async (worker, i, timed) => {
      const node = phase.nodes[Math.floor(Math.random() * phase.nodes.length)] as string;
      const key = keyOf(rank());
      if (Math.random() * 100 < readPercent) await phase.get(client, timed, key, node);
      else await phase.put(client, timed, key, node, worker * 1e9 + i);
    },
  };
}

export const cache: Scenario = {
  name: "cache",
  describe:
    "GET and PUT /v1/cache/{key}?node=nK on the server's nodes (fresh keys per phase); hit % = GETs answered " +
    "hit: true, out of the 200s; checks: the nodes' own counters against the replies, and MESI after each phase",
  defaultConcurrency: [HITS_CONCURRENCY, 16],
  phases: (concurrency) => [
    ...[...new Set([HITS_CONCURRENCY, ...concurrency])].sort((a, b) => a - b).map(hits),
    ...concurrency.map((c) => mix("read-heavy", 90, c)),
    ...concurrency.map((c) => mix("write-heavy", 50, c)),
  ],
};
