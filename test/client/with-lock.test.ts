import { describe, expect, it } from "vitest";
import { LeaseLostError, LockConflictError, SyncClient } from "../../client/index.js";
import { fakeFetch, hang, json, problem, type Recorded, sleep, until } from "./fake-fetch.js";

const fast = { attempts: 3, baseMs: 1, maxMs: 4 };

/** A one-resource lock service whose answers a test can change as it goes. */
function lockService(timeoutMs?: number) {
  const state = {
    holder: undefined as string | undefined,
    token: 0,
    renew: "ok" as "ok" | "not-holder" | "down",
    acquire: "grant" as "grant" | "hang" | "conflict",
    release: "ok" as "ok" | "hang",
  };
  const f = fakeFetch((req: Recorded) => {
    const op = req.path.split("/").pop();
    const owner = (req.body as { owner: string }).owner;
    if (op === "acquire") {
      if (state.acquire === "hang") return hang(req.signal);
      if (state.acquire === "conflict" || (state.holder !== undefined && state.holder !== owner))
        return problem("lock-conflict", 409, {
          holders: [{ owner: state.holder ?? "x", mode: "exclusive", expiresAt: 1 }],
          waitedMs: 0,
        });
      state.holder = owner;
      state.token++;
      return json({ resource: "r", owner, mode: "exclusive", fencingToken: state.token, expiresAt: Date.now() + 1000 });
    }
    if (op === "renew") {
      if (state.renew === "down") throw new TypeError("connection refused");
      if (state.renew === "not-holder" || state.holder !== owner) return problem("not-holder", 409);
      return json({ expiresAt: Date.now() + 1000 });
    }
    if (op === "release") {
      if (state.release === "hang") return hang(req.signal);
      if (state.holder !== owner) return problem("not-holder", 409);
      state.holder = undefined;
      return json({ released: true });
    }
    throw new Error(`unexpected ${req.path}`);
  });
  const ops = (op: string) => f.calls.filter((c) => c.path.endsWith(`/${op}`));
  const client = new SyncClient({
    url: "http://svc",
    fetch: f.fetch,
    retry: fast,
    ...(timeoutMs ? { timeoutMs } : {}),
  });
  return { state, calls: f.calls, ops, client };
}

