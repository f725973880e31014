// Worker entry point: HTTP routes (shared/API.md) in front of the Raft peers.
import { Hono } from "hono";
import { clusterShape } from "../shared/cluster.js";
import { auth } from "./auth.js";
import type { Env } from "./env.js";
import { callGroup } from "./groups.js";
import { idempotency } from "./idempotency.js";
import { recordRequests, renderMetrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { DASHBOARD_HTML } from "./pages/dashboard.js";
import { problem, problemPage, problemPages } from "./problem.js";
import { admin } from "./routes/admin.js";
import { cache } from "./routes/cache.js";
import { cluster } from "./routes/cluster.js";
import { dashboard } from "./routes/dashboard.js";
import { internal } from "./routes/internal.js";
import { locks } from "./routes/locks.js";
import { queues } from "./routes/queues.js";

export { CacheNode } from "../objects/cache-node.js";
export { DeadlockDetector } from "../objects/deadlock-detector.js";
export { RaftPeer } from "../objects/raft-peer.js";
export type { Env };

const app = new Hono<{ Bindings: Env }>();

app.use("*", recordRequests);

/** A short index of the service: what it is and where to look next. */
app.get("/", (c) =>
  c.json({
    service: "raft-locks",
    version: "v1",
    description: "Raft-replicated locks, queues and a coherent cache over HTTP",
    links: {
      openapi: "/openapi.json",
      dashboard: "/dashboard",
      health: "/healthz",
      ready: "/readyz",
      metrics: "/metrics",
      cluster: "/v1/cluster",
      problems: "/problems",
    },
  }),
);

/** Every problem type, each with its page: what the errors of this API mean. */
app.get("/problems", (c) => c.json({ problems: problemPages() }));

/** The page a problem's `type` URI names: what the error means and what to do. */
app.get("/problems/:name", (c) => {
  const page = problemPage(c.req.param("name"));
  if (page === undefined) return problem("not-found", `no problem type ${c.req.param("name")}`);
  if ((c.req.header("accept") ?? "").includes("text/html")) {
    const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    return c.html(
      `<!doctype html><meta charset="utf-8"><title>${esc(page.title)}</title>` +
        `<h1>${esc(page.title)} (${page.status})</h1><p><code>${esc(page.type)}</code></p><p>${esc(page.description)}</p>`,
    );
  }
  return c.json(page);
});

app.get("/dashboard", (c) => c.html(DASHBOARD_HTML));
app.route("/dashboard", dashboard);

app.get("/healthz", (c) => c.json({ ok: true }));

app.get("/metrics", async (c) =>
  c.body(await renderMetrics(c.env), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
);

/** Ready once every group has a leader (asking also wakes the peers of a fresh cluster). */
app.get("/readyz", async (c) => {
  const { groups } = clusterShape(c.env);
  const results = await Promise.all(
    Array.from({ length: groups }, (_, g) =>
      callGroup(
        c.env,
        g,
        async (peer, name) => {
          const s = await peer.status(name);
          if (s === null) return { ok: false, error: "down" } as const;
          return s.role === "leader"
            ? ({ ok: true, value: s.term } as const)
            : ({ ok: false, error: "not-leader", leader: s.leader } as const);
        },
        300,
      ),
    ),
  );
  const missing = results.flatMap((r, g) => (r.ok ? [] : [`g${g}`]));
  if (missing.length > 0) {
    return problem("no-quorum", `no leader yet in ${missing.join(", ")}`, { headers: { "retry-after": "1" } });
  }
  return c.json({ ready: true, groups });
});

app.get("/openapi.json", (c) => c.json(openApiDocument()));

// Node-to-node calls (node mode): signed with CLUSTER_SECRET, outside the public API's auth.
app.route("/internal", internal);

app.use("/v1/*", auth);
app.use("/v1/*", idempotency);
app.route("/v1/locks", locks);
app.route("/v1/queues", queues);
app.route("/v1/cache", cache);
app.route("/v1/cluster", cluster);
app.route("/v1/admin", admin);

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  const allow = allowedMethods(path);
  if (allow.length > 0) {
    return problem("method-not-allowed", `${c.req.method} is not a method of ${path}; it takes ${allow.join(", ")}`, {
      headers: { allow: allow.join(", ") },
    });
  }
  return problem("not-found", `no route for ${c.req.method} ${path}`);
});
app.onError((err) => {
  console.error(err);
  return problem("internal", String(err));
});

/** The methods some route answers on `path` (empty: no route has the path at all). */
function allowedMethods(path: string): string[] {
  const methods = new Set<string>();
  for (const route of app.routes) {
    if (route.method === "ALL" || !pathMatches(route.path, path)) continue;
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
  }
  return [...methods];
}

/** Hono's path patterns: `:param` (optionally `:param{regex}`) is one segment, a trailing `*` the rest. */
function pathMatches(pattern: string, path: string): boolean {
  const want = pattern.split("/").filter((p) => p !== "");
  const got = path.split("/").filter((p) => p !== "");
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string;
    if (w === "*") return true;
    const g = got[i];
    if (g === undefined) return false;
    if (!w.startsWith(":") && w !== g) return false;
  }
  return want.length === got.length;
}

export default app;
