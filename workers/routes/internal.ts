/**
 * Node-to-node routes (node mode only; 404 otherwise). Every call is signed with CLUSTER_SECRET
 * (shared/node/signing.ts): unsigned, mis-signed, stale or replayed calls get 401 and do nothing.
 *
 * - `POST /internal/raft`: Raft messages for this node's peer of one group; the replies are the answer.
 * - `POST /internal/rpc`: a method of this node's peer of a group, or of a cache node it hosts.
 * - `POST /internal/hello`: address gossip, both ways; `POST /internal/gossip`: say hello to every node.
 * - `POST /internal/info`: the cluster's shape and addresses, read by a node before it joins.
 * - `POST /internal/join` / `POST /internal/leave`: add a node to (remove it from) every group.
 */
import { Hono } from "hono";
import { configuredShape, parsePeerId } from "../../shared/cluster.js";
import { cacheHost, normalizeUrl } from "../../shared/node/peers.js";
import { ReplayGuard, SIGNATURE_HEADER } from "../../shared/node/signing.js";
import type { Env } from "../env.js";
import { genesisNodes, knownNodes, learn, type NodeConfig, nodeConfig } from "../node/book.js";
import type { RpcCall } from "../node/client.js";
import { announce, gossip, type Hello, validEntries } from "../node/gossip.js";
import { problem } from "../problem.js";
import { changeEveryGroup } from "./cluster.js";

type Vars = { node: NodeConfig; body: unknown };
export const internal = new Hono<{ Bindings: Env; Variables: Vars }>();

const replays = new ReplayGuard();

internal.use("*", async (c, next) => {
  const node = nodeConfig(c.env);
  if (node === undefined) return problem("not-found", "internal routes exist only in node mode (NODE_ID set)");
  if (c.req.method !== "POST") return problem("not-found", "internal routes take POST");
  const text = await c.req.text();
  const verdict = await replays.verify(node.secret, c.req.header(SIGNATURE_HEADER), c.req.path, text, Date.now());
  if (!verdict.ok) return problem("unauthorized", `internal call refused: ${verdict.reason}`);
  try {
    c.set("body", JSON.parse(text));
  } catch {
    return problem("validation", "body is not valid JSON");
  }
  c.set("node", node);
  await next();
});

/** The methods a remote caller may invoke on each kind of object. */
const PEER_METHODS = new Set([
  "receive",
  "lock",
  "queues",
  "cache",
  "idempotency",
  "waitEdges",
  "cancelWait",
  "status",
  "changeMembership",
  "crash",
  "restart",
  "setClockOffset",
  "setBlocked",
]);
const CACHE_METHODS = new Set(["get", "put", "delete", "order", "info", "crash", "restart", "setBlocked"]);

/** This node's peer named by `name` (`g<group>-p<self>`); undefined when the name is not one of ours. */
function localPeer(env: Env, node: NodeConfig, name: unknown) {
  if (typeof name !== "string") return undefined;
  const m = /^g(\d+)-p(\d+)$/.exec(name);
  if (m === null || Number(m[2]) !== node.self) return undefined;
  return env.RAFT_PEER.get(env.RAFT_PEER.idFromName(name));
}

/** Cache node `name` when this node hosts it (a remote stand-in here would call in a loop). */
function localCacheNode(env: Env, node: NodeConfig, name: string) {
  const m = /^n([1-9][0-9]*)$/.exec(name);
  if (m === null || cacheHost(Number(m[1]), genesisNodes(env)) !== node.self) return undefined;
  return env.CACHE_NODE.get(env.CACHE_NODE.idFromName(name));
}

// biome-ignore lint/suspicious/noExplicitAny: a checked method name of an RPC stub, called with the caller's arguments.
type AnyStub = Record<string, (...args: any[]) => Promise<unknown>>;

internal.post("/raft", async (c) => {
  const { args } = c.get("body") as { args: unknown[] };
  const peer = localPeer(c.env, c.get("node"), args?.[0]);
  if (peer === undefined) return problem("validation", "not a peer of this node");
  const [name, from, msgs] = args as Parameters<typeof peer.receive>;
  return c.json(await peer.receive(name, from, msgs));
});

internal.post("/rpc", async (c) => {
  const call = c.get("body") as RpcCall;
  const node = c.get("node");
  let stub: AnyStub | undefined;
  if (call.kind === "peer" && PEER_METHODS.has(call.method)) {
    stub = localPeer(c.env, node, call.args?.[0]) as unknown as AnyStub | undefined;
  } else if (call.kind === "cache" && CACHE_METHODS.has(call.method) && typeof call.args?.[0] === "string") {
    stub = localCacheNode(c.env, node, call.args[0]) as unknown as AnyStub | undefined;
  }
  if (stub === undefined)
    return problem("validation", `no ${call.kind} method ${call.method} for these arguments here`);
  const result = await (stub[call.method] as (...a: unknown[]) => Promise<unknown>)(...call.args);
  return c.json(result ?? null);
});

internal.post("/hello", async (c) => {
  const { nodes } = c.get("body") as Hello;
  learn(c.get("node").self, validEntries(nodes));
  return c.json({ nodes: knownNodes() } satisfies Hello);
});

internal.post("/gossip", async (c) => {
  await gossip(c.get("node"));
  return c.json({ nodes: knownNodes() });
});

internal.post("/info", (c) => c.json({ shape: configuredShape(c.env), nodes: knownNodes() }));

internal.post("/join", async (c) => {
  const body = c.get("body") as { id?: string; url?: string };
  const id = parsePeerId(String(body.id));
  let url: string;
  try {
    url = normalizeUrl(String(body.url), "url");
  } catch (err) {
    return problem("validation", String((err as Error).message));
  }
  if (id === undefined) return problem("validation", "id must be a peer id like p4");
  const refused = await announce(c.get("node"), id, url);
  if (refused !== undefined) return problem("validation", refused);
  if (!(await changeEveryGroup(c.env, { type: "addLearner", node: id }))) {
    return problem("no-quorum", "not every group could add the node; ask again", { headers: { "retry-after": "1" } });
  }
  return c.json({ joined: `p${id}`, nodes: knownNodes() });
});

internal.post("/leave", async (c) => {
  const body = c.get("body") as { id?: string };
  const id = parsePeerId(String(body.id));
  if (id === undefined) return problem("validation", "id must be a peer id like p4");
  if (!(await changeEveryGroup(c.env, { type: "remove", node: id }))) {
    return problem("no-quorum", "not every group could remove the node; ask again", {
      headers: { "retry-after": "1" },
    });
  }
  return c.json({ left: `p${id}` });
});
