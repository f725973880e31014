// Queue behaviour end to end: Worker → shard's group leader → Raft → queue table, inside workerd.
import { beforeAll, describe, expect, it } from "vitest";
import { call, clusterGroups, get, post, ready, sleep } from "./client";

beforeAll(ready, 20_000);

const send = (queue: string, messages: unknown[]) => post(`/v1/queues/${queue}/messages`, { messages });
const receive = (queue: string, body: Record<string, unknown> = {}) => post(`/v1/queues/${queue}/receive`, body);
const ack = (queue: string, receipts: string[]) => post(`/v1/queues/${queue}/ack`, { receipts });

describe("queues", () => {
  it("send, receive, ack: an acked message is never delivered again", async () => {
    const sent = await send("q1", [{ body: { n: 1 } }, { body: "two", id: "msg-2" }]);
    expect(sent.status).toBe(200);
    expect(sent.json.messages).toHaveLength(2);
    expect(sent.json.messages[1].id).toBe("msg-2");
    for (const m of sent.json.messages) expect(m.shard).toBeGreaterThanOrEqual(0);

    const got = await receive("q1", { max: 10 });
    expect(got.status).toBe(200);
    const bodies = got.json.messages.map((m: { body: unknown }) => JSON.stringify(m.body)).sort();
    expect(bodies).toEqual(['"two"', '{"n":1}']);
    for (const m of got.json.messages) expect(m).toMatchObject({ attempts: 1, receipt: expect.any(String) });

    // In flight: invisible to others.
    expect((await receive("q1", { max: 10 })).json.messages).toEqual([]);
    const acked = await ack(
      "q1",
      got.json.messages.map((m: { receipt: string }) => m.receipt),
    );
    expect(acked.json).toEqual({ acked: 2 });
    expect((await ack("q1", ["0:999:1"])).json).toEqual({ acked: 0 }); // well-formed but stale
    expect((await ack("q1", ["garbage"])).status).toBe(400); // malformed
    const stats = await get("/v1/queues/q1");
    expect(stats.json).toMatchObject({ queue: "q1", visible: 0, inflight: 0, delayed: 0, dlq: 0 });
    expect(stats.json.shards).toHaveLength(8);
  });

  it("an unacked message is delivered again after its visibility runs out (at-least-once)", async () => {
    await send("q2", [{ body: "x" }]);
    const first = await receive("q2", { visibilityMs: 1000 });
    expect(first.json.messages).toHaveLength(1);
    await sleep(1100);
    const again = await receive("q2", { visibilityMs: 1000 });
    expect(again.json.messages).toHaveLength(1);
    expect(again.json.messages[0].attempts).toBe(2);
    expect(again.json.messages[0].id).toBe(first.json.messages[0].id);
    // The stale receipt of the first delivery can neither ack nor extend.
    expect((await ack("q2", [first.json.messages[0].receipt])).json.acked).toBe(0);
    const ext = await post("/v1/queues/q2/extend", { receipts: [first.json.messages[0].receipt], visibilityMs: 5000 });
    expect(ext.json.extended).toBe(0);
    expect((await ack("q2", [again.json.messages[0].receipt])).json.acked).toBe(1);
  });

  it("nack makes a message visible again; extend keeps it hidden", async () => {
    await send("q3", [{ body: 1 }]);
    const a = await receive("q3");
    expect((await post("/v1/queues/q3/nack", { receipts: [a.json.messages[0].receipt] })).json).toEqual({
      released: 1,
    });
    const b = await receive("q3", { visibilityMs: 1000 });
    expect(b.json.messages[0].attempts).toBe(2);
    const ext = await post("/v1/queues/q3/extend", { receipts: [b.json.messages[0].receipt], visibilityMs: 10_000 });
    expect(ext.json).toEqual({ extended: 1 });
    await sleep(1100);
    expect((await receive("q3")).json.messages).toEqual([]);
  });

  it("a poison message moves to the DLQ after maxAttempts; redrive brings it back", async () => {
    const cfg = await call("PUT", "/v1/queues/q4", { maxAttempts: 2 });
    expect(cfg.json).toEqual({ queue: "q4", maxAttempts: 2, visibilityMs: 30_000 });
    await send("q4", [{ body: "poison", id: "p1" }]);
    for (let i = 0; i < 2; i++) {
      const r = await receive("q4");
      expect(r.json.messages[0].attempts).toBe(i + 1);
      await post("/v1/queues/q4/nack", { receipts: [r.json.messages[0].receipt] });
    }
    // The third delivery would exceed maxAttempts: it goes to q4.dlq instead.
    expect((await receive("q4")).json.messages).toEqual([]);
    expect((await get("/v1/queues/q4")).json.dlq).toBe(1);
    const dead = await receive("q4.dlq");
    expect(dead.json.messages[0]).toMatchObject({ id: "p1", body: "poison" });
    await post("/v1/queues/q4.dlq/nack", { receipts: [dead.json.messages[0].receipt] });
    expect((await post("/v1/queues/q4/redrive", {})).json).toEqual({ moved: 1 });
    const back = await receive("q4");
    expect(back.json.messages[0]).toMatchObject({ id: "p1", attempts: 1 });
  });

  it("a repeated id within 5 minutes is accepted but enqueued once", async () => {
    const a = await send("q5", [{ body: "once", id: "dup-1" }]);
    const b = await send("q5", [{ body: "once", id: "dup-1" }]);
    expect(a.status).toBe(200);
    expect(b.json.messages[0]).toEqual(a.json.messages[0]);
    const got = await receive("q5", { max: 10 });
    expect(got.json.messages).toHaveLength(1);
  });

  it("messages with one key keep their order, one at a time while in flight", async () => {
    await send(
      "q6",
      [1, 2, 3].map((n) => ({ body: n, key: "k" })),
    );
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await receive("q6", { max: 10 });
      expect(r.json.messages).toHaveLength(1);
      seen.push(r.json.messages[0].body);
      await ack("q6", [r.json.messages[0].receipt]);
    }
    expect(seen).toEqual([1, 2, 3]);
  });

  it("a long poll is answered when a message arrives", async () => {
    const t0 = Date.now();
    const waiting = receive("q7", { waitMs: 10_000 });
    await sleep(300);
    await send("q7", [{ body: "late" }]);
    const got = await waiting;
    expect(got.json.messages.map((m: { body: unknown }) => m.body)).toEqual(["late"]);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const empty = await receive("q7-empty", { waitMs: 300 });
    expect(empty.json.messages).toEqual([]);
  });

  it("delayed messages become visible later", async () => {
    await send("q8", [{ body: "later", delayMs: 800 }]);
    expect((await receive("q8")).json.messages).toEqual([]);
    expect((await get("/v1/queues/q8")).json.delayed).toBe(1);
    await sleep(900);
    expect((await receive("q8")).json.messages).toHaveLength(1);
  });

  it("bad input is 400 and enqueues nothing; an oversized body is 413", async () => {
    for (const body of [
      {},
      { messages: [] },
      { messages: Array.from({ length: 101 }, () => ({ body: 1 })) },
      { messages: [{}] },
      { messages: [{ body: 1, key: "bad key" }] },
      { messages: [{ body: 1, delayMs: -1 }] },
    ]) {
      const r = await post("/v1/queues/q9/messages", body);
      expect(r.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(r.json.type).toBe("/problems/validation");
    }
    const big = await send("q9", [{ body: "x".repeat(128 * 1024 + 1) }]);
    expect(big.status).toBe(413);
    expect(big.json.type).toBe("/problems/payload-too-large");
    expect((await receive("q9", { max: 0 })).status).toBe(400);
    expect((await receive("q9", { waitMs: 20_001 })).status).toBe(400);
    expect((await get("/v1/queues/q9")).json.visible).toBe(0);
  });
});

