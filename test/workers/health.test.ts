// Runs inside workerd: `exports.default` is the Worker from wrangler.toml's `main`.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("health routes", () => {
  it("GET /healthz answers 200", async () => {
    const res = await exports.default.fetch("http://example.com/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("GET /readyz is 503 no-quorum until every group has elected a leader, then 200", async () => {
    // A fresh cluster: the first call wakes the peers, and an election takes at least 0.5 s.
    const res = await exports.default.fetch("http://example.com/readyz");
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ type: "/problems/no-quorum", status: 503 });
    let status = 503;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await exports.default.fetch("http://example.com/readyz")).status;
    }
    expect(status).toBe(200);
  });

  it("unknown routes are problem+json 404", async () => {
    const res = await exports.default.fetch("http://example.com/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await res.json()).toMatchObject({ type: "/problems/not-found", title: "Not found", status: 404 });
  });
});
