// Worker entry point. A stub until the Raft groups exist: it answers honestly
// that nothing is replicated yet rather than pretending to be ready.
import { Hono } from "hono";
import { problem } from "./problem";

export interface Env {
  API_TOKEN?: string;
  ADMIN_TOKEN?: string;
  FAULT_INJECTION?: string;
  RAFT_GROUPS?: string;
  RAFT_PEERS?: string;
}

const app = new Hono<{ Bindings: Env }>();

app.get("/healthz", (c) => c.json({ ok: true }));

// No group has a leader yet, so the service is never ready.
app.get("/readyz", () => problem("no-quorum", "no Raft group is running yet", { headers: { "retry-after": "1" } }));

app.get("/v1/cluster", (c) => c.json({ groups: [] }));

app.notFound((c) => problem("not-found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));

export default app;
