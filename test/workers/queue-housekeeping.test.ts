// Listing and housekeeping of queues end to end: GET /v1/queues, peek, purge, DELETE.
import { beforeAll, describe, expect, it } from "vitest";
import { call, clusterGroups, get, post, ready } from "./client";

beforeAll(ready, 20_000);

const send = (queue: string, messages: unknown[]) => post(`/v1/queues/${queue}/messages`, { messages });
const receive = (queue: string, body: Record<string, unknown> = {}) => post(`/v1/queues/${queue}/receive`, body);
const peek = (queue: string, body: unknown = {}) => post(`/v1/queues/${queue}/peek`, body);
const purge = (queue: string, headers?: Record<string, string>) => post(`/v1/queues/${queue}/purge`, {}, headers);
const del = (queue: string) => call("DELETE", `/v1/queues/${queue}`);
const stats = async (queue: string) => (await get(`/v1/queues/${queue}`)).json;
const listed = async (name: string) =>
  ((await get("/v1/queues")).json.queues as { queue: string }[]).find((q) => q.queue === name);

describe("GET /v1/queues", () => {
  it("lists every queue with its depths summed over shards, sorted by name, DLQs under their queue", async () => {
    await send(
      "hk-list-b",
      Array.from({ length: 12 }, (_, i) => ({ body: i, id: `b${i}` })), // ids spread over shards
    );
    await send("hk-list-b", [{ body: "later", delayMs: 60_000 }]);
    expect((await receive("hk-list-b", { max: 2 })).json.messages).toHaveLength(2);
    await send("hk-list-a.dlq", [{ body: "dead" }]);
    await call("PUT", "/v1/queues/hk-list-c", { maxAttempts: 3 });

    const res = await get("/v1/queues");
    expect(res.status).toBe(200);
    const names = (res.json.queues as { queue: string }[]).map((q) => q.queue);
    expect(names).toEqual([...names].sort());
    expect(names).not.toContain("hk-list-a.dlq");
    expect(await listed("hk-list-b")).toEqual({ queue: "hk-list-b", visible: 10, inflight: 2, delayed: 1, dlq: 0 });
    expect(await listed("hk-list-a")).toEqual({ queue: "hk-list-a", visible: 0, inflight: 0, delayed: 0, dlq: 1 });
    expect(await listed("hk-list-c")).toEqual({ queue: "hk-list-c", visible: 0, inflight: 0, delayed: 0, dlq: 0 });
    // A stale read (the leaders' own state, no quorum round) shows the same once nothing is in flight.
    expect((await get("/v1/queues?stale=true")).json).toEqual(res.json);
    expect((await get("/v1/queues?stale=maybe")).json.type).toBe("/problems/validation");
    expect((await get("/v1/queues?stail=true")).json.detail).toContain("stail");
  });
});

describe("POST /v1/queues/{queue}/peek", () => {
  it("shows visible messages without delivering them: no receipt, attempts and visibility unchanged", async () => {
    await send("hk-peek", [
      { body: { n: 1 }, id: "p1", key: "k" },
      { body: "two", id: "p2" },
      { body: "hidden", id: "p3", delayMs: 60_000 },
    ]);
    const commits = async () => (await clusterGroups()).reduce((n, g) => n + g.commitIndex, 0);
    const before = await commits();
    const first = await peek("hk-peek");
    expect(first.status).toBe(200);
    const byId = Object.fromEntries(first.json.messages.map((m: { id: string }) => [m.id, m]));
    expect(Object.keys(byId).sort()).toEqual(["p1", "p2"]);
    expect(byId.p1).toEqual({ id: "p1", body: { n: 1 }, key: "k", attempts: 0, enqueuedAt: expect.any(Number) });
    expect(byId.p2).not.toHaveProperty("receipt");
    expect(Math.abs(byId.p1.enqueuedAt - Date.now())).toBeLessThan(60_000); // wall time
    // Peeking again sees the same; nothing was written for either (heartbeats write nothing).
    expect((await peek("hk-peek")).json.messages).toHaveLength(2);
    expect((await commits()) - before).toBeLessThan(5);
    expect((await peek("hk-peek", { max: 1 })).json.messages).toHaveLength(1);
    expect(await stats("hk-peek")).toMatchObject({ visible: 2, inflight: 0, delayed: 1 });

    // A receive still gets both at their first attempt; then they are in flight and peek no longer shows them.
    const got = await receive("hk-peek", { max: 10 });
    expect(got.json.messages.map((m: { attempts: number }) => m.attempts)).toEqual([1, 1]);
    expect((await peek("hk-peek")).json.messages).toEqual([]);
    expect((await peek("hk-peek-unknown")).json).toEqual({ messages: [] });
  });
});

