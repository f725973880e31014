// Idempotency-Key (shared/API.md, "Retries"): a repeated key gets the first answer and applies
// nothing again, across other requests, crashes, restarts and leader changes.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { callGroup, groupOf } from "../../workers/groups";
import { fingerprint, keyedRequestId } from "../../workers/idempotency";
import { acquire, call, get, leaderOf, PEERS, post, ready, release, settled, waitFor } from "./client";

beforeAll(ready, 20_000);

/** Unique per run: storage may outlive one run of this file. */
const run = Math.random().toString(36).slice(2, 8);
let n = 0;
const fresh = (what: string) => `${what}-${run}-${++n}`;
const keyed = (key: string) => ({ "idempotency-key": key });

const send = (queue: string, messages: unknown[], headers?: Record<string, string>) =>
  post(`/v1/queues/${queue}/messages`, { messages }, headers);
const receive = (queue: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
  post(`/v1/queues/${queue}/receive`, body, headers);
const ack = (queue: string, receipts: string[], headers?: Record<string, string>) =>
  post(`/v1/queues/${queue}/ack`, { receipts }, headers);
const view = async (resource: string) => (await get(`/v1/locks/${resource}`)).json;
const depth = async (queue: string) => (await get(`/v1/queues/${queue}`)).json;

/** The leader (e.g. "p2") of the group that holds `key`. */
async function keyLeader(key: string): Promise<string> {
  const g = `g${groupOf(env, `idem/${key}`)}`;
  return leaderOf(g);
}

describe("Idempotency-Key", () => {
  it("a repeated acquire gets the first answer and does not extend the lease", async () => {
    const r = fresh("lock");
    const key = fresh("key");
    const first = await acquire(r, { owner: "a", ttlMs: 60_000 }, keyed(key));
    expect(first.status).toBe(200);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const before = await view(r);
    const again = await acquire(r, { owner: "a", ttlMs: 60_000 }, keyed(key));
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("content-type")).toContain("application/json");
    expect(await view(r)).toEqual(before);
  });

  it("a replayed release does not release the lease the owner took again meanwhile", async () => {
    const r = fresh("lock");
    const key = fresh("key");
    expect((await acquire(r, { owner: "a", ttlMs: 60_000 })).status).toBe(200);
    const first = await release(r, "a", keyed(key));
    expect(first).toMatchObject({ status: 200, json: { released: true } });
    const again = await acquire(r, { owner: "a", ttlMs: 60_000 });
    expect(again.status).toBe(200);
    const replay = await release(r, "a", keyed(key));
    expect(replay).toMatchObject({ status: 200, json: { released: true } });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await view(r)).holders).toMatchObject([{ owner: "a", mode: "exclusive" }]);
  });

  it("a 409 first answer is replayed as that 409 even after the lock became free", async () => {
    const r = fresh("lock");
    const key = fresh("key");
    expect((await acquire(r, { owner: "a", ttlMs: 60_000 })).status).toBe(200);
    const first = await acquire(r, { owner: "b" }, keyed(key));
    expect(first.status).toBe(409);
    expect(first.json.type).toBe("/problems/lock-conflict");
    expect((await release(r, "a")).status).toBe(200);
    const replay = await acquire(r, { owner: "b" }, keyed(key));
    expect(replay.status).toBe(409);
    expect(replay.json).toEqual(first.json);
    expect(replay.headers.get("content-type")).toBe("application/problem+json");
    expect((await view(r)).holders).toEqual([]);
  });

  it("a repeated enqueue stores nothing twice, also for messages sent without ids", async () => {
    const q = fresh("q");
    const key = fresh("key");
    const msgs = [{ body: { n: 1 } }, { body: "two", key: "k" }, { body: 3, id: "m3" }];
    const first = await send(q, msgs, keyed(key));
    expect(first.status).toBe(200);
    const replay = await send(q, msgs, keyed(key));
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual(first.json);
    expect(await depth(q)).toMatchObject({ visible: 3, inflight: 0 });
    // Without the key the same batch is a new request: the two messages without ids are stored again.
    expect((await send(q, msgs)).status).toBe(200);
    expect(await depth(q)).toMatchObject({ visible: 5 });
  });

  it("a repeated receive returns the same messages and receipts and takes no more; a repeated ack answers as the first", async () => {
    const q = fresh("q");
    expect((await send(q, [{ body: 1 }, { body: 2 }, { body: 3 }])).status).toBe(200);
    const rkey = fresh("key");
    const first = await receive(q, { max: 2, visibilityMs: 60_000 }, keyed(rkey));
    expect(first.status).toBe(200);
    expect(first.json.messages).toHaveLength(2);
    const replay = await receive(q, { max: 2, visibilityMs: 60_000 }, keyed(rkey));
    expect(replay.json).toEqual(first.json);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await depth(q)).toMatchObject({ visible: 1, inflight: 2 });

    const receipts = first.json.messages.map((m: { receipt: string }) => m.receipt);
    const akey = fresh("key");
    expect((await ack(q, receipts, keyed(akey))).json).toEqual({ acked: 2 });
    // Applied again, the same receipts would ack nothing; the replay says what the first said.
    expect((await ack(q, receipts)).json).toEqual({ acked: 0 });
    const again = await ack(q, receipts, keyed(akey));
    expect(again).toMatchObject({ status: 200, json: { acked: 2 } });
    expect(await depth(q)).toMatchObject({ visible: 1, inflight: 0 });
  });

  it("a keyed receive of large messages takes what its stored answer can hold, and replays it", async () => {
    const q = fresh("q");
    const big = "x".repeat(100 * 1024);
    // A batch without keys or ids goes to one shard (one key's messages would go one at a time).
    const sent = await send(
      q,
      Array.from({ length: 9 }, (_, i) => ({ body: `${i}${big}` })),
    );
    expect(sent.status).toBe(200);
    const key = fresh("key");
    const first = await receive(q, { max: 9, visibilityMs: 60_000 }, keyed(key));
    expect(first.status).toBe(200);
    // 512 Ki units of bodies: 5 messages of 100 KiB fit, and the one that reaches the limit is not taken.
    expect(first.json.messages).toHaveLength(5);
    const replay = await receive(q, { max: 9, visibilityMs: 60_000 }, keyed(key));
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.json).toEqual(first.json);
    expect(await depth(q)).toMatchObject({ inflight: 5 });
    // Without a key a receive is not bounded that way.
    expect((await receive(q, { max: 9 })).json.messages).toHaveLength(4);
  });

  it("the same key with another body, path or method is 422 and applies nothing", async () => {
    const r = fresh("lock");
    const other = fresh("lock");
    const key = fresh("key");
    expect((await acquire(r, { owner: "a" }, keyed(key))).status).toBe(200);

    const otherBody = await acquire(r, { owner: "b" }, keyed(key));
    expect(otherBody.status).toBe(422);
    expect(otherBody.headers.get("content-type")).toBe("application/problem+json");
    expect(otherBody.json).toMatchObject({ type: "/problems/idempotency-key-reused", status: 422 });

    const otherPath = await acquire(other, { owner: "a" }, keyed(key));
    expect(otherPath.status).toBe(422);
    expect((await view(other)).holders).toEqual([]);

    const otherQuery = await post(`/v1/locks/${r}/acquire?x=1`, { owner: "a" }, keyed(key));
    expect(otherQuery.status).toBe(422);

    const otherMethod = await call("PUT", `/v1/locks/${r}/acquire`, { owner: "a" }, keyed(key));
    expect(otherMethod.status).toBe(422);

    const q = fresh("q");
    expect((await send(q, [{ body: 1 }], keyed(key))).status).toBe(422);
    expect(await depth(q)).toMatchObject({ visible: 0 });
    expect((await view(r)).holders).toMatchObject([{ owner: "a" }]);
  });

  it("concurrent attempts with one key apply once and answer the same", async () => {
    const q = fresh("q");
    const key = fresh("key");
    const attempts = await Promise.all(Array.from({ length: 4 }, () => send(q, [{ body: "once" }], keyed(key))));
    for (const a of attempts) {
      // An attempt that found the first one still running re-runs it with the same ids.
      expect(a.status).toBe(200);
      expect(a.json).toEqual(attempts[0]?.json);
    }
    expect(await depth(q)).toMatchObject({ visible: 1 });
  });

  it("a retry after a first attempt that applied but never finished re-runs it without applying it again", async () => {
    const r = fresh("lock");
    const key = fresh("key");
    const path = `/v1/locks/${r}/release`;
    const body = JSON.stringify({ owner: "a" });
    expect((await acquire(r, { owner: "a", ttlMs: 60_000 })).status).toBe(200);
    // The first attempt, by hand: begin, then the release applied with the key's request id; then
    // the Worker running it "crashed" before finish.
    const fp = await fingerprint("POST", path, body);
    const idemGroup = groupOf(env, `idem/${key}`);
    const begun = await callGroup(
      env,
      idemGroup,
      (peer, name) => peer.idempotency(name, { op: "begin", key, fp }),
      4000,
    );
    if (!begun.ok || begun.value.kind !== "new") throw new Error(`begin: ${JSON.stringify(begun)}`);
    const requestId = await keyedRequestId(key, begun.value.at);
    const applied = await callGroup(
      env,
      groupOf(env, r),
      (peer, name) => peer.lock(name, { op: "release", resource: r, owner: "a" }, requestId),
      4000,
    );
    expect(applied).toMatchObject({ ok: true, value: { type: "released" } });
    // The owner takes the lock again; then the client retries its release with the same key.
    expect((await acquire(r, { owner: "a", ttlMs: 60_000 })).status).toBe(200);
    const retry = await post(path, body, keyed(key));
    expect(retry).toMatchObject({ status: 200, json: { released: true } });
    expect((await view(r)).holders).toMatchObject([{ owner: "a" }]);
    // Now finished: later retries are replays.
    expect((await post(path, body, keyed(key))).headers.get("idempotent-replayed")).toBe("true");
  });

  it("an invalid key is 400 validation naming the header; GET ignores the header", async () => {
    const r = fresh("lock");
    for (const bad of ["", "x".repeat(201)]) {
      const res = await acquire(r, { owner: "a" }, keyed(bad));
      expect(res.status).toBe(400);
      expect(res.json.type).toBe("/problems/validation");
      expect(res.json.detail).toContain("Idempotency-Key");
    }
    expect((await view(r)).holders).toEqual([]);
    expect((await acquire(r, { owner: "a" }, keyed("y".repeat(200)))).status).toBe(200);
    const g1 = await get(`/v1/locks/${r}`, keyed(fresh("key")));
    expect(g1.status).toBe(200);
    expect(g1.headers.get("idempotent-replayed")).toBeNull();
  });

  it("the stored answer survives a leader change of the key's group", async () => {
    const r = fresh("lock");
    const key = fresh("key");
    const first = await acquire(r, { owner: "a", ttlMs: 60_000 }, keyed(key));
    expect(first.status).toBe(200);
    const old = await keyLeader(key);
    expect((await post(`/v1/admin/peers/${old}/crash`)).status).toBe(200);
    try {
      const now = await waitFor(
        async () => {
          const l = await keyLeader(key);
          return l !== old ? l : undefined;
        },
        15_000,
        "a new leader",
      );
      expect(now).not.toBe(old);
      const replay = await acquire(r, { owner: "a", ttlMs: 60_000 }, keyed(key));
      expect(replay.status).toBe(200);
      expect(replay.json).toEqual(first.json);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
    } finally {
      expect((await post(`/v1/admin/peers/${old}/restart`)).status).toBe(200);
    }
    expect(await settled(15_000)).toBe(true);
  }, 40_000);

  it("the stored answer survives a crash and restart of every peer", async () => {
    const r = fresh("lock");
    const key = fresh("key");
    expect((await acquire(r, { owner: "a", ttlMs: 120_000 })).status).toBe(200);
    const first = await release(r, "a", keyed(key));
    expect(first).toMatchObject({ status: 200, json: { released: true } });
    expect((await acquire(r, { owner: "a", ttlMs: 120_000 })).status).toBe(200);
    // Every peer of every group (the key's included) loses its memory and rebuilds from storage.
    for (const p of PEERS) expect((await post(`/v1/admin/peers/${p}/crash`)).status).toBe(200);
    for (const p of PEERS) expect((await post(`/v1/admin/peers/${p}/restart`)).status).toBe(200);
    await ready();
    const replay = await release(r, "a", keyed(key));
    expect(replay).toMatchObject({ status: 200, json: { released: true } });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    // Not applied again: the lease taken after the first release is still held.
    expect((await view(r)).holders).toMatchObject([{ owner: "a" }]);
    expect(await settled(15_000)).toBe(true);
  }, 40_000);
});