describe("withLock", () => {
  it("hands fn the fencing token, returns its result and releases", async () => {
    const svc = lockService();
    const result = await svc.client.withLock("r", async (lease) => {
      expect(svc.state.holder).toBe(lease.owner);
      expect(lease.signal.aborted).toBe(false);
      return lease.fencingToken * 10;
    });
    expect(result).toBe(10);
    expect(svc.state.holder).toBeUndefined();
    expect(svc.ops("release")).toHaveLength(1);
    // Default owner: a fresh random one per call.
    await svc.client.withLock("r", async () => undefined);
    const owners = svc.ops("acquire").map((c) => (c.body as { owner: string }).owner);
    expect(owners[0]).not.toBe(owners[1]);
  });

  it("a release that never answers does not hang withLock: each attempt times out, then the error is thrown", async () => {
    const svc = lockService(30);
    svc.state.release = "hang";
    const err = await svc.client.withLock("r", async () => "done").catch((e: unknown) => e);
    expect(String(err)).toContain("no answer within 30 ms");
    expect(svc.ops("release")).toHaveLength(fast.attempts);
  });

  it("releases when fn throws, and throws fn's error", async () => {
    const svc = lockService();
    const err = await svc.client
      .withLock("r", async () => {
        throw new Error("fn failed");
      })
      .catch((e) => e);
    expect(err.message).toBe("fn failed");
    expect(svc.state.holder).toBeUndefined();
  });

  it("renews every third of the TTL while fn runs, with the TTL it asked for", async () => {
    const svc = lockService();
    await svc.client.withLock("r", () => sleep(700), { ttlMs: 300 });
    const renews = svc.ops("renew");
    expect(renews.length).toBeGreaterThanOrEqual(3);
    expect(renews.every((c) => (c.body as { ttlMs: number }).ttlMs === 300)).toBe(true);
    // No renewal after the release.
    const releasedAt = svc.ops("release")[0]?.at ?? 0;
    await sleep(250);
    expect(svc.ops("renew").every((c) => c.at <= releasedAt)).toBe(true);
  });

  it("a renewal answered not-holder aborts fn's signal with LeaseLostError; the release's error is swallowed", async () => {
    const svc = lockService();
    let reason: unknown;
    const result = await svc.client.withLock(
      "r",
      async (lease) => {
        svc.state.renew = "not-holder";
        svc.state.holder = "someone-else"; // the lease expired and another owner got it
        await new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
        reason = lease.signal.reason;
        return "stopped";
      },
      { ttlMs: 300 },
    );
    expect(result).toBe("stopped");
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(svc.ops("release")).toHaveLength(1); // still sent, its not-holder swallowed
    expect(svc.state.holder).toBe("someone-else");
  });

  it("renewals that keep failing abort the signal before the lease can have expired", async () => {
    const svc = lockService();
    const ttlMs = 600;
    let lostAt = 0;
    await svc.client.withLock(
      "r",
      async (lease) => {
        svc.state.renew = "down";
        await new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
        lostAt = Date.now();
      },
      { ttlMs },
    );
    // The lease was last confirmed by the acquire (sent at its `at`); it lasts at least ttlMs after that.
    const confirmed = svc.ops("acquire")[0]?.at ?? 0;
    expect(svc.ops("renew").length).toBeGreaterThan(1); // it kept trying
    expect(lostAt - confirmed).toBeLessThan(ttlMs);
  });

  it("the caller's abort while the acquire waits aborts the request and sends release for the owner", async () => {
    const svc = lockService();
    svc.state.acquire = "hang";
    const ac = new AbortController();
    let ran = false;
    const call = svc.client
      .withLock(
        "r",
        async () => {
          ran = true;
        },
        { owner: "me", waitMs: 60_000, signal: ac.signal },
      )
      .catch((e) => e);
    await until(() => svc.ops("acquire").length === 1, 2000, "the acquire");
    ac.abort();
    const err = await call;
    expect(err.name).toBe("AbortError");
    expect(ran).toBe(false);
    expect(svc.ops("acquire")[0]?.signal?.aborted).toBe(true);
    expect(svc.ops("release").map((c) => c.body)).toEqual([{ owner: "me" }]);
  });

  it("a definite refusal sends no release and throws the typed error", async () => {
    const svc = lockService();
    svc.state.acquire = "conflict";
    const err = await svc.client.withLock("r", async () => 1, { owner: "me" }).catch((e) => e);
    expect(err).toBeInstanceOf(LockConflictError);
    expect(err.holders).toHaveLength(1);
    expect(svc.ops("release")).toHaveLength(0);
  });

  it("an acquire whose outcome is unknown (no answer) is followed by a release", async () => {
    const f = fakeFetch((req) => {
      if (req.path.endsWith("/acquire")) throw new TypeError("connection reset");
      return json({ released: false, withdrawn: true });
    });
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast });
    const err = await client.withLock("r", async () => 1, { owner: "me" }).catch((e) => e);
    expect(err.name).toBe("NetworkError");
    expect(f.calls.filter((c) => c.path.endsWith("/release")).map((c) => c.body)).toEqual([{ owner: "me" }]);
  });

  it("a grant after a wait longer than a third of the TTL is confirmed by a renewal before fn runs", async () => {
    const f = fakeFetch(async (req) => {
      if (req.path.endsWith("/acquire")) await sleep(200);
      if (req.path.endsWith("/renew")) return json({ expiresAt: 42 });
      if (req.path.endsWith("/release")) return json({ released: true });
      return json({ resource: "r", owner: "me", mode: "exclusive", fencingToken: 3, expiresAt: 1 });
    });
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch });
    const seen = await client.withLock("r", async (lease) => ({ ...lease, signal: lease.signal.aborted }), {
      owner: "me",
      ttlMs: 300,
      waitMs: 5000,
    });
    expect(seen).toMatchObject({ fencingToken: 3, expiresAt: 42, signal: false });
    expect(f.calls.map((c) => c.path.split("/").pop()).slice(0, 2)).toEqual(["acquire", "renew"]);
  });
});
