// The client library (client/) against the real Worker in workerd: locks, withLock, consume, errors.
import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { DeadlockError, LeaseLostError, LockConflictError, SyncClient } from "../../client/index.js";
import { ready, sleep, waitFor } from "./client";

const client = new SyncClient({
  url: "http://x",
  fetch: (input, init) => SELF.fetch(input as string, init as RequestInit),
  retry: { attempts: 8, baseMs: 50, maxMs: 1000 },
});

beforeAll(ready, 20_000);

describe("SyncClient against the Worker", () => {
  it("withLock: concurrent callers hold the lock one at a time, fencing tokens increasing", async () => {
    let inside = 0;
    let overlaps = 0;
    const tokens: number[] = [];
    await Promise.all(
      Array.from({ length: 5 }, () =>
        client.withLock(
          "cl/mutex",
          async (lease) => {
            if (inside++ > 0) overlaps++;
            tokens.push(lease.fencingToken);
            await sleep(40);
            inside--;
          },
          { waitMs: 30_000, ttlMs: 5000 },
        ),
      ),
    );
    expect(overlaps).toBe(0);
    expect(tokens).toHaveLength(5);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    expect((await client.locks.get("cl/mutex")).holders).toEqual([]);
  }, 60_000);

  it("LockConflictError names the holders; DeadlockError the cycle", async () => {
    await client.locks.acquire("cl/d1", { owner: "A", ttlMs: 30_000 });
    const conflict = await client.locks.acquire("cl/d1", { owner: "B" }).catch((e) => e);
    expect(conflict).toBeInstanceOf(LockConflictError);
    expect(conflict.holders.map((h: { owner: string }) => h.owner)).toEqual(["A"]);
    expect(conflict.waitedMs).toBe(0);

    await client.locks.acquire("cl/d2", { owner: "B", ttlMs: 30_000 });
    const bWaits = client.locks.acquire("cl/d1", { owner: "B", waitMs: 20_000 }).catch((e) => e);
    await waitFor(async () => ((await client.locks.get("cl/d1")).waiters.length > 0 ? true : undefined));
    const deadlock = await client.locks.acquire("cl/d2", { owner: "A", waitMs: 20_000 }).catch((e) => e);
    expect(deadlock).toBeInstanceOf(DeadlockError);
    expect([...deadlock.cycle].sort()).toEqual(["A", "B"]);
    // The victim holds nothing new: once A lets go, B's wait is granted.
    expect(await client.locks.release("cl/d1", { owner: "A" })).toEqual({ released: true });
    expect((await bWaits).owner).toBe("B");
    await client.locks.release("cl/d1", { owner: "B" });
    await client.locks.release("cl/d2", { owner: "B" });
  }, 60_000);

  it("withLock: the caller's abort during the wait withdraws it on the service", async () => {
    await client.locks.acquire("cl/abort", { owner: "holder", ttlMs: 30_000 });
    const ac = new AbortController();
    let ran = false;
    const call = client
      .withLock(
        "cl/abort",
        async () => {
          ran = true;
        },
        { owner: "impatient", waitMs: 30_000, signal: ac.signal },
      )
      .catch((e) => e);
    await waitFor(async () => ((await client.locks.get("cl/abort")).waiters.length > 0 ? true : undefined));
    ac.abort();
    expect((await call).name).toBe("AbortError");
    const view = await waitFor(async () => {
      const v = await client.locks.get("cl/abort");
      return v.waiters.length === 0 ? v : undefined;
    });
    expect(view.holders.map((h) => h.owner)).toEqual(["holder"]);
    // Released by the holder, the lock is free: the withdrawn waiter was never granted.
    await client.locks.release("cl/abort", { owner: "holder" });
    expect((await client.locks.get("cl/abort")).holders).toEqual([]);
    expect(ran).toBe(false);
  }, 60_000);

  it("withLock: a lease released behind fn's back aborts fn's signal", async () => {
    const reason = await client.withLock(
      "cl/lost",
      async (lease) => {
        await client.locks.release("cl/lost", { owner: lease.owner });
        await new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
        return lease.signal.reason;
      },
      { ttlMs: 600 },
    );
    expect(reason).toBeInstanceOf(LeaseLostError);
  }, 30_000);

  it("consume processes every message exactly once under acks, then stops", async () => {
    const queue = "cl-consume";
    const ids = Array.from({ length: 30 }, (_, i) => `m${i}`);
    await client.queues.send(
      queue,
      ids.map((id, i) => ({ id, body: { i } })),
    );
    const seen: string[] = [];
    const ac = new AbortController();
    const done = client.consume(
      queue,
      async (m) => {
        seen.push(m.id);
        await sleep(5);
      },
      { concurrency: 4, batch: 6, waitMs: 1000, signal: ac.signal },
    );
    await waitFor(async () => (seen.length >= ids.length ? true : undefined), 30_000, "every message");
    await sleep(300); // a duplicate would show up here
    ac.abort();
    await done;
    expect([...seen].sort()).toEqual([...ids].sort());
    const stats = await client.queues.stats(queue);
    expect(stats).toMatchObject({ visible: 0, inflight: 0, delayed: 0, dlq: 0 });
  }, 60_000);

  it("consume: a failing handler's message comes back with more attempts and is then acked", async () => {
    const queue = "cl-retry";
    await client.queues.send(queue, [{ id: "flaky", body: "x" }]);
    const attempts: number[] = [];
    const ac = new AbortController();
    const done = client.consume(
      queue,
      async (m) => {
        attempts.push(m.attempts);
        if (m.attempts < 3) throw new Error("not yet");
      },
      { waitMs: 500, signal: ac.signal, nackBackoff: { baseMs: 100, maxMs: 400 } },
    );
    await waitFor(async () => (attempts.length >= 3 ? true : undefined), 20_000, "three deliveries");
    await waitFor(async () => ((await client.queues.stats(queue)).inflight === 0 ? true : undefined));
    ac.abort();
    await done;
    expect(attempts).toEqual([1, 2, 3]);
    expect(await client.queues.stats(queue)).toMatchObject({ visible: 0, inflight: 0, delayed: 0 });
  }, 30_000);

  it("stops promptly during a long poll of an empty queue", async () => {
    const ac = new AbortController();
    const done = client.consume("cl-empty", async () => undefined, { signal: ac.signal });
    await sleep(300);
    const t = Date.now();
    ac.abort();
    await done;
    expect(Date.now() - t).toBeLessThan(5000);
  }, 30_000);

  it("health, ready, cache and cluster calls answer typed replies", async () => {
    expect(await client.health()).toBe(true);
    expect(await client.ready()).toBe(true);
    expect(await client.cache.get("cl-absent")).toBeUndefined();
    await client.cache.put("cl-key", { v: 1 }, { node: "n1" });
    expect((await client.cache.get("cl-key", { node: "n1" }))?.value).toEqual({ v: 1 });
    expect((await client.cluster.status()).groups.length).toBeGreaterThan(0);
  }, 30_000);
});
