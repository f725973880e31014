// `npm run node`: one node of a multi-process cluster, configured by its environment; the
// container image runs exactly this (compiled to dist/node/node.mjs by `npm run build:node`).
//
//   NODE_ID        this node's peer id (p1, p2, ...); it hosts peer NODE_ID of every Raft group.
//                  Optional with JOIN: then derived from the host name (p100..p9999).
//   PEERS          the genesis nodes, `p1=http://host:port,...` (this node's entry may be included).
//   JOIN           URL of any node of a running cluster: ask to be added to every group (as a
//                  learner, promoted to voter once caught up). Such a node leaves on SIGTERM.
//   LEAVE_ON_STOP  true/false: leave the cluster on SIGTERM (default: true with JOIN, else false).
//   ADVERTISE_URL  where the other nodes reach this one (default http://<host>:<PORT>).
//   CLUSTER_SECRET the key that signs node-to-node calls (same on every node).
//   DATA_DIR       where nodes keep their data (default .data): this node's is DATA_DIR/<NODE_ID>, so
//                  nodes may share one directory (scaled containers share one volume).
//   PORT, HOST, and every setting of `npm start`.
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type ClusterShape, configuredShape, parsePeerId, type StoredShape } from "../shared/cluster.js";
import { formatPeers, joinerId, normalizeUrl, parsePeers } from "../shared/node/peers.js";
import { newNonce, SIGNATURE_HEADER, sign } from "../shared/node/signing.js";
import {
  bindingsFrom,
  currentBundle,
  ensurePortFree,
  insecureLocal,
  loadSettings,
  portSetting,
  readBundle,
  type Settings,
  serve,
} from "./serve.js";
import { checkShapeFile } from "./shape-file.js";

/** Gossip of node addresses between nodes (see workers/node/book.ts). */
const GOSSIP_EVERY_MS = 3_000;

function say(line: string): void {
  console.log(line);
}

/** A signed POST to another node's (or this node's) internal route. */
async function internalCall<T>(secret: string, base: string, path: string, body: unknown, timeoutMs = 10_000) {
  const text = JSON.stringify(body);
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [SIGNATURE_HEADER]: await sign(secret, path, text, Date.now(), newNonce()),
    },
    body: text,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const answer = await res.text();
  if (!res.ok) throw new Error(`${base}${path} answered ${res.status}: ${answer.slice(0, 400)}`);
  return JSON.parse(answer) as T;
}

/** Retries `attempt` every second until it succeeds, saying why it waits (first failure, then every 10 s). */
async function retry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i % 10 === 0) say(`${what}: ${err instanceof Error ? err.message : String(err)}; retrying`);
      await sleep(1000);
    }
  }
}

interface Plan {
  self: number;
  url: string;
  peers: Map<number, string>;
  join: string | undefined;
  leaveOnStop: boolean;
  bindings: Record<string, string>;
  dataDir: string;
}

