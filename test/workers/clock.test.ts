// The `clock` fault route and time under skew (API.md, "Time"): a new leader whose clock is
// ahead of or behind the old one's never ends a lease early, and lengthens it by at most the
// offset plus an election timeout.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { groupOf } from "../../workers/groups";
import { acquire, leaderOf, PEERS, post, ready, sleep } from "./client";

beforeAll(ready, 20_000);

async function leaderFor(resource: string): Promise<string> {
  const g = `g${groupOf(env, resource)}`;
  return leaderOf(g);
}

describe("clock fault route", () => {
  it("refuses offsets outside ±1 h, non-integers and unknown fields", async () => {
    expect((await post("/v1/admin/peers/p1/clock", { offsetMs: 3_600_001 })).status).toBe(400);
    expect((await post("/v1/admin/peers/p1/clock", { offsetMs: 1.5 })).status).toBe(400);
    expect((await post("/v1/admin/peers/p1/clock", { offsetMs: 0, extra: 1 })).status).toBe(400);
    expect((await post("/v1/admin/peers/p9x/clock", { offsetMs: 0 })).status).toBe(404);
    const ok = await post("/v1/admin/peers/p1/clock", { offsetMs: 0 });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ peer: "p1", offsetMs: 0 });
  });

  for (const offsetMs of [6000, -6000]) {
    it(`a lease outlives a leader change to a peer ${offsetMs > 0 ? "ahead" : "behind"} by 6 s`, async () => {
      const resource = `skew-${offsetMs > 0 ? "ahead" : "behind"}`;
      const old = await leaderFor(resource);
      for (const p of PEERS) if (p !== old) await post(`/v1/admin/peers/${p}/clock`, { offsetMs });
      const start = Date.now();
      const a = await acquire(resource, { owner: "alice", ttlMs: 3000 });
      expect(a.status).toBe(200);
      expect((await post(`/v1/admin/peers/${old}/crash`)).status).toBe(200);
      let granted: number | undefined;
      while (granted === undefined && Date.now() < start + 20_000) {
        const b = await acquire(resource, { owner: "bob", ttlMs: 1000 });
        if (b.status === 200) granted = Date.now();
        else await sleep(100);
      }
      await post(`/v1/admin/peers/${old}/restart`);
      for (const p of PEERS) await post(`/v1/admin/peers/${p}/clock`, { offsetMs: 0 });
      expect(granted).toBeDefined();
      // Never early in real time, whatever the offset...
      expect(granted as number).toBeGreaterThanOrEqual(start + 3000);
      // ...and lengthened by at most the offset plus an election timeout (and this test's polling).
      expect(granted as number).toBeLessThanOrEqual(start + 3000 + Math.abs(offsetMs) + 2000);
    }, 30_000);
  }
});