describe("POST /v1/queues/{queue}/purge", () => {
  it("removes visible and delayed messages, not deliveries in flight nor the DLQ; an unknown queue purges 0", async () => {
    await call("PUT", "/v1/queues/hk-purge", { maxAttempts: 1 });
    await send("hk-purge", [{ body: "poison", id: "x" }]);
    const r = await receive("hk-purge");
    await post("/v1/queues/hk-purge/nack", { receipts: [r.json.messages[0].receipt] });
    expect((await receive("hk-purge")).json.messages).toEqual([]); // dead-lettered
    await send(
      "hk-purge",
      Array.from({ length: 5 }, (_, i) => ({ body: i, id: `v${i}` })),
    );
    await send("hk-purge", [{ body: "later", delayMs: 60_000 }]);
    const inflight = await receive("hk-purge", { max: 2 });
    expect(inflight.json.messages).toHaveLength(2);

    const res = await purge("hk-purge");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ purged: 4 }); // 3 visible + 1 delayed
    expect(await stats("hk-purge")).toMatchObject({ visible: 0, inflight: 2, delayed: 0, dlq: 1 });
    const acked = await post("/v1/queues/hk-purge/ack", {
      receipts: inflight.json.messages.map((m: { receipt: string }) => m.receipt),
    });
    expect(acked.json).toEqual({ acked: 2 }); // the deliveries in flight finish as usual
    expect((await purge("hk-purge-never-seen")).json).toEqual({ purged: 0 });
    // The queue keeps its config and works on.
    await send("hk-purge", [{ body: "after" }]);
    expect((await receive("hk-purge")).json.messages[0]).toMatchObject({ body: "after" });
  });

  it("is applied once under retries with the same Idempotency-Key", async () => {
    await send("hk-purge-idem", [{ body: 1 }, { body: 2 }]);
    const key = { "idempotency-key": `purge-${Date.now()}` };
    expect((await purge("hk-purge-idem", key)).json).toEqual({ purged: 2 });
    await send("hk-purge-idem", [{ body: 3 }]);
    const again = await purge("hk-purge-idem", key);
    expect(again.json).toEqual({ purged: 2 });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await stats("hk-purge-idem")).visible).toBe(1);
  });
});

describe("DELETE /v1/queues/{queue}", () => {
  it("forgets the queue, its messages and config, not its DLQ; a later send re-creates it", async () => {
    await call("PUT", "/v1/queues/hk-del", { maxAttempts: 2, visibilityMs: 5000 });
    await send("hk-del", [{ body: "a", id: "same-id" }, { body: "b" }]);
    await send("hk-del.dlq", [{ body: "dead" }]);
    expect(await listed("hk-del")).toMatchObject({ visible: 2, dlq: 1 });

    const res = await del("hk-del");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ deleted: true });
    // What is left is its DLQ, listed under it.
    expect(await listed("hk-del")).toEqual({ queue: "hk-del", visible: 0, inflight: 0, delayed: 0, dlq: 1 });
    expect(await stats("hk-del")).toMatchObject({ visible: 0, inflight: 0, delayed: 0, dlq: 1 });
    expect((await receive("hk-del.dlq")).json.messages).toEqual([expect.objectContaining({ body: "dead" })]);
    // Deleting it again (or one never seen) is fine.
    expect((await del("hk-del")).json).toEqual({ deleted: true });

    // A send re-creates it with the defaults; the old id is not a duplicate any more.
    await send("hk-del", [{ body: "again", id: "same-id" }]);
    const got = await receive("hk-del", { max: 10 });
    expect(got.json.messages).toEqual([expect.objectContaining({ id: "same-id", body: "again", attempts: 1 })]);
    expect(await listed("hk-del")).toMatchObject({ visible: 0, inflight: 1, dlq: 1 }); // the DLQ message received above, in flight
  });
});

describe("housekeeping input", () => {
  it("bad bodies and names are 400 validation problems", async () => {
    for (const body of [{ max: 0 }, { max: 101 }, { max: 1.5 }, { max: "3" }, { max: 3, extra: true }]) {
      const r = await peek("hk-bad", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers.get("content-type")).toBe("application/problem+json");
      expect(r.json.type).toMatch(/validation$/);
    }
    expect((await peek("hk-bad", "not json")).status).toBe(400);
    const p = await post("/v1/queues/hk-bad/purge", { all: true });
    expect(p.status).toBe(400);
    expect(p.json.type).toMatch(/validation$/);
    for (const r of [await peek("bad%20name"), await purge("bad%20name"), await del("bad%20name")]) {
      expect(r.status).toBe(400);
      expect(r.json.type).toMatch(/validation$/);
    }
  });
});
