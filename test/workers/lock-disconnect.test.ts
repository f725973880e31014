// A client that disconnects while its acquire waits is never granted the lock: the Worker
// withdraws the wait when `request.signal` fires. Miniflare 4 never fires it on a real
// disconnect, so these tests call the Worker's fetch handler with a Request whose signal they abort.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../workers/index.js";
import { acquire, get, ready, release, waitFor } from "./client";

beforeAll(ready, 20_000);

/** An acquire sent straight to the fetch handler, with `signal` standing for the client's connection. */
function acquireWith(
  signal: AbortSignal,
  resource: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const ctx = createExecutionContext();
  const req = new Request(`http://example.com/v1/locks/${resource}/acquire`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal,
  });
  const answer = Promise.resolve(worker.fetch(req, env, ctx));
  /** The answer, once the work the handler left behind (waitUntil) is done too. */
  return async () => {
    const res = await answer;
    await waitOnExecutionContext(ctx);
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
}

const view = async (resource: string) => (await get(`/v1/locks/${resource}`)).json;

describe("a waiting acquire whose client disconnects", () => {
  it("is withdrawn: no longer a waiter, and a later release does not grant it", async () => {
    expect((await acquire("dc-1", { owner: "holder" })).status).toBe(200);
    const client = new AbortController();
    const waiting = acquireWith(client.signal, "dc-1", { owner: "gone", waitMs: 20_000 });
    await waitFor(
      async () => ((await view("dc-1")).waiters.some((w: { owner: string }) => w.owner === "gone") ? true : undefined),
      5_000,
      "the wait to be queued",
    );
    client.abort();
    const answer = await waiting();
    expect(answer.status).toBe(409);
    expect(answer.json.type).toBe("/problems/lock-conflict");
    expect(answer.json.detail).toContain("withdrawn"); // not merely timed out
    expect((await view("dc-1")).waiters).toEqual([]);
    // The holder's release grants nobody: the gone owner holds nothing and waits for nothing.
    expect((await release("dc-1", "holder")).json).toEqual({ released: true });
    expect(await view("dc-1")).toEqual({ resource: "dc-1", mode: null, holders: [], waiters: [] });
    expect((await release("dc-1", "gone")).json.type).toBe("/problems/not-holder");
  });

  it("moves the waits behind it up", async () => {
    expect((await acquire("dc-2", { owner: "holder" })).status).toBe(200);
    const client = new AbortController();
    const waiting = acquireWith(client.signal, "dc-2", { owner: "gone", waitMs: 20_000 });
    await waitFor(async () => ((await view("dc-2")).waiters.length === 1 ? true : undefined), 5_000, "gone to wait");
    const next = acquire("dc-2", { owner: "next", waitMs: 20_000 });
    await waitFor(async () => ((await view("dc-2")).waiters.length === 2 ? true : undefined), 5_000, "next to wait");
    client.abort();
    expect((await waiting()).json.detail).toContain("withdrawn");
    expect((await view("dc-2")).waiters).toEqual([{ owner: "next", mode: "exclusive" }]);
    await release("dc-2", "holder");
    expect((await next).json.owner).toBe("next");
    await release("dc-2", "next");
  });

  it("gone before its acquire applied: a grant that comes anyway is released", async () => {
    // The signal has fired before the handler runs: the release may apply before the acquire
    // (it finds nothing; the grant that follows is released once it answers) or after it.
    const grant = await acquireWith(AbortSignal.abort(), "dc-3", { owner: "gone", waitMs: 5_000 })();
    expect(grant.status).toBe(409); // never a grant: the Worker has released it
    expect(await view("dc-3")).toEqual({ resource: "dc-3", mode: null, holders: [], waiters: [] });
    expect((await acquire("dc-3", { owner: "other" })).status).toBe(200);
    await release("dc-3", "other");
  });

  it("gone, with an Idempotency-Key: a retry is never told it holds a lock the Worker released for it", async () => {
    // The client library retries a dropped connection with the same key. Whichever of the grant
    // and the Worker's release applied first, the lock ends up free, so the first answer (the one
    // the key replays) must not be a grant.
    const headers = { "idempotency-key": "dc-5-key" };
    const body = { owner: "gone", waitMs: 5_000 };
    const first = await acquireWith(AbortSignal.abort(), "dc-5", body, headers)();
    expect(first.status).toBe(409);
    expect(first.json.detail).toContain("disconnected");
    expect(await view("dc-5")).toEqual({ resource: "dc-5", mode: null, holders: [], waiters: [] });
    const retry = await acquire("dc-5", body, headers);
    expect(retry.status).toBe(409);
    expect(retry.json.type).toBe("/problems/lock-conflict");
    expect(await view("dc-5")).toEqual({ resource: "dc-5", mode: null, holders: [], waiters: [] });
  });

  it("after its answer: a disconnect then releases nothing (the client has the grant)", async () => {
    const client = new AbortController();
    const granted = await acquireWith(client.signal, "dc-4", { owner: "kept", waitMs: 5_000 })();
    expect(granted.status).toBe(200);
    client.abort();
    await new Promise((r) => setTimeout(r, 200));
    expect((await view("dc-4")).holders.map((h: { owner: string }) => h.owner)).toEqual(["kept"]);
    await release("dc-4", "kept");
  });
});
