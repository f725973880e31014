// Crashes and partitions through the admin routes: the minority stops serving, the majority
// elects a new leader and serves, nothing acknowledged is lost, and fencing tokens keep rising.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { groupOf } from "../../workers/groups";
import { acquire, clusterGroups, get, leaderOf, post, ready, release, waitFor } from "./client";

beforeAll(ready, 20_000);

/** The current leader of `resource`'s group, e.g. "p2". */
async function leaderFor(resource: string): Promise<string> {
  const g = `g${groupOf(env, resource)}`;
  return leaderOf(g);
}

/** Fencing tokens granted per resource, in the order the grants were acknowledged. */
const tokens = new Map<string, number[]>();
function noteToken(resource: string, res: { status: number; json: { fencingToken?: number } }) {
  if (res.status !== 200 || res.json.fencingToken === undefined) return;
  tokens.set(resource, [...(tokens.get(resource) ?? []), res.json.fencingToken]);
}

describe("faults", () => {
  it("every group has a leader and reports its peers", async () => {
    const groups = await clusterGroups();
    expect(groups.map((g) => g.group)).toEqual(["g0", "g1", "g2"]);
    for (const g of groups) {
      expect(g.leader).toMatch(/^p[123]$/);
      expect(g.term).toBeGreaterThan(0);
      expect(g.peers.map((p) => p.id)).toEqual(["p1", "p2", "p3"]);
      expect(g.peers.filter((p) => p.role === "leader")).toHaveLength(1);
    }
  });

  it("a crashed leader loses no lock and grants none twice; a new leader takes over", async () => {
    const resource = "crash-me";
    const a = await acquire(resource, { owner: "alice", ttlMs: 60_000 });
    expect(a.status).toBe(200);
    noteToken(resource, a);
    const old = await leaderFor(resource);
    expect((await post(`/v1/admin/peers/${old}/crash`)).status).toBe(200);

    // Writes keep flowing to other resources while the group elects a new leader.
    const stream = await Promise.all(
      Array.from({ length: 5 }, (_, i) => acquire(`${resource}-${i}`, { owner: "s" }).then((r) => r.status)),
    );
    expect(stream).toEqual([200, 200, 200, 200, 200]);

    const fresh = await leaderFor(resource);
    expect(fresh).not.toBe(old);
    // Alice still holds it: bob is refused, and the read shows her.
    const b = await acquire(resource, { owner: "bob" });
    expect(b.status).toBe(409);
    expect(b.json.holders.map((h: { owner: string }) => h.owner)).toEqual(["alice"]);
    expect((await get(`/v1/locks/${resource}`)).json.holders[0].owner).toBe("alice");
    expect((await release(resource, "alice")).status).toBe(200);
    const c = await acquire(resource, { owner: "carol" });
    expect(c.status).toBe(200);
    noteToken(resource, c);

    // The crashed peer recovers from its storage and catches up.
    expect((await post(`/v1/admin/peers/${old}/restart`)).status).toBe(200);
    const g = `g${groupOf(env, resource)}`;
    await waitFor(
      async () => {
        const info = (await clusterGroups()).find((x) => x.group === g);
        const peer = info?.peers.find((p) => p.id === old);
        return info && peer && peer.role !== "down" && peer.matchIndex >= info.commitIndex ? true : undefined;
      },
      10_000,
      "restarted peer to catch up",
    );
  });

  it("a leader partitioned into the minority steps down and answers 503; the majority serves; it catches up after heal", async () => {
    const resource = "split-brain";
    const first = await acquire(resource, { owner: "dave", ttlMs: 60_000 });
    expect(first.status).toBe(200);
    noteToken(resource, first);
    const old = await leaderFor(resource);
    const others = ["p1", "p2", "p3"].filter((p) => p !== old);
    expect((await post("/v1/admin/partition", { sides: [[old], others] })).status).toBe(200);

    // Through the minority peer: nothing can commit there.
    const minority = await acquire(`${resource}-2`, { owner: "eve" }, { "x-raft-peer": old });
    expect(minority.status).toBe(503);
    expect(minority.json.type).toBe("/problems/no-quorum");
    expect(minority.headers.get("retry-after")).toBeTruthy();

    // The majority elected a new leader and serves; dave's lock survived the change.
    const fresh = await leaderFor(resource);
    expect(others).toContain(fresh);
    expect((await acquire(resource, { owner: "eve" })).status).toBe(409);
    expect((await release(resource, "dave")).status).toBe(200);
    const e = await acquire(resource, { owner: "eve" });
    expect(e.status).toBe(200);
    noteToken(resource, e);

    // The old leader stepped down (check-quorum) rather than serving stale reads.
    const g = `g${groupOf(env, resource)}`;
    expect((await post("/v1/admin/heal")).status).toBe(200);
    await waitFor(
      async () => {
        const info = (await clusterGroups()).find((x) => x.group === g);
        const peer = info?.peers.find((p) => p.id === old);
        return info?.leader && peer && peer.role === "follower" && peer.matchIndex >= info.commitIndex
          ? true
          : undefined;
      },
      10_000,
      "old leader to catch up as a follower",
    );
    // After healing, any entry point serves again.
    const via = await get(`/v1/locks/${resource}`, { "x-raft-peer": old });
    expect(via.status).toBe(200);
    expect(via.json.holders[0].owner).toBe("eve");
  });

  it("fencing tokens increased across crashes, leader changes and partitions", () => {
    expect([...tokens.keys()]).toEqual(["crash-me", "split-brain"]);
    for (const list of tokens.values()) {
      expect(list).toHaveLength(2);
      expect(list[1]).toBeGreaterThan(list[0] as number);
    }
  });
});
