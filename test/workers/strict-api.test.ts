// The API describes itself and refuses what it does not understand: unknown fields are 400 naming
// them (with a guess), a wrong method is 405 with Allow, problem types are URIs with a page,
// and GET / links to what exists.
import { describe, expect, it } from "vitest";
import { closest } from "../../workers/http";
import { call, get, post } from "./client";

describe("strict input", () => {
  it("an unknown field is 400 naming it, with the field meant, and changes nothing", async () => {
    const r = await post("/v1/locks/strict-a/acquire", { owner: "o1", ttl: 600_000 });
    expect(r.status).toBe(400);
    expect(r.json.type).toBe("/problems/validation");
    expect(r.json.detail).toContain("unknown field `ttl` (did you mean `ttlMs`?)");
    // Nothing was granted: the lock is free.
    expect((await get("/v1/locks/strict-a")).json.holders).toEqual([]);
  });

  it("names unknown fields inside arrays too, with their path", async () => {
    const r = await post("/v1/queues/strict-q/messages", { messages: [{ body: 1 }, { body: 2, delay: 5 }] });
    expect(r.status).toBe(400);
    expect(r.json.detail).toContain("messages.1");
    expect(r.json.detail).toContain("unknown field `delay` (did you mean `delayMs`?)");
    const depth = await get("/v1/queues/strict-q");
    expect(depth.json.visible ?? 0).toBe(0);
  });

  it("suggests only near misses", () => {
    expect(closest("ttl", ["owner", "mode", "ttlMs", "waitMs"])).toBe("ttlMs");
    expect(closest("ownr", ["owner", "mode"])).toBe("owner");
    expect(closest("visibilityMS", ["max", "visibilityMs", "waitMs"])).toBe("visibilityMs");
    expect(closest("colour", ["owner", "mode", "ttlMs"])).toBeUndefined();
    expect(closest("x", ["max", "mode"])).toBeUndefined();
  });
});

describe("a self-describing API", () => {
  it("a known path with the wrong method is 405 with Allow", async () => {
    const r = await call("GET", "/v1/locks/x/acquire");
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("POST");
    expect(r.json.type).toBe("/problems/method-not-allowed");
    const put = await call("PUT", "/v1/locks/x");
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")?.split(", ")).toContain("GET");
    // A path no route has stays 404.
    expect((await call("GET", "/v1/nothing/here")).status).toBe(404);
  });

  it("problem types are URIs whose page explains them", async () => {
    const r = await post("/v1/locks/strict-b/release", { owner: "nobody" });
    expect(r.json.type).toBe("/problems/not-holder");
    const page = await get(r.json.type as string);
    expect(page.status).toBe(200);
    expect(page.json).toMatchObject({ type: "/problems/not-holder", status: 409, title: "Not the holder" });
    expect(String(page.json.description).length).toBeGreaterThan(20);
    expect((await get("/problems/no-such-thing")).status).toBe(404);
  });

  it("GET /problems lists every problem type, each with a page that answers", async () => {
    const index = await get("/problems");
    expect(index.status).toBe(200);
    const problems = index.json.problems as { type: string; status: number }[];
    const types = problems.map((p) => p.type);
    for (const name of ["validation", "lock-conflict", "deadlock", "not-holder", "no-quorum", "timeout"]) {
      expect(types).toContain(`/problems/${name}`);
    }
    for (const p of problems) expect((await get(p.type)).json).toMatchObject({ type: p.type, status: p.status });
  });

  it("GET / is an index whose links all answer", async () => {
    const index = await get("/");
    expect(index.status).toBe(200);
    const links = index.json.links as Record<string, string>;
    expect(links.openapi).toBe("/openapi.json");
    expect(links.dashboard).toBe("/dashboard");
    for (const [name, path] of Object.entries(links)) {
      const res = await call("GET", path);
      expect([200, 503], `${name} ${path}`).toContain(res.status); // /readyz may be 503 while electing
    }
    const dashboard = await call("GET", "/dashboard");
    expect(dashboard.headers.get("content-type")).toContain("text/html");
  });
});

describe("receipts", () => {
  it("a malformed receipt is 400 and acks nothing; a well-formed stale one counts as not acked", async () => {
    await post("/v1/queues/strict-r/messages", { messages: [{ body: "m" }] });
    const got = await post("/v1/queues/strict-r/receive", { max: 1 });
    const receipt = got.json.messages[0].receipt as string;
    for (const route of ["ack", "nack", "extend"]) {
      const body = route === "extend" ? { visibilityMs: 5000 } : {};
      const bad = await post(`/v1/queues/strict-r/${route}`, { receipts: [receipt, "bogus"], ...body });
      expect(bad.status, route).toBe(400);
      expect(bad.json.detail, route).toContain("receipts.1");
    }
    // Nothing above acked it: the real receipt still acks once, then is stale.
    expect((await post("/v1/queues/strict-r/ack", { receipts: [receipt] })).json).toEqual({ acked: 1 });
    expect((await post("/v1/queues/strict-r/ack", { receipts: [receipt] })).json).toEqual({ acked: 0 });
    expect((await post("/v1/queues/strict-r/ack", { receipts: ["0:999999:1"] })).json).toEqual({ acked: 0 });
  });
});
