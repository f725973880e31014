// Lock semantics end to end: Worker → leader Durable Object → Raft → lock table, inside workerd.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { groupOf } from "../../workers/groups";
import { acquire, get, post, ready, release, sleep, waitFor } from "./client";

beforeAll(ready, 20_000);

describe("locks", () => {
  it("acquire, read, renew and release an exclusive lock", async () => {
    const a = await acquire("orders", { owner: "alice", ttlMs: 5000 });
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ resource: "orders", owner: "alice", mode: "exclusive" });
    expect(a.json.fencingToken).toBeGreaterThan(0);
    expect(a.json.expiresAt).toBeGreaterThan(Date.now());

    const view = await get("/v1/locks/orders");
    expect(view.status).toBe(200);
    expect(view.json).toEqual({
      resource: "orders",
      mode: "exclusive",
      holders: [{ owner: "alice", mode: "exclusive", expiresAt: a.json.expiresAt }],
      waiters: [],
    });

    const renewed = await post("/v1/locks/orders/renew", { owner: "alice", ttlMs: 20_000 });
    expect(renewed.status).toBe(200);
    expect(renewed.json.expiresAt).toBeGreaterThan(a.json.expiresAt);

    expect((await release("orders", "alice")).json).toEqual({ released: true });
    expect((await get("/v1/locks/orders")).json).toEqual({ resource: "orders", mode: null, holders: [], waiters: [] });
  });

  it("a conflicting try-lock gets 409 lock-conflict with the holders; release by a stranger is not-holder", async () => {
    const a = await acquire("printer", { owner: "alice" });
    expect(a.status).toBe(200);
    const b = await acquire("printer", { owner: "bob" });
    expect(b.status).toBe(409);
    expect(b.headers.get("content-type")).toBe("application/problem+json");
    expect(b.json).toMatchObject({
      type: "/problems/lock-conflict",
      status: 409,
      holders: [{ owner: "alice", mode: "exclusive" }],
    });
    const r = await release("printer", "bob");
    expect(r.status).toBe(409);
    expect(r.json.type).toBe("/problems/not-holder");
    const renew = await post("/v1/locks/printer/renew", { owner: "bob" });
    expect(renew.json.type).toBe("/problems/not-holder");
  });

  it("re-acquire by the holder is idempotent: same token, TTL extended", async () => {
    const a = await acquire("idem", { owner: "alice", ttlMs: 1000 });
    await sleep(20);
    const b = await acquire("idem", { owner: "alice", ttlMs: 60_000 });
    expect(b.status).toBe(200);
    expect(b.json.fencingToken).toBe(a.json.fencingToken);
    expect(b.json.expiresAt).toBeGreaterThan(a.json.expiresAt);
  });

  it("shared holders coexist; the sole shared holder upgrades with a larger token", async () => {
    const a = await acquire("cfg", { owner: "alice", mode: "shared" });
    const b = await acquire("cfg", { owner: "bob", mode: "shared" });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await acquire("cfg", { owner: "carol" })).status).toBe(409);
    expect((await acquire("cfg", { owner: "alice", mode: "exclusive" })).status).toBe(409); // not sole
    await release("cfg", "bob");
    const up = await acquire("cfg", { owner: "alice", mode: "exclusive" });
    expect(up.status).toBe(200);
    expect(up.json.mode).toBe("exclusive");
    expect(up.json.fencingToken).toBeGreaterThan(a.json.fencingToken);
  });

  it("a lease expires: another owner gets the lock after the TTL, with a larger token", async () => {
    const a = await acquire("lease", { owner: "alice", ttlMs: 300 });
    expect(a.status).toBe(200);
    const b = await acquire("lease", { owner: "bob", waitMs: 5000 });
    expect(b.status).toBe(200);
    expect(b.json.fencingToken).toBeGreaterThan(a.json.fencingToken);
    expect(Date.now()).toBeGreaterThanOrEqual(a.json.expiresAt);
    // The expired holder can neither renew nor release.
    expect((await post("/v1/locks/lease/renew", { owner: "alice" })).json.type).toBe("/problems/not-holder");
  });

  it("waiters are served FIFO, and a waiting exclusive blocks later shared requests", async () => {
    expect((await acquire("fifo", { owner: "h", mode: "shared" })).status).toBe(200);
    const order: string[] = [];
    const served = (name: string) => (r: Awaited<ReturnType<typeof acquire>>) => {
      order.push(name);
      return r;
    };
    const x = acquire("fifo", { owner: "x", waitMs: 10_000 }).then(served("x"));
    await sleep(150);
    // Compatible with the shared holder, but queued behind the waiting exclusive.
    const s = acquire("fifo", { owner: "s", mode: "shared", waitMs: 10_000 }).then(served("s"));
    await sleep(150);
    const view = await get("/v1/locks/fifo");
    expect(view.json.waiters).toEqual([
      { owner: "x", mode: "exclusive" },
      { owner: "s", mode: "shared" },
    ]);
    await release("fifo", "h");
    const xr = await x;
    expect(xr.status).toBe(200);
    await release("fifo", "x");
    const sr = await s;
    expect(sr.status).toBe(200);
    expect(order).toEqual(["x", "s"]);
    expect(sr.json.fencingToken).toBeGreaterThan(xr.json.fencingToken);
  });

  it("a wait that runs out answers 409 lock-conflict", async () => {
    await acquire("busy", { owner: "alice" });
    const t0 = Date.now();
    const b = await acquire("busy", { owner: "bob", waitMs: 400 });
    expect(b.status).toBe(409);
    expect(b.json.type).toBe("/problems/lock-conflict");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    // It says it waited (and a try-lock's conflict says it did not), unlike a plain conflict.
    expect(b.json.waitedMs).toBeGreaterThanOrEqual(400);
    expect(b.json.waitedMs).toBeLessThanOrEqual(Date.now() - t0);
    expect((await acquire("busy", { owner: "carol" })).json.waitedMs).toBe(0);
  });

  it("a wait that would close a cycle in one group is refused with 409 deadlock", async () => {
    // Two resources on the same group.
    const names = Array.from({ length: 50 }, (_, i) => `dl-${i}`);
    const g = groupOf(env, names[0] as string);
    const [r1, r2] = names.filter((n) => groupOf(env, n) === g) as [string, string];
    await acquire(r1, { owner: "A" });
    await acquire(r2, { owner: "B" });
    const aWaits = acquire(r2, { owner: "A", waitMs: 10_000 });
    await sleep(200);
    const b = await acquire(r1, { owner: "B", waitMs: 10_000 });
    expect(b.status).toBe(409);
    expect(b.json).toMatchObject({ type: "/problems/deadlock", cycle: ["B", "A"] });
    await release(r2, "B");
    expect((await aWaits).status).toBe(200);
  });

  // How fast the detector breaks it (~0.3-0.5 s: it scans every 250 ms) is a measurement, not an
  // assertion here; the waits are long (15 s), so a 409 at all means the detector broke the cycle.
  it("a cycle across two groups is broken by the detector: the newest wait gets 409 deadlock", async () => {
    const names = Array.from({ length: 50 }, (_, i) => `xg-${i}`);
    const r1 = names[0] as string;
    const r2 = names.find((n) => groupOf(env, n) !== groupOf(env, r1)) as string;
    expect(groupOf(env, r1)).not.toBe(groupOf(env, r2));
    await acquire(r1, { owner: "C" });
    await acquire(r2, { owner: "D" });
    const cWaits = acquire(r2, { owner: "C", waitMs: 15_000 });
    await sleep(200);
    const d = await acquire(r1, { owner: "D", waitMs: 15_000 });
    // D's wait closed the cycle: it is the victim.
    expect(d.status).toBe(409);
    expect(d.json.type).toBe("/problems/deadlock");
    expect([...d.json.cycle].sort()).toEqual(["C", "D"]);
    await release(r2, "D");
    expect((await cWaits).status).toBe(200);
  });

  it("resource names may contain slashes (URL-encoded)", async () => {
    const a = await acquire("tenant/a:b@c", { owner: "o.1" });
    expect(a.status).toBe(200);
    expect(a.json.resource).toBe("tenant/a:b@c");
  });

  it("fencing tokens strictly increase per resource across grants", async () => {
    let last = 0;
    for (let i = 0; i < 5; i++) {
      const a = await acquire("fence", { owner: `o${i}` });
      expect(a.json.fencingToken).toBeGreaterThan(last);
      last = a.json.fencingToken;
      await release("fence", `o${i}`);
    }
  });
});

