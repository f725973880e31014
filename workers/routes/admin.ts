import { Hono } from "hono";
import { clusterShape, genesisVoters, parsePeerId, peerName } from "../../shared/cluster.js";
import type { Env } from "../env.js";
import { peerStub } from "../groups.js";
import { readBody } from "../http.js";
import { problem } from "../problem.js";
import { ClockBody, PartitionBody } from "../schemas.js";

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
  return c.json({ partitioned: body.value.sides });
});

admin.post("/heal", async (c) => {
  const ids = genesisVoters(clusterShape(c.env));
  await Promise.all(ids.map((id) => everyGroup(c.env, id, (peer, name) => peer.setBlocked(name, []))));
  return c.json({ healed: true });
});

admin.post("/peers/:id/crash", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("not-found", `no peer ${c.req.param("id")}`);
  await everyGroup(c.env, id, (peer, name) => peer.crash(name));
  return c.json({ crashed: `p${id}` });
});

admin.post("/peers/:id/restart", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("not-found", `no peer ${c.req.param("id")}`);
  await everyGroup(c.env, id, (peer, name) => peer.restart(name));
  return c.json({ restarted: `p${id}` });
});

/** The peer's clock runs `offsetMs` ahead of (or behind) real time from now on, in every group; 0 restores it. */
admin.post("/peers/:id/clock", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("not-found", `no peer ${c.req.param("id")}`);
  const body = await readBody(c, ClockBody);
  if (!body.ok) return body.response;
  const { offsetMs } = body.value;
  await everyGroup(c.env, id, (peer, name) => peer.setClockOffset(name, offsetMs));
  return c.json({ peer: `p${id}`, offsetMs });
});
