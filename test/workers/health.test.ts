// Runs inside workerd: `exports.default` is the Worker from wrangler.toml's `main`.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("worker stub", () => {
  it("GET /healthz answers 200", async () => {
    const res = await exports.default.fetch("http://example.com/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("GET /readyz is 503 no-quorum while no group runs", async () => {
    const res = await exports.default.fetch("http://example.com/readyz");
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ type: "no-quorum", status: 503 });
  });

  it("unknown routes are problem+json 404", async () => {
    const res = await exports.default.fetch("http://example.com/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await res.json()).toMatchObject({ type: "not-found", title: "Not found", status: 404 });
  });
});
