import { Hono } from "hono";
import {
  cacheNodeName,
  cacheSettings,
  clusterShape,
  genesisVoters,
  parsePeerId,
  peerName,
} from "../../shared/cluster.js";
import type { Env } from "../env.js";
import { cacheNodeStub, peerStub } from "../groups.js";
import { readBody } from "../http.js";
import { problem } from "../problem.js";
import {
  CachePartitionBody,
  type CachePartitionReply,
  ClockBody,
  type ClockReply,
  type CrashReply,
  type HealReply,
  PartitionBody,
  type PartitionReply,
  type Reply,
  type RestartReply,
} from "../schemas.js";

/** Fault injection (FAULT_INJECTION=true only): partitions, crashes and restarts of peers. */
export const admin = new Hono<{ Bindings: Env }>();

admin.use("*", async (c, next) => {
  if (c.env.FAULT_INJECTION !== "true") return problem("not-found", "fault injection is disabled");
  await next();
});

/** Runs `fn` on peer `id` of every group. */
async function everyGroup(
  env: Env,
  id: number,
  fn: (peer: ReturnType<typeof peerStub>, name: string) => Promise<void>,
) {
  const { groups } = clusterShape(env);
  await Promise.all(Array.from({ length: groups }, (_, g) => fn(peerStub(env, g, id), peerName(g, id))));
}

admin.post("/partition", async (c) => {
  const body = await readBody(c, PartitionBody);
  if (!body.ok) return body.response;
  const sides = body.value.sides.map((side) => side.map((p) => parsePeerId(p) as number));
  const all = sides.flat();
  if (new Set(all).size !== all.length) return problem("validation", "a peer appears on two sides");
  await Promise.all(
    sides.flatMap((side) =>
      side.map((id) => {
        const others = all.filter((p) => !side.includes(p));
        return everyGroup(c.env, id, (peer, name) => peer.setBlocked(name, others));
      }),
    ),
  );
  return c.json({ partitioned: body.value.sides } satisfies Reply<typeof PartitionReply>);
});

admin.post("/heal", async (c) => {
  const ids = genesisVoters(clusterShape(c.env));
  const { nodes } = cacheSettings(c.env);
  await Promise.all([
    ...ids.map((id) => everyGroup(c.env, id, (peer, name) => peer.setBlocked(name, []))),
    ...Array.from({ length: nodes }, (_, i) => cacheNodeStub(c.env, `n${i + 1}`).setBlocked(`n${i + 1}`, [])),
  ]);
  return c.json({ healed: true } satisfies Reply<typeof HealReply>);
});

/** Cache node faults: `crash` (loses its memory: lines and stats; dirty values stay), `restart`. */
admin.post("/cache/:node/:fault{crash|restart}", async (c) => {
  const node = cacheNodeName(c.req.param("node"), cacheSettings(c.env));
  if (node === undefined) return problem("not-found", `no cache node ${c.req.param("node")}`);
  const stub = cacheNodeStub(c.env, node);
  if (c.req.param("fault") === "crash") await stub.crash(node);
  else await stub.restart(node);
  return c.json({ node, [c.req.param("fault") === "crash" ? "crashed" : "restarted"]: true });
});

/** Cuts a cache node off from Raft peers (`peers`, default all of them); `{ "peers": [] }` or /heal restores. */
admin.post("/cache/:node/partition", async (c) => {
  const node = cacheNodeName(c.req.param("node"), cacheSettings(c.env));
  if (node === undefined) return problem("not-found", `no cache node ${c.req.param("node")}`);
  const body = await readBody(c, CachePartitionBody);
  if (!body.ok) return body.response;
  const peers = body.value.peers?.map((p) => parsePeerId(p) as number) ?? genesisVoters(clusterShape(c.env));
  await cacheNodeStub(c.env, node).setBlocked(node, peers);
  return c.json({ node, blocked: peers.map((p) => `p${p}`) } satisfies Reply<typeof CachePartitionReply>);
});

admin.post("/peers/:id/crash", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("not-found", `no peer ${c.req.param("id")}`);
  await everyGroup(c.env, id, (peer, name) => peer.crash(name));
  return c.json({ crashed: `p${id}` } satisfies Reply<typeof CrashReply>);
});

admin.post("/peers/:id/restart", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("not-found", `no peer ${c.req.param("id")}`);
  await everyGroup(c.env, id, (peer, name) => peer.restart(name));
  return c.json({ restarted: `p${id}` } satisfies Reply<typeof RestartReply>);
});

/** The peer's clock runs `offsetMs` ahead of (or behind) real time from now on, in every group; 0 restores it. */
admin.post("/peers/:id/clock", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("not-found", `no peer ${c.req.param("id")}`);
  const body = await readBody(c, ClockBody);
  if (!body.ok) return body.response;
  const { offsetMs } = body.value;
  await everyGroup(c.env, id, (peer, name) => peer.setClockOffset(name, offsetMs));
  return c.json({ peer: `p${id}`, offsetMs } satisfies Reply<typeof ClockReply>);
});