describe("bad input changes nothing and is 400", () => {
  it.each([
    ["not JSON", "{nope"],
    ["missing owner", {}],
    ["owner of the wrong type", { owner: 42 }],
    ["bad mode", { owner: "a", mode: "both" }],
    ["ttl too small", { owner: "a", ttlMs: 99 }],
    ["ttl too large", { owner: "a", ttlMs: 3_600_001 }],
    ["wait too large", { owner: "a", waitMs: 60_001 }],
    ["fractional ttl", { owner: "a", ttlMs: 1000.5 }],
    ["owner too long", { owner: "x".repeat(201) }],
    ["owner with a space", { owner: "a b" }],
  ])("%s", async (_, body) => {
    const res = await acquire("valid-name", body as Record<string, unknown>);
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.json).toMatchObject({ type: "/problems/validation", status: 400 });
  });

  it("a bad resource name is 400", async () => {
    expect((await acquire("bad name!", { owner: "a" })).status).toBe(400);
    expect((await acquire("x".repeat(201), { owner: "a" })).status).toBe(400);
  });

  it("nothing was taken by the bad requests", async () => {
    expect((await get("/v1/locks/valid-name")).json.holders).toEqual([]);
  });
});

describe("a client that gives up waiting", () => {
  it("withdraws its wait with a release: never granted, and its waiting request ends in 409", async () => {
    await acquire("withdraw-r", { owner: "holder" });
    const t0 = Date.now();
    const waiting = acquire("withdraw-r", { owner: "quitter", waitMs: 20_000 });
    await waitFor(async () => {
      const view = await get("/v1/locks/withdraw-r");
      return view.json.waiters.some((w: { owner: string }) => w.owner === "quitter") ? true : undefined;
    });
    const withdrawn = await release("withdraw-r", "quitter");
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.json).toEqual({ released: false, withdrawn: true });
    const answer = await waiting;
    expect(answer.status).toBe(409);
    expect(answer.json.type).toBe("/problems/lock-conflict");
    expect(Date.now() - t0).toBeLessThan(20_000); // it ended at the withdrawal, not at waitMs
    // Once the holder leaves, nobody holds it: the withdrawn owner was not granted.
    await release("withdraw-r", "holder");
    const view = await get("/v1/locks/withdraw-r");
    expect(view.json.holders).toEqual([]);
    expect(view.json.waiters).toEqual([]);
  });
});
