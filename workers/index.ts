// Worker entry point: HTTP routes (shared/API.md) in front of the Raft peers.
import { Hono } from "hono";
import { clusterShape } from "../shared/cluster.js";
import { auth } from "./auth.js";
import type { Env } from "./env.js";
import { callGroup } from "./groups.js";
import { idempotency } from "./idempotency.js";
import { recordRequests, renderMetrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";
import { problem } from "./problem.js";
import { admin } from "./routes/admin.js";
import { cache } from "./routes/cache.js";
import { cluster } from "./routes/cluster.js";
import { internal } from "./routes/internal.js";
import { locks } from "./routes/locks.js";
import { queues } from "./routes/queues.js";

export { CacheNode } from "../objects/cache-node.js";
export { DeadlockDetector } from "../objects/deadlock-detector.js";
export { RaftPeer } from "../objects/raft-peer.js";
export type { Env };

const app = new Hono<{ Bindings: Env }>();

app.use("*", recordRequests);

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

app.notFound((c) => problem("not-found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
app.onError((err) => {
  console.error(err);
  return Response.json(
    { type: "internal", title: "Internal error", status: 500, detail: String(err) },
    { status: 500, headers: { "content-type": "application/problem+json" } },
  );
});

export default app;
