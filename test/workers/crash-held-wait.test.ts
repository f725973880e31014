// A crash ends what the crashed peer was doing for its callers, as a real crash breaks their
// calls: a lock wait held open on a leader that crashes is answered by the Worker's retry at the
// new leader (same request id), not left hanging until its waitMs runs out.
import { env } from "cloudflare:workers";
import { beforeAll, expect, it } from "vitest";
import { groupOf } from "../../workers/groups";
import { acquire, get, leaderOf, post, ready, release, settled, waitFor } from "./client";

beforeAll(ready, 20_000);

it("a wait held on a leader that crashes is granted by the new leader and answered at once", async () => {
  const resource = "crash-held-r";
  const group = `g${groupOf(env, resource)}`;
  expect((await acquire(resource, { owner: "h", ttlMs: 30_000 })).status).toBe(200);
  const started = Date.now();
  const waiting = acquire(resource, { owner: "w", ttlMs: 30_000, waitMs: 20_000 });
  await waitFor(
    async () => ((await get(`/v1/locks/${resource}`)).json.waiters.length === 1 ? true : undefined),
    5_000,
    "w to wait",
  );
  const leader = await leaderOf(group);
  expect((await post(`/v1/admin/peers/${leader}/crash`)).status).toBe(200);
  await new Promise((r) => setTimeout(r, 1000));
  expect((await post(`/v1/admin/peers/${leader}/restart`)).status).toBe(200);
  expect(await settled(10_000)).toBe(true);
  expect((await release(resource, "h")).status).toBe(200);

  const answer = await waiting;
  // Granted, well before its 20 s wait could have run out (the grant itself comes within seconds).
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  expect(answer.json).toMatchObject({ resource, owner: "w" });
  expect(Date.now() - started).toBeLessThan(15_000);
  expect((await get(`/v1/locks/${resource}`)).json.holders.map((x: { owner: string }) => x.owner)).toEqual(["w"]);
  await release(resource, "w");
}, 40_000);