describe("queue batches and long polls", () => {
  it("a batch without keys or ids stays on one shard, so it is one all-or-nothing command", async () => {
    const sent = await send(
      "qb",
      Array.from({ length: 20 }, (_, i) => ({ body: i })),
    );
    expect(new Set(sent.json.messages.map((m: { shard: number }) => m.shard)).size).toBe(1);
  });

  it("a long poll does not spin on a keyed message that waits behind one in flight", async () => {
    await send("qk", [
      { body: 1, key: "k" },
      { body: 2, key: "k" },
    ]);
    expect((await receive("qk")).json.messages).toHaveLength(1);
    const commits = async () => (await clusterGroups()).reduce((n, g) => n + g.commitIndex, 0);
    const before = await commits();
    const r = await receive("qk", { waitMs: 1500 });
    expect(r.json.messages).toEqual([]);
    // No empty receive entries were written while waiting (heartbeats write nothing).
    expect((await commits()) - before).toBeLessThan(5);
  });
});

describe("queue metrics", () => {
  it("/metrics reports depth, in flight, DLQ size and message totals", async () => {
    await send("mq", [{ body: 1 }, { body: 2 }, { body: 3 }]);
    const r = await receive("mq");
    expect(r.json.messages).toHaveLength(1);
    const text = (await call("GET", "/metrics")).json as string;
    expect(text).toContain('queue_visible_messages{queue="mq"} 2');
    expect(text).toContain('queue_inflight_messages{queue="mq"} 1');
    expect(text).toContain('queue_dlq_messages{queue="q4"} 0');
    expect(text).toContain('queue_enqueued_messages_total{queue="mq"} 3');
    expect(text).toContain('queue_dequeued_messages_total{queue="mq"} 1');
    expect(text).toContain('queue_acked_messages_total{queue="q1"} 2');
    expect(text).toContain('queue_dead_lettered_messages_total{queue="q4"} 1');
  });
});
