// Adding and removing peers: a learner first, a voter once caught up, then removed again.
import { beforeAll, describe, expect, it } from "vitest";
import { acquire, call, clusterGroups, post, ready, waitFor } from "./client";

beforeAll(ready, 20_000);

describe("membership", () => {
  it("POST /v1/cluster/peers adds p4 to every group as a learner, promoted to voter once caught up", async () => {
    for (let i = 0; i < 5; i++) expect((await acquire(`m-${i}`, { owner: "o" })).status).toBe(200);
    const res = await post("/v1/cluster/peers", { id: "p4" });
    expect(res.status).toBe(202);
    await waitFor(
      async () => {
        const groups = await clusterGroups();
        const ok = groups.every((g) => {
          const p4 = g.peers.find((p) => p.id === "p4");
          return p4 !== undefined && p4.role === "follower" && p4.matchIndex >= g.commitIndex;
        });
        return ok ? true : undefined;
      },
      10_000,
      "p4 to become a caught-up voter everywhere",
    );
    // Four voters: the cluster still serves.
    expect((await acquire("m-after-add", { owner: "o" })).status).toBe(200);
  });

  it("DELETE /v1/cluster/peers/p4 removes it from every group", async () => {
    expect((await call("DELETE", "/v1/cluster/peers/p4")).status).toBe(202);
    await waitFor(
      async () => ((await clusterGroups()).every((g) => !g.peers.some((p) => p.id === "p4")) ? true : undefined),
      10_000,
      "p4 to leave",
    );
    expect((await acquire("m-after-remove", { owner: "o" })).status).toBe(200);
  });

  it("bad peer ids are 400", async () => {
    expect((await post("/v1/cluster/peers", { id: "node-4" })).status).toBe(400);
    expect((await call("DELETE", "/v1/cluster/peers/x")).status).toBe(400);
  });
});
