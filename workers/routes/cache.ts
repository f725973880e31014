import { type Context, Hono } from "hono";
import type { Unavailable } from "../../shared/cache/node.js";
import { cacheNodeName, cacheSettings } from "../../shared/cluster.js";
import type { Env } from "../env.js";
import { cacheNodeStub } from "../groups.js";
import { noQuorum, pathName, readBody } from "../http.js";
import { requestIdOf } from "../idempotency.js";
import { problem } from "../problem.js";
import {
  type CacheDeleteReply,
  type CacheGetReply,
  type CacheNodeReply,
  CachePutBody,
  type CachePutReply,
  type Reply,
} from "../schemas.js";

/** A cached value's serialized size limit: like a queue message's, well inside one Raft entry. */
const MAX_VALUE_BYTES = 128 * 1024;

type C = Context<{ Bindings: Env }>;

export const cache = new Hono<{ Bindings: Env }>();

cache.get("/nodes/:node", async (c) => {
  const node = cacheNodeName(c.req.param("node"), cacheSettings(c.env));
  if (node === undefined) return unknownNode(c, c.req.param("node"));
  const info = await cacheNodeStub(c.env, node).info(node);
  if (info === null) return noQuorum(`cache node ${node} is down`);
  return c.json(info satisfies Reply<typeof CacheNodeReply>);
});

cache.get("/:key", async (c) => {
  const key = pathName(c, "key");
  if (!key.ok) return key.response;
  const node = nodeOf(c);
  if (typeof node !== "string") return node;
  const reply = await cacheNodeStub(c.env, node).get(node, key.value);
  if (reply.type === "unavailable") return unavailable(reply);
  if (reply.type === "absent") return problem("not-found", `no cached value for ${key.value}`);
  const { value, state, hit } = reply;
  return c.json({ key: key.value, value: JSON.parse(value), node, state, hit } satisfies Reply<typeof CacheGetReply>);
});

cache.put("/:key", async (c) => {
  const key = pathName(c, "key");
  if (!key.ok) return key.response;
  const node = nodeOf(c);
  if (typeof node !== "string") return node;
  const propagation = c.req.query("propagation") ?? "invalidate";
  if (propagation !== "invalidate" && propagation !== "update") {
    return problem("validation", `propagation must be "invalidate" or "update", got "${propagation}"`);
  }
  const body = await readBody(c, CachePutBody);
  if (!body.ok) return body.response;
  const value = JSON.stringify(body.value.value);
  if (new TextEncoder().encode(value).length > MAX_VALUE_BYTES) {
    return problem("payload-too-large", `value over ${MAX_VALUE_BYTES} bytes serialized`);
  }
  const reply = await cacheNodeStub(c.env, node).put(node, key.value, value, propagation, requestIdOf(c));
  if (reply.type === "unavailable") return unavailable(reply);
  return c.json({ key: key.value, node, state: reply.state } satisfies Reply<typeof CachePutReply>);
});

cache.delete("/:key", async (c) => {
  const key = pathName(c, "key");
  if (!key.ok) return key.response;
  const node = nodeOf(c);
  if (typeof node !== "string") return node;
  const reply = await cacheNodeStub(c.env, node).delete(node, key.value, requestIdOf(c));
  if (reply.type === "unavailable") return unavailable(reply);
  return c.json({ deleted: reply.existed } satisfies Reply<typeof CacheDeleteReply>);
});

/** The node a request names (`?node=`, else `x-cache-node`, else n1), or the 404 answer. */
function nodeOf(c: C): string | Response {
  const asked = c.req.query("node") ?? c.req.header("x-cache-node") ?? "n1";
  return cacheNodeName(asked, cacheSettings(c.env)) ?? unknownNode(c, asked);
}

function unknownNode(c: C, asked: string): Response {
  const { nodes } = cacheSettings(c.env);
  return problem("not-found", `no cache node "${asked}": nodes are n1..n${nodes}`);
}

function unavailable(reply: Unavailable): Response {
  return noQuorum(reply.detail);
}
