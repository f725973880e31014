import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../client/backoff.js";
import {
  DeadlockError,
  errorFromProblem,
  LockConflictError,
  NetworkError,
  NoQuorumError,
  NotHolderError,
  RequestTimeoutError,
  SyncClient,
  SyncError,
  ValidationError,
} from "../../client/index.js";
import { fakeFetch, hang, json, problem, sleep } from "./fake-fetch.js";

const grant = { resource: "r", owner: "o", mode: "exclusive", fencingToken: 7, expiresAt: 1 };
const fast = { attempts: 5, baseMs: 1, maxMs: 4 };

describe("retries", () => {
  it("a write that fails N times then succeeds is sent with one Idempotency-Key for every attempt", async () => {
    let failures = 3;
    const f = fakeFetch(() => {
      if (failures-- > 0) throw new TypeError("fetch failed");
      return json(grant);
    });
    const client = new SyncClient({ url: "http://svc/", fetch: f.fetch, retry: fast });
    expect(await client.locks.acquire("r", { owner: "o" })).toEqual(grant);
    expect(f.calls).toHaveLength(4);
    const keys = f.calls.map((c) => c.headers.get("idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(keys).size).toBe(1);
    // Every attempt sends the same request.
    expect(new Set(f.calls.map((c) => JSON.stringify([c.method, c.path, c.body]))).size).toBe(1);
  });

  it("two calls get two keys; reads get none", async () => {
    const f = fakeFetch((req) => (req.method === "GET" ? json({ locks: [], truncated: false }) : json(grant)));
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch });
    await client.locks.acquire("r", { owner: "o" });
    await client.locks.acquire("r", { owner: "o" });
    await client.locks.list({ prefix: "a" });
    const [a, b, c] = f.calls.map((x) => x.headers.get("idempotency-key"));
    expect(a).not.toBe(b);
    expect(c).toBeNull();
    expect(f.calls[2]?.query.get("prefix")).toBe("a");
  });

  it("idempotencyKeys: false sends no key, on the first attempt or its retries", async () => {
    let failures = 1;
    const f = fakeFetch(() => {
      if (failures-- > 0) throw new TypeError("fetch failed");
      return json(grant);
    });
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast, idempotencyKeys: false });
    expect(await client.locks.acquire("r", { owner: "o" })).toEqual(grant);
    expect(f.calls.map((c) => c.headers.get("idempotency-key"))).toEqual([null, null]);
  });

  it("an attempt with no answer within timeoutMs is abandoned and retried under the same key", async () => {
    const f = fakeFetch((req) => (f.calls.length === 1 ? hang(req.signal) : json({ released: true })));
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast, timeoutMs: 50 });
    const started = Date.now();
    expect(await client.locks.release("r", { owner: "o" })).toEqual({ released: true });
    expect(f.calls).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(f.calls[0]?.signal?.aborted).toBe(true);
    expect(new Set(f.calls.map((c) => c.headers.get("idempotency-key"))).size).toBe(1);
  });

  it("a call whose every attempt hangs ends with a NetworkError once its attempts are spent", async () => {
    const f = fakeFetch((req) => hang(req.signal));
    const client = new SyncClient({
      url: "http://svc",
      fetch: f.fetch,
      retry: { ...fast, attempts: 3 },
      timeoutMs: 20,
    });
    const err = await client.locks.renew("r", { owner: "o" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(String((err as NetworkError).detail)).toContain("no answer within 20 ms");
    expect(f.calls).toHaveLength(3);
  });

  it("a call the service may hold (waitMs) gets that long on top of timeoutMs", async () => {
    const f = fakeFetch(async (req) => {
      await sleep(80); // the service holds the wait for 80 ms, then grants
      return req.signal?.aborted ? hang(req.signal) : json(grant);
    });
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast, timeoutMs: 40 });
    expect(await client.locks.acquire("r", { owner: "o", waitMs: 100 })).toEqual(grant);
    expect(f.calls).toHaveLength(1);
  });

  it("503 no-quorum waits at least Retry-After before the next attempt", async () => {
    const f = fakeFetch(() =>
      f.calls.length === 1 ? problem("no-quorum", 503, {}, { "retry-after": "1" }) : json({ expiresAt: 5 }),
    );
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast });
    expect(await client.locks.renew("r", { owner: "o" })).toEqual({ expiresAt: 5 });
    expect(f.calls).toHaveLength(2);
    expect((f.calls[1]?.at ?? 0) - (f.calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(1000);
  });

  it("gives up after `attempts` with the last error, typed", async () => {
    const f = fakeFetch(() => problem("no-quorum", 503, {}, { "retry-after": "0" }));
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: { ...fast, attempts: 3 } });
    const err = await client.queues.ack("q", ["0:1:1"]).catch((e) => e);
    expect(err).toBeInstanceOf(NoQuorumError);
    expect(err.retryAfterMs).toBe(0);
    expect(f.calls).toHaveLength(3);
  });

  it("retries 504 timeouts and network errors, not 400, 409 or 500", async () => {
    for (const [answer, calls, Class] of [
      [() => problem("timeout", 504), 4, RequestTimeoutError],
      [() => Promise.reject(new TypeError("socket hang up")), 4, NetworkError],
      [() => problem("validation", 400), 1, ValidationError],
      [() => problem("not-holder", 409), 1, NotHolderError],
      [() => problem("internal", 500), 1, SyncError],
    ] as const) {
      const f = fakeFetch(answer as () => Response);
      const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: { ...fast, attempts: 4 } });
      const err = await client.locks.release("r", { owner: "o" }).catch((e) => e);
      expect(err).toBeInstanceOf(Class);
      expect(f.calls).toHaveLength(calls);
    }
  });

  it("the caller's abort ends the call during a backoff, without another attempt", async () => {
    const f = fakeFetch(() => problem("no-quorum", 503, {}, { "retry-after": "30" }));
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch });
    const ac = new AbortController();
    const call = client.locks.acquire("r", { owner: "o", signal: ac.signal }).catch((e) => e);
    await sleep(20);
    const t = Date.now();
    ac.abort();
    const err = await call;
    expect(err.name).toBe("AbortError");
    expect(Date.now() - t).toBeLessThan(1000);
    expect(f.calls).toHaveLength(1);
  });

  it("the caller's abort of a request in flight is an abort, not a retried network error", async () => {
    const f = fakeFetch((req) => hang(req.signal));
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast });
    const ac = new AbortController();
    const call = client.queues.receive("q", { waitMs: 20000, signal: ac.signal }).catch((e) => e);
    await sleep(10);
    ac.abort(new Error("stop"));
    expect((await call).message).toBe("stop");
    expect(f.calls).toHaveLength(1);
    expect(f.calls[0]?.signal?.aborted).toBe(true);
  });
});

