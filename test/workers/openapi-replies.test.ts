// Real answers of the running Worker validate against the schemas the OpenAPI document gives for
// their route and status: what the document promises is what a client gets.
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { groupOf } from "../../workers/groups";
import { openApiDocument } from "../../workers/openapi";
import { ready, sleep } from "./client";
import { check, type Json, resolveResponse, validators } from "./openapi-schemas";

const doc = openApiDocument();
const validate = validators(doc);

/**
 * Calls the Worker and checks its answer against the schema documented for `template` (the
 * OpenAPI path), the method and the status it answered; returns the body.
 */
async function documented(method: string, template: string, path: string, body?: unknown): Promise<Json> {
  const res = await exports.default.fetch(`http://example.com${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  const at = `${method} ${path} → ${res.status}`;
  const op = (doc.paths as Json)[template]?.[method.toLowerCase()];
  expect(op, `${method} ${template} is documented`).toBeDefined();
  const response = resolveResponse(doc, op.responses[String(res.status)]);
  expect(response, `${at}: status documented (${JSON.stringify(json)})`).toBeDefined();
  const type = (res.headers.get("content-type") ?? "").split(";")[0] as string;
  const media = response.content?.[type];
  expect(media, `${at}: ${type} documented`).toBeDefined();
  expect(check(validate(media.schema), json), `${at}: ${JSON.stringify(json)}`).toBe("ok");
  return json;
}

beforeAll(ready, 20_000);

describe("replies match the OpenAPI document", () => {
  it("locks: grant, conflict, view, list, renew, not-holder, release, validation", async () => {
    const acquire = "/v1/locks/{resource}/acquire";
    const grant = await documented("POST", acquire, "/v1/locks/oa-lock/acquire", { owner: "a", ttlMs: 10_000 });
    expect(grant.owner).toBe("a");
    const conflict = await documented("POST", acquire, "/v1/locks/oa-lock/acquire", { owner: "b" });
    expect(conflict.type).toBe("/problems/lock-conflict");
    await documented("GET", "/v1/locks/{resource}", "/v1/locks/oa-lock");
    const list = await documented("GET", "/v1/locks", "/v1/locks?prefix=oa-");
    expect(list.locks.map((l: Json) => l.resource)).toContain("oa-lock");
    await documented("POST", "/v1/locks/{resource}/renew", "/v1/locks/oa-lock/renew", { owner: "a" });
    const stranger = await documented("POST", "/v1/locks/{resource}/release", "/v1/locks/oa-lock/release", {
      owner: "b",
    });
    expect(stranger.type).toBe("/problems/not-holder");
    expect(
      await documented("POST", "/v1/locks/{resource}/release", "/v1/locks/oa-lock/release", { owner: "a" }),
    ).toEqual({ released: true });
    const invalid = await documented("POST", acquire, "/v1/locks/oa-lock/acquire", { owner: "a", ttl: 600_000 });
    expect(invalid.type).toBe("/problems/validation");
  });

  it("locks: a deadlock and a withdrawn wait", async () => {
    const acquire = "/v1/locks/{resource}/acquire";
    // Two resources on one group: the group itself refuses the closing wait (no detector delay).
    const names = Array.from({ length: 50 }, (_, i) => `oa-d${i}`);
    const [r1, r2] = names.filter((n) => groupOf(env, n) === groupOf(env, names[0] as string)) as [string, string];
    await documented("POST", acquire, `/v1/locks/${r1}/acquire`, { owner: "x" });
    await documented("POST", acquire, `/v1/locks/${r2}/acquire`, { owner: "y" });
    const waiting = documented("POST", acquire, `/v1/locks/${r2}/acquire`, { owner: "x", waitMs: 10_000 });
    await sleep(200);
    const deadlock = await documented("POST", acquire, `/v1/locks/${r1}/acquire`, { owner: "y", waitMs: 10_000 });
    expect(deadlock.type).toBe("/problems/deadlock");
    const release = "/v1/locks/{resource}/release";
    expect(await documented("POST", release, `/v1/locks/${r2}/release`, { owner: "x" })).toEqual({
      released: false,
      withdrawn: true,
    });
    expect((await waiting).type).toBe("/problems/lock-conflict");
  });

  it("queues: send, receive, ack, nack, extend, stats, config, list, peek, redrive, purge, delete", async () => {
    const q = "/v1/queues/oa-q";
    const sent = await documented("POST", "/v1/queues/{queue}/messages", `${q}/messages`, {
      messages: [{ body: { n: 1 }, key: "k" }, { body: "two" }, { body: [3] }],
    });
    expect(sent.messages).toHaveLength(3);
    const got = await documented("POST", "/v1/queues/{queue}/receive", `${q}/receive`, { max: 3 });
    const receipts = got.messages.map((m: Json) => m.receipt);
    expect(receipts.length).toBeGreaterThan(0);
    await documented("POST", "/v1/queues/{queue}/extend", `${q}/extend`, { receipts, visibilityMs: 60_000 });
    await documented("POST", "/v1/queues/{queue}/nack", `${q}/nack`, { receipts: receipts.slice(1) });
    await documented("POST", "/v1/queues/{queue}/ack", `${q}/ack`, { receipts: receipts.slice(0, 1) });
    await documented("GET", "/v1/queues/{queue}", q);
    await documented("PUT", "/v1/queues/{queue}", q, { maxAttempts: 3 });
    await documented("GET", "/v1/queues", "/v1/queues");
    await documented("POST", "/v1/queues/{queue}/peek", `${q}/peek`, {});
    await documented("POST", "/v1/queues/{queue}/redrive", `${q}/redrive`, {});
    await documented("POST", "/v1/queues/{queue}/purge", `${q}/purge`, {});
    await documented("DELETE", "/v1/queues/{queue}", q);
    const bad = await documented("POST", "/v1/queues/{queue}/ack", `${q}/ack`, { receipts: ["bogus"] });
    expect(bad.type).toBe("/problems/validation");
  });

  it("cache, cluster, admin and the service routes", async () => {
    await documented("PUT", "/v1/cache/{key}", "/v1/cache/oa-k?node=n2", { value: { v: 1 } });
    await documented("GET", "/v1/cache/{key}", "/v1/cache/oa-k?node=n1");
    await documented("GET", "/v1/cache/nodes/{node}", "/v1/cache/nodes/n1");
    await documented("DELETE", "/v1/cache/{key}", "/v1/cache/oa-k");
    const missing = await documented("GET", "/v1/cache/{key}", "/v1/cache/oa-k");
    expect(missing.type).toBe("/problems/not-found");
    const cluster = await documented("GET", "/v1/cluster", "/v1/cluster");
    expect(cluster.groups.length).toBeGreaterThan(0);
    await documented("POST", "/v1/admin/heal", "/v1/admin/heal");
    await documented("POST", "/v1/admin/cache/{node}/partition", "/v1/admin/cache/n3/partition", { peers: [] });
    await documented("GET", "/", "/");
    await documented("GET", "/healthz", "/healthz");
    await documented("GET", "/readyz", "/readyz");
    await documented("GET", "/problems/{name}", "/problems/deadlock");
    await documented("GET", "/problems/{name}", "/problems/nope");
    await documented("GET", "/openapi.json", "/openapi.json");
  });
});
