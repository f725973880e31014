// The dashboard's stream (GET /dashboard/events) and page (GET /dashboard), inside workerd.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../dashboard/snapshot";
import { readEvents, type ServerEvent } from "../../dashboard/sse";
import app from "../../workers/index";
import { SNAPSHOT_EVERY_MS, sharedSnapshot } from "../../workers/routes/dashboard";
import { acquire, call, get, post, ready } from "./client";

/** Opens the stream with `settings` over the test bindings; the caller reads it and must close it. */
function open(settings: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return app.fetch(new Request("http://example.com/dashboard/events", { headers }), { ...env, ...settings });
}

/** The first `n` events of a stream, then the stream is cancelled (as a closed page would). */
async function firstEvents(res: Response, n: number): Promise<ServerEvent[]> {
  const events: ServerEvent[] = [];
  const enough = new AbortController();
  await readEvents(
    res.body as ReadableStream<Uint8Array>,
    (e) => {
      events.push(e);
      if (events.length >= n) enough.abort();
    },
    enough.signal,
  );
  if (events.length < n) throw new Error(`the stream ended after ${events.length} events`);
  return events.slice(0, n);
}

const snapshots = async (res: Response, n: number) =>
  (await firstEvents(res, n)).map((e) => {
    expect(e.event).toBe("snapshot");
    return JSON.parse(e.data) as Snapshot;
  });

describe("GET /dashboard/events", () => {
  beforeAll(async () => {
    await ready();
  });

  it("streams snapshots of groups, locks, queues and cache lines as the read routes show them", async () => {
    expect((await acquire("dash/held", { owner: "alice", ttlMs: 60_000 })).status).toBe(200);
    expect((await post("/v1/queues/dash-q/messages", { messages: [{ body: 1 }, { body: 2 }] })).status).toBe(200);
    expect((await call("PUT", "/v1/cache/dash-key?node=n2", { value: "v" })).status).toBe(200);

    const res = await open();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const [snap] = await snapshots(res, 1);
    if (snap === undefined) throw new Error("no snapshot");

    expect(snap.admin).toBe("open"); // FAULT_INJECTION and INSECURE_LOCAL are on in this project
    if (!snap.groups.ok) throw new Error(snap.groups.error);
    expect(snap.groups.value.map((g) => g.group)).toEqual(["g0", "g1", "g2"]);
    expect(snap.groups.value.map((g) => g.leader)).not.toContain(null);
    for (const g of snap.groups.value) expect(g.peers.map((p) => p.id)).toEqual(["p1", "p2", "p3"]);

    if (!snap.locks.ok) throw new Error(snap.locks.error);
    expect(snap.locks.value.locks).toContainEqual(
      expect.objectContaining({
        resource: "dash/held",
        mode: "exclusive",
        holders: [expect.objectContaining({ owner: "alice" })],
      }),
    );
    if (!snap.queues.ok) throw new Error(snap.queues.error);
    expect(snap.queues.value).toContainEqual(
      expect.objectContaining({ queue: "dash-q", visible: 2, inflight: 0, dlq: 0 }),
    );
    const q = snap.queues.value.find((x) => x.queue === "dash-q");
    expect(q?.enqueued).toBe(2);

    expect(snap.cache.map((n) => n.node)).toEqual(["n1", "n2", "n3", "n4"]);
    const n2 = snap.cache[1];
    if (!n2?.ok) throw new Error("n2 unavailable");
    expect(n2.value.lines).toContainEqual({ key: "dash-key", state: "M" });
    expect(n2.value.states.M).toBeGreaterThanOrEqual(1);
    expect(snap.http.latency.counts.length).toBe(snap.http.latency.bounds.length + 1);
  });

  it("sends one snapshot a second, and its own reads are not counted as requests", async () => {
    const [a, b, c] = await snapshots(await open(), 3);
    if (a === undefined || b === undefined || c === undefined) throw new Error("missing snapshots");
    // Generous bounds: about a second apart, never back to back.
    expect(b.at - a.at).toBeGreaterThanOrEqual(900);
    expect(c.at - b.at).toBeLessThan(5000);
    // Nothing else ran meanwhile: the snapshots' own calls to the read routes leave the counts alone.
    expect(c.http.requests).toBe(a.http.requests);
    expect(c.http.latency.count).toBe(a.http.latency.count);
    // ...while a client's requests are counted, with their latency.
    await get("/v1/cluster");
    await get("/healthz");
    const [d] = await snapshots(await open(), 1);
    expect(d?.http.requests).toBe(c.http.requests + 2);
    expect(d?.http.latency.count).toBe(c.http.latency.count + 2);
  });

  it("pages open at once share one snapshot a second: the groups are read once, however many stream", async () => {
    const settings = { ...env };
    const first = sharedSnapshot(settings, 1_000_000);
    expect(sharedSnapshot(settings, 1_000_000 + SNAPSHOT_EVERY_MS - 1)).toBe(first);
    const next = sharedSnapshot(settings, 1_000_000 + SNAPSHOT_EVERY_MS);
    expect(next).not.toBe(first);
    expect(sharedSnapshot({ ...env }, 1_000_000)).not.toBe(next); // other settings, other snapshot
    await Promise.all([first, next]);
  });

  it("a node that does not answer fails alone in the snapshot", async () => {
    expect((await post("/v1/admin/cache/n3/crash")).status).toBe(200);
    try {
      const [snap] = await snapshots(await open(), 1);
      const n3 = snap?.cache.find((n) => n.node === "n3");
      expect(n3).toMatchObject({ node: "n3", ok: false });
      expect(snap?.cache.filter((n) => n.ok).map((n) => n.node)).toEqual(["n1", "n2", "n4"]);
      expect(snap?.groups.ok).toBe(true);
    } finally {
      expect((await post("/v1/admin/cache/n3/restart")).status).toBe(200);
    }
  });

  it("a snapshot still comes when no group has quorum: the listings are stale reads of the leaders' own state", async () => {
    expect((await post("/v1/admin/partition", { sides: [["p1"], ["p2"], ["p3"]] })).status).toBe(200);
    try {
      const started = Date.now();
      const [snap] = await snapshots(await open(), 1);
      // Bounded by the parts' deadline, not by the routes' own (4 s looking for a leader).
      expect(Date.now() - started).toBeLessThan(3500);
      // Stale reads need no quorum: a cut-off leader still tells what it last knew.
      expect(snap?.locks).toMatchObject({ ok: true });
      expect(snap?.queues).toMatchObject({ ok: true });
      expect(snap?.groups.ok).toBe(true); // every peer still answers for itself
    } finally {
      expect((await post("/v1/admin/heal")).status).toBe(200);
    }
    await ready();
  });

  it("says the admin actions are disabled without FAULT_INJECTION, and closed without ADMIN_TOKEN outside local mode", async () => {
    const [off] = await snapshots(await open({ FAULT_INJECTION: "false" }), 1);
    expect(off?.admin).toBe("disabled");
    const [closed] = await snapshots(await open({ INSECURE_LOCAL: "false" }), 1);
    expect(closed?.admin).toBe("closed");
    const [token] = await snapshots(await open({ ADMIN_TOKEN: "admin-secret" }), 1);
    expect(token?.admin).toBe("token");
  });
});