/** Everything the environment says, checked, before anything starts. */
async function plan(settings: Settings, port: number, host: string): Promise<Plan> {
  const secret = settings.CLUSTER_SECRET ?? "";
  if (secret.length < 16)
    throw new Error("CLUSTER_SECRET must be set to at least 16 characters, the same on every node");
  const joinUrl = settings.JOIN ? normalizeUrl(settings.JOIN, "JOIN") : undefined;
  const self = settings.NODE_ID ? parsePeerId(settings.NODE_ID) : joinUrl ? joinerId(hostname()) : undefined;
  if (self === undefined)
    throw new Error(`NODE_ID must be a peer id like p1 (or set JOIN), got "${settings.NODE_ID ?? ""}"`);
  const advertiseHost = host === "0.0.0.0" || host === "::" ? hostname() : host;
  const url = normalizeUrl(settings.ADVERTISE_URL ?? `http://${advertiseHost}:${port}`, "ADVERTISE_URL");
  const peers = parsePeers(settings.PEERS);
  const bindings = { ...bindingsFrom(settings), ...insecureLocal(settings, host, say) };

  if (joinUrl === undefined) {
    // The genesis voters are p1..pN: N is RAFT_PEERS, or else the number of nodes PEERS and NODE_ID
    // name. A node beyond them waits to be added by hand (POST /v1/cluster/peers with its url).
    peers.set(self, url);
    const n = bindings.RAFT_PEERS !== undefined ? configuredShape(bindings).peers : peers.size;
    const missing = Array.from({ length: n }, (_, i) => i + 1).filter((id) => !peers.has(id));
    if (missing.length > 0) {
      throw new Error(
        `the genesis nodes are p1..p${n}, but PEERS and NODE_ID do not name ${missing.map((i) => `p${i}`).join(", ")}`,
      );
    }
    bindings.RAFT_PEERS = String(n);
    if (self > n)
      say(`node p${self} is not a genesis node: add it with POST /v1/cluster/peers {"id":"p${self}","url":"${url}"}`);
  } else {
    // A joiner takes the cluster's shape and addresses from the node it joins through.
    say(`asking ${joinUrl} about the cluster...`);
    const info = await retry(`cannot reach JOIN=${joinUrl}`, () =>
      internalCall<{ shape: StoredShape; nodes: [number, string][] }>(secret, joinUrl, "/internal/info", {}),
    );
    for (const [id, address] of info.nodes) if (!peers.has(id)) peers.set(id, address);
    const mine = configuredShape(bindings);
    for (const [key, name] of [
      ["groups", "RAFT_GROUPS"],
      ["peers", "RAFT_PEERS"],
      ["queueShards", "QUEUE_SHARDS"],
    ] as const) {
      if (bindings[name] !== undefined && mine[key] !== info.shape[key]) {
        throw new Error(`${name}=${bindings[name]} but the cluster at ${joinUrl} has ${info.shape[key]}: unset it`);
      }
      bindings[name] = String(info.shape[key]);
    }
  }
  const genesis = Number(bindings.RAFT_PEERS);
  // Cache nodes n1..nN live on the genesis nodes, one each unless CACHE_NODES says otherwise.
  bindings.CACHE_NODES ??= String(genesis);
  Object.assign(bindings, {
    NODE_ID: `p${self}`,
    PEERS: formatPeers(peers),
    ADVERTISE_URL: url,
    CLUSTER_SECRET: secret,
  });
  const leaveOnStop = settings.LEAVE_ON_STOP ? settings.LEAVE_ON_STOP === "true" : joinUrl !== undefined;
  const dataDir = resolve(settings.DATA_DIR ?? ".data", `p${self}`);
  return { self, url, peers, join: joinUrl, leaveOnStop, bindings, dataDir };
}

async function main(): Promise<void> {
  const settings = loadSettings();
  const port = portSetting(settings, 8787);
  const host = settings.HOST ?? "127.0.0.1";
  await ensurePortFree(host, port);
  const p = await plan(settings, port, host);
  const secret = p.bindings.CLUSTER_SECRET as string;
  const shape: ClusterShape & { queueShards: number } = configuredShape(p.bindings);
  const mismatch = checkShapeFile(p.dataDir, shape);
  if (mismatch !== undefined) {
    console.error(mismatch);
    process.exit(2);
  }

  // The container image carries its bundle beside the compiled launcher; a checkout builds (or reuses) one.
  const prebuilt = readBundle(settings.BUNDLE_DIR ?? join(import.meta.dirname, "worker"));
  const bundle = prebuilt ?? (await currentBundle(say));
  say(`node p${p.self}: starting workerd...`);
  const local = `http://127.0.0.1:${port}`;
  const url = await serve({
    bundle,
    bindings: p.bindings,
    host,
    port,
    dataDir: p.dataDir,
    inspectorPort: settings.INSPECTOR_PORT ? Number(settings.INSPECTOR_PORT) : undefined,
    beforeStop: async () => {
      clearInterval(gossipTimer);
      if (!p.leaveOnStop) return;
      say(`node p${p.self}: leaving the cluster...`);
      await internalCall(secret, local, "/internal/leave", { id: `p${p.self}` }, 15_000).then(
        () => say(`node p${p.self}: left every group`),
        (err) => say(`node p${p.self}: could not leave (${String(err)}); stopping anyway`),
      );
    },
  });
  say(`node p${p.self} listening on ${url.origin}, reached at ${p.url} (data in ${p.dataDir})`);
  say(`peers: ${formatPeers(p.peers)}`);
  const gossipTimer = setInterval(() => {
    internalCall(secret, local, "/internal/gossip", {}).catch(() => undefined);
  }, GOSSIP_EVERY_MS);

  if (p.join !== undefined) {
    const join = p.join;
    await retry(`joining through ${join}`, () =>
      internalCall(secret, join, "/internal/join", { id: `p${p.self}`, url: p.url }, 30_000),
    );
    say(`node p${p.self}: joined (a learner in every group until it catches up)`);
  } else {
    // Wake this node's peers now, so the groups elect leaders before the first request.
    fetch(`${local}/readyz`).catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