describe("requests", () => {
  it("sends the token, JSON body, encoded names and the node query", async () => {
    const f = fakeFetch((req) =>
      req.path.includes("/v1/cache/") && req.method === "GET"
        ? problem("not-found", 404)
        : json({ key: "k", node: "n2", state: "M" }),
    );
    const client = new SyncClient({ url: "http://svc/base/", token: "s3cret", fetch: f.fetch, userAgent: "t/1" });
    expect(await client.cache.get("a/b:c", { node: "n2" })).toBeUndefined();
    await client.cache.put("a/b:c", { x: 1 }, { node: "n2" });
    const [get, put] = f.calls;
    expect(get?.path).toBe("/base/v1/cache/a%2Fb%3Ac");
    expect(get?.query.get("node")).toBe("n2");
    expect(get?.headers.get("authorization")).toBe("Bearer s3cret");
    expect(get?.headers.get("user-agent")).toBe("t/1");
    expect(put?.method).toBe("PUT");
    expect(put?.body).toEqual({ value: { x: 1 } });
    expect(put?.headers.get("content-type")).toBe("application/json");
  });

  it("health and ready are booleans; a failure is false, not thrown", async () => {
    const f = fakeFetch((req) => {
      if (req.path === "/healthz") throw new TypeError("connection refused");
      return problem("no-quorum", 503, {}, { "retry-after": "1" });
    });
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch });
    expect(await client.health()).toBe(false);
    expect(await client.ready()).toBe(false);
    expect(f.calls).toHaveLength(2); // probes are not retried
    const ok = new SyncClient({ url: "http://svc", fetch: fakeFetch(() => json({ ok: true })).fetch });
    expect(await ok.health()).toBe(true);
  });
});

describe("errors", () => {
  it("carries the problem's members", () => {
    const holders = [{ owner: "a", mode: "shared", expiresAt: 9 }];
    const conflict = errorFromProblem(409, {
      type: "/problems/lock-conflict",
      title: "Lock conflict",
      status: 409,
      detail: "r is held by others",
      holders,
      waitedMs: 120,
    });
    expect(conflict).toBeInstanceOf(LockConflictError);
    expect(conflict).toMatchObject({ holders, waitedMs: 120, status: 409, type: "lock-conflict" });
    expect(conflict.message).toContain("r is held by others");
    const deadlock = errorFromProblem(409, { type: "https://x/problems/deadlock", cycle: ["a", "b"] });
    expect(deadlock).toBeInstanceOf(DeadlockError);
    expect((deadlock as DeadlockError).cycle).toEqual(["a", "b"]);
  });

  it("falls back on the status when the body is not a problem, and keeps unknown types", () => {
    const e = errorFromProblem(503, "<html>bad gateway</html>", 2000);
    expect(e).toBeInstanceOf(NoQuorumError);
    expect((e as NoQuorumError).retryAfterMs).toBe(2000);
    const internal = errorFromProblem(500, { type: "/problems/internal", detail: "boom" });
    expect(internal.constructor).toBe(SyncError);
    expect(internal.type).toBe("internal");
    expect(errorFromProblem(418, undefined).type).toBe("http-418");
  });
});

describe("backoff", () => {
  it("grows exponentially with jitter, capped, and never below Retry-After", () => {
    const lo = () => 0;
    const hi = () => 1;
    expect(backoffDelay(0, { baseMs: 100 }, 0, lo)).toBe(50);
    expect(backoffDelay(0, { baseMs: 100 }, 0, hi)).toBe(100);
    expect(backoffDelay(3, { baseMs: 100 }, 0, lo)).toBe(400);
    expect(backoffDelay(30, { baseMs: 100, maxMs: 1000 }, 0, hi)).toBe(1000);
    expect(backoffDelay(0, { baseMs: 100 }, 1000, lo)).toBeGreaterThanOrEqual(1000);
    // Below the cap, the least delay of a retry is the most of the one before.
    for (let i = 0; i < 5; i++)
      expect(backoffDelay(i + 1, {}, 0, lo)).toBeGreaterThanOrEqual(backoffDelay(i, {}, 0, hi));
  });

  it("reads Retry-After as seconds or a date", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:00:05 GMT", now)).toBe(5000);
  });
});
