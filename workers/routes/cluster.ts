import { Hono } from "hono";
import type { PeerStatus } from "../../objects/raft-peer.js";
import { clusterShape, genesisVoters, groupName, parsePeerId } from "../../shared/cluster.js";
import { normalizeUrl } from "../../shared/node/peers.js";
import type { ConfChange } from "../../shared/raft/index.js";
import type { Env } from "../env.js";
import { callGroup, peerStub } from "../groups.js";
import { noQuorum, readBody } from "../http.js";
import { addressOf, nodeConfig } from "../node/book.js";
import { announce } from "../node/gossip.js";
import { problem } from "../problem.js";
import { type ClusterStatusReply, type GroupStatus, type MembershipReply, PeerBody, type Reply } from "../schemas.js";

export const cluster = new Hono<{ Bindings: Env }>();

/** Every peer's own view of one group (null for a peer that is down). */
async function groupStatus(env: Env, group: number): Promise<(PeerStatus | null)[]> {
  const ids = new Set(genesisVoters(clusterShape(env)));
  const first = await Promise.all([...ids].map((id) => statusOf(env, group, id)));
  // Peers added since genesis are known from any member's configuration.
  const extra = new Set<number>();
  for (const s of first)
    for (const id of [...(s?.voters ?? []), ...(s?.learners ?? [])]) if (!ids.has(id)) extra.add(id);
  const more = await Promise.all([...extra].map((id) => statusOf(env, group, id)));
  return [...first, ...more];
}

async function statusOf(env: Env, group: number, id: number): Promise<PeerStatus | null> {
  try {
    return await peerStub(env, group, id).status(`g${group}-p${id}`);
  } catch {
    return null;
  }
}

/** The group as its leader sees it (the leader of the highest term, if several think they lead). */
export async function describeGroup(env: Env, group: number): Promise<Reply<typeof GroupStatus>> {
  const statuses = await groupStatus(env, group);
  const live = statuses.filter((s): s is PeerStatus => s !== null);
  const leader = live.filter((s) => s.role === "leader").sort((a, b) => b.term - a.term)[0];
  const term = Math.max(0, ...live.map((s) => s.term));
  const members = leader ? [...leader.voters, ...leader.learners] : genesisVoters(clusterShape(env));
  const peers = members.map((id) => {
    const own = live.find((s) => s.id === id);
    const progress = leader?.progress.find((p) => p.id === id);
    const role = own === undefined ? "down" : leader?.learners.includes(id) ? "learner" : own.role;
    return {
      id: `p${id}`,
      role,
      matchIndex: progress?.matchIndex ?? own?.lastIndex ?? 0,
      lastContactMs: progress?.lastContactMs ?? null,
    };
  });
  return {
    group: groupName(group),
    leader: leader ? `p${leader.id}` : null,
    term: leader?.term ?? term,
    commitIndex: leader?.commitIndex ?? Math.max(0, ...live.map((s) => s.commitIndex)),
    peers,
  };
}

cluster.get("/", async (c) => {
  const { groups } = clusterShape(c.env);
  const all = await Promise.all(Array.from({ length: groups }, (_, g) => describeGroup(c.env, g)));
  return c.json({ groups: all } satisfies Reply<typeof ClusterStatusReply>);
});

/** Adds a peer to every group: a learner first, promoted by each leader once caught up. */
cluster.post("/peers", async (c) => {
  const body = await readBody(c, PeerBody);
  if (!body.ok) return body.response;
  const id = parsePeerId(body.value.id) as number;
  const node = nodeConfig(c.env);
  if (node !== undefined) {
    // Between processes the groups' leaders must know where the new peer listens.
    const url = body.value.url === undefined ? addressOf(id) : normalizeUrl(body.value.url, "url");
    if (url === undefined) return problem("validation", `no address known for p${id}: give its url`);
    const refused = await announce(node, id, url);
    if (refused !== undefined) return problem("validation", refused);
  }
  return changeResponse(c.env, { type: "addLearner", node: id });
});

cluster.delete("/peers/:id", async (c) => {
  const id = parsePeerId(c.req.param("id"));
  if (id === undefined) return problem("validation", "peer ids are p1, p2, ...");
  return changeResponse(c.env, { type: "remove", node: id });
});

/** Proposes `cc` in every group; true when every group committed it. */
export async function changeEveryGroup(env: Env, cc: ConfChange): Promise<boolean> {
  const { groups } = clusterShape(env);
  const results = await Promise.all(
    Array.from({ length: groups }, (_, g) => callGroup(env, g, (peer, name) => peer.changeMembership(name, cc), 4000)),
  );
  return results.every((r) => r.ok);
}

async function changeResponse(env: Env, cc: ConfChange): Promise<Response> {
  if (!(await changeEveryGroup(env, cc))) return noQuorum("not every group could accept the membership change");
  const reply = { accepted: true, change: cc.type, peer: `p${cc.node}` } satisfies Reply<typeof MembershipReply>;
  return new Response(JSON.stringify(reply), {
    status: 202,
    headers: { "content-type": "application/json" },
  });
}
