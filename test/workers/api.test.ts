// Auth, fault-injection switch and the OpenAPI document, against the app with chosen settings.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import app from "../../workers/index";

function call(settings: Record<string, string>, method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const req = new Request(`http://example.com${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return app.fetch(req, { ...env, ...settings });
}

const tokens = { API_TOKEN: "user-secret", ADMIN_TOKEN: "admin-secret", FAULT_INJECTION: "true" };

describe("auth", () => {
  it("with API_TOKEN set, /v1 routes need the bearer token (401 otherwise)", async () => {
    const none = await call(tokens, "GET", "/v1/locks/x");
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toBe("application/problem+json");
    expect((await none.json()) as object).toMatchObject({ type: "/problems/unauthorized", status: 401 });
    expect((await call(tokens, "GET", "/v1/locks/x", "wrong")).status).toBe(401);
    expect((await call(tokens, "GET", "/v1/cluster", "user-secret")).status).toBe(200);
  });

  it("admin routes need ADMIN_TOKEN: 403 with the plain token, 401 without one", async () => {
    const plain = await call(tokens, "POST", "/v1/admin/heal", "user-secret");
    expect(plain.status).toBe(403);
    expect(((await plain.json()) as { type: string }).type).toBe("/problems/forbidden");
    expect((await call(tokens, "POST", "/v1/admin/heal")).status).toBe(401);
    expect((await call(tokens, "POST", "/v1/admin/heal", "admin-secret")).status).toBe(200);
    expect((await call(tokens, "DELETE", "/v1/cluster/peers/p9", "user-secret")).status).toBe(403);
    expect((await call(tokens, "POST", "/v1/cluster/peers", "user-secret", { id: "p9" })).status).toBe(403);
  });

  it("without ADMIN_TOKEN, admin and membership routes are closed (403 saying why), unless in the insecure local mode", async () => {
    const closed = { ADMIN_TOKEN: "", API_TOKEN: "", FAULT_INJECTION: "true", INSECURE_LOCAL: "false" };
    const heal = await call(closed, "POST", "/v1/admin/heal");
    expect(heal.status).toBe(403);
    expect(((await heal.json()) as { detail: string }).detail).toContain("ADMIN_TOKEN is not set");
    expect((await call(closed, "DELETE", "/v1/cluster/peers/p9")).status).toBe(403);
    expect((await call(closed, "POST", "/v1/cluster/peers", undefined, { id: "p9" })).status).toBe(403);
    // Reading the cluster is not an admin route.
    expect((await call(closed, "GET", "/v1/cluster")).status).toBe(200);
    // npm start on loopback without ADMIN_TOKEN: open, and it said so on the console.
    expect((await call({ ...closed, INSECURE_LOCAL: "true" }, "POST", "/v1/admin/heal")).status).toBe(200);
  });

  it("health, readiness, metrics and the OpenAPI document need no token", async () => {
    expect((await call(tokens, "GET", "/healthz")).status).toBe(200);
    expect((await call(tokens, "GET", "/openapi.json")).status).toBe(200);
    expect([200, 503]).toContain((await call(tokens, "GET", "/readyz")).status);
  });
});

describe("fault injection switch", () => {
  it("admin routes are 404 unless FAULT_INJECTION=true", async () => {
    const res = await call({ FAULT_INJECTION: "false" }, "POST", "/v1/admin/heal");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { type: string }).type).toBe("/problems/not-found");
    expect((await call({ FAULT_INJECTION: "false" }, "POST", "/v1/admin/peers/p1/crash")).status).toBe(404);
  });

  it("a partition body must name peers on at least two sides", async () => {
    const res = await call({ FAULT_INJECTION: "true" }, "POST", "/v1/admin/partition", undefined, { sides: [["p1"]] });
    expect(res.status).toBe(400);
    const dup = await call({ FAULT_INJECTION: "true" }, "POST", "/v1/admin/partition", undefined, {
      sides: [["p1"], ["p1", "p2"]],
    });
    expect(dup.status).toBe(400);
  });
});

describe("openapi", () => {
  it("documents every contract route with generated request schemas", async () => {
    const doc = (await (await call({}, "GET", "/openapi.json")).json()) as {
      openapi: string;
      components: { schemas: Record<string, unknown> };
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
    };
    expect(doc.openapi).toBe("3.1.0");
    for (const path of [
      "/v1/locks/{resource}/acquire",
      "/v1/locks/{resource}/release",
      "/v1/locks/{resource}/renew",
      "/v1/locks/{resource}",
      "/v1/queues/{queue}/messages",
      "/v1/queues/{queue}/receive",
      "/v1/queues/{queue}/ack",
      "/v1/queues/{queue}/nack",
      "/v1/queues/{queue}/extend",
      "/v1/queues/{queue}/redrive",
      "/v1/queues/{queue}",
      "/v1/cluster",
      "/v1/cluster/peers",
      "/v1/cluster/peers/{id}",
      "/v1/admin/partition",
      "/v1/admin/heal",
      "/v1/admin/peers/{id}/crash",
      "/v1/admin/peers/{id}/restart",
      "/healthz",
      "/readyz",
      "/metrics",
      "/openapi.json",
      "/v1/queues",
      "/v1/queues/{queue}/peek",
      "/v1/queues/{queue}/purge",
      "/v1/locks",
      "/v1/admin/peers/{id}/clock",
      "/",
      "/problems/{name}",
      "/dashboard",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    // Every operation has a tag and an operationId, unique across the document (what client generators need).
    const ids: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item as Record<string, { operationId?: string; tags?: string[] }>)) {
        if (!["get", "put", "post", "delete", "patch"].includes(method)) continue;
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z]+[A-Za-z0-9]*$/);
        expect(op.tags?.length, `${method} ${path}`).toBe(1);
        ids.push(op.operationId as string);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain("postLocksByResourceAcquire");
    // Request bodies are named components, generated from the zod schemas the routes parse with.
    const body = doc.paths["/v1/locks/{resource}/acquire"]?.post?.requestBody?.content["application/json"]?.schema;
    expect(body).toEqual({ $ref: "#/components/schemas/AcquireBody" });
    const acquire = doc.components.schemas.AcquireBody;
    expect(acquire).toMatchObject({
      type: "object",
      properties: { ttlMs: { minimum: 100, maximum: 3_600_000 }, mode: { $ref: "#/components/schemas/LockMode" } },
      required: ["owner"],
    });
    expect(doc.components.schemas.LockMode).toMatchObject({ enum: ["exclusive", "shared"] });
  });
});

describe("metrics", () => {
  it("GET /metrics is Prometheus text with request counts and each peer's Raft state", async () => {
    await call({}, "GET", "/healthz");
    const res = await call({}, "GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("# TYPE http_requests_total counter");
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/healthz",status="200"\} [1-9]/);
    for (const g of ["g0", "g1", "g2"]) {
      for (const p of ["p1", "p2", "p3"]) expect(text).toContain(`raft_peer_up{group="${g}",peer="${p}"} 1`);
    }
    expect(text).toMatch(/raft_term\{group="g0",peer="p1"\} \d+/);
  });
});