describe("auth of the stream", () => {
  const tokens = { API_TOKEN: "user-secret", ADMIN_TOKEN: "admin-secret" };
  const opened: Response[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((r) => r.body?.cancel()));
  });

  it("with API_TOKEN set the stream needs the bearer token, like /v1 (401 problem otherwise)", async () => {
    const none = await open(tokens);
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toBe("application/problem+json");
    expect(await none.json()).toMatchObject({ type: "/problems/unauthorized" });
    expect((await open(tokens, { authorization: "Bearer wrong" })).status).toBe(401);
    // No token in the URL: it would end up in logs and browser history.
    const inUrl = await app.fetch(new Request("http://example.com/dashboard/events?token=user-secret"), {
      ...env,
      ...tokens,
    });
    expect(inUrl.status).toBe(401);

    for (const t of ["user-secret", "admin-secret"]) {
      const res = await open(tokens, { authorization: `Bearer ${t}` });
      expect(res.status).toBe(200);
      const [snap] = await snapshots(res, 1);
      expect(snap?.groups.ok).toBe(true);
    }
  });

  it("the page itself needs no token (it asks for one when the stream answers 401)", async () => {
    const page = await app.fetch(new Request("http://example.com/dashboard"), { ...env, ...tokens });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain("/dashboard/events");
    expect(html).toContain('id="api-token"');
    expect(html).not.toContain('src="main.ts"'); // the script is bundled in
  });
});
