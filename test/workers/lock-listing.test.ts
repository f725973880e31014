// GET /v1/locks?prefix=: held and waited-for locks of every group, end to end.
import { beforeAll, describe, expect, it } from "vitest";
import { acquire, get, ready, release, sleep } from "./client";

beforeAll(ready, 20_000);

describe("GET /v1/locks", () => {
  it("lists held and waiting locks of every group by prefix, sorted by resource", async () => {
    const names = ["ll/c", "ll/a", "ll/b/1", "ll/b/2", "ll/d"];
    for (const r of names) expect((await acquire(r, { owner: "A", ttlMs: 30_000 })).status).toBe(200);
    expect((await acquire("ll/a", { owner: "B", mode: "exclusive", ttlMs: 30_000 })).status).toBe(409);
    await release("ll/d", "A");
    // B waits for ll/c in the background.
    const waiting = acquire("ll/c", { owner: "B", ttlMs: 30_000, waitMs: 5000 });
    await sleep(300);

    const res = await get("/v1/locks?prefix=ll/");
    expect(res.status).toBe(200);
    expect(res.json.truncated).toBe(false);
    expect(res.json.locks.map((l: { resource: string }) => l.resource)).toEqual(["ll/a", "ll/b/1", "ll/b/2", "ll/c"]);
    const c = res.json.locks[3];
    expect(c).toEqual({
      resource: "ll/c",
      mode: "exclusive",
      holders: [{ owner: "A", mode: "exclusive", expiresAt: expect.any(Number) }],
      waiters: [{ owner: "B", mode: "exclusive" }],
    });
    expect(Math.abs(c.holders[0].expiresAt - (Date.now() + 30_000))).toBeLessThan(10_000); // wall time
    expect((await get("/v1/locks?prefix=ll/b")).json.locks.map((l: { resource: string }) => l.resource)).toEqual([
      "ll/b/1",
      "ll/b/2",
    ]);
    // A stale read (each leader's own state, no quorum round) shows the same once nothing is in flight.
    expect((await get("/v1/locks?prefix=ll/&stale=true")).json).toEqual(res.json);
    expect((await get("/v1/locks?stale=yes")).json.type).toBe("/problems/validation");
    const all = (await get("/v1/locks")).json;
    expect(all.locks.map((l: { resource: string }) => l.resource)).toEqual(
      expect.arrayContaining(["ll/a", "ll/b/1", "ll/b/2", "ll/c"]),
    );

    // Released, the waiter holds it and waits no more.
    await release("ll/c", "A");
    expect((await waiting).status).toBe(200);
    const after = (await get("/v1/locks?prefix=ll/c")).json.locks;
    expect(after).toEqual([
      { resource: "ll/c", mode: "exclusive", holders: [expect.objectContaining({ owner: "B" })], waiters: [] },
    ]);
    for (const r of ["ll/a", "ll/b/1", "ll/b/2"]) await release(r, "A");
    await release("ll/c", "B");
    expect((await get("/v1/locks?prefix=ll/")).json).toEqual({ locks: [], truncated: false });
  });

  it("lists at most 1000 locks and says it truncated", async () => {
    const names = Array.from({ length: 1005 }, (_, i) => `lt/${String(i).padStart(4, "0")}`);
    for (let i = 0; i < names.length; i += 100) {
      const batch = names.slice(i, i + 100).map((r) => acquire(r, { owner: "T", ttlMs: 60_000 }));
      for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
    }
    const res = await get("/v1/locks?prefix=lt/");
    expect(res.status).toBe(200);
    expect(res.json.truncated).toBe(true);
    expect(res.json.locks.map((l: { resource: string }) => l.resource)).toEqual(names.slice(0, 1000));
  }, 60_000);

  it("a bad prefix or an unknown parameter is 400 validation", async () => {
    for (const q of ["prefix=", "prefix=bad%20one", `prefix=${"x".repeat(201)}`, "prefx=ll"]) {
      const r = await get(`/v1/locks?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.headers.get("content-type")).toBe("application/problem+json");
      expect(r.json.type).toMatch(/validation$/);
    }
  });
});
