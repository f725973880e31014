import type { MiddlewareHandler } from "hono";
import { clusterShape, genesisVoters, peerName } from "../shared/cluster.js";
import { Registry } from "../shared/metrics/registry.js";
import type { Env } from "./env.js";
import { peerStub } from "./groups.js";

/** Request counts and latencies of this Worker isolate (each isolate reports its own). */
const http = new Registry();

export const recordRequests: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const start = Date.now();
  await next();
  const labels = { method: c.req.method, route: c.req.routePath, status: c.res.status };
  http.inc("http_requests_total", "HTTP requests answered, by route and status.", labels);
  http.observe(
    "http_request_duration_ms",
    "HTTP request latency in ms.",
    { method: c.req.method, route: c.req.routePath },
    Date.now() - start,
  );
};

/** Prometheus text: this isolate's HTTP metrics and every peer's Raft state, read at scrape time. */
export async function renderMetrics(env: Env): Promise<string> {
  const shape = clusterShape(env);
  const raft = new Registry();
  const peers = genesisVoters(shape);
  await Promise.all(
    Array.from({ length: shape.groups }, (_, g) =>
      Promise.all(
        peers.map(async (id) => {
          const labels = { group: `g${g}`, peer: `p${id}` };
          const s = await peerStub(env, g, id)
            .status(peerName(g, id))
            .catch(() => null);
          raft.set("raft_peer_up", "1 when the peer answers, 0 when it is down.", labels, s === null ? 0 : 1);
          if (s === null) return;
          raft.set("raft_term", "Current Raft term of the peer.", labels, s.term);
          raft.set("raft_commit_index", "Highest log index known committed.", labels, s.commitIndex);
          raft.set("raft_last_index", "Last index of the peer's log.", labels, s.lastIndex);
          raft.set("raft_is_leader", "1 on the group's leader.", labels, s.role === "leader" ? 1 : 0);
        }),
      ),
    ),
  );
  return http.render() + raft.render();
}
