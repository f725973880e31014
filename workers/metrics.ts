import type { MiddlewareHandler } from "hono";
import { cacheSettings, clusterShape, genesisVoters, peerName } from "../shared/cluster.js";
import { Registry } from "../shared/metrics/registry.js";
import type { Env } from "./env.js";
import { cacheNodeStub, callGroup, peerStub } from "./groups.js";

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
  await Promise.all([queueMetrics(env, raft, shape.groups), cacheMetrics(env, raft)]);
  return http.render() + raft.render();
}

/** Per-queue depth, in flight, delayed and DLQ size, and message totals, from every group's leader. */
async function queueMetrics(env: Env, out: Registry, groups: number): Promise<void> {
  const replies = await Promise.all(
    Array.from({ length: groups }, (_, g) =>
      callGroup(env, g, (peer, name) => peer.queues(name, { op: "metrics" }, ""), 1000),
    ),
  );
  const depth = new Map<string, { visible: number; inflight: number; delayed: number }>();
  const totals = { enqueued: 0, delivered: 0, redelivered: 0, acked: 0, deadLettered: 0 };
  for (const r of replies) {
    if (!r.ok || r.value.type !== "metrics") continue;
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.value.totals[k];
    for (const d of r.value.depths) {
      const sum = depth.get(d.queue) ?? { visible: 0, inflight: 0, delayed: 0 };
      depth.set(d.queue, {
        visible: sum.visible + d.visible,
        inflight: sum.inflight + d.inflight,
        delayed: sum.delayed + d.delayed,
      });
    }
  }
  const size = (q: string) => {
    const d = depth.get(q);
    return d === undefined ? 0 : d.visible + d.inflight + d.delayed;
  };
  for (const [queue, d] of depth) {
    if (!queue.endsWith(".dlq")) {
      out.set("queue_dlq_messages", "Messages in the queue's dead-letter queue.", { queue }, size(`${queue}.dlq`));
    }
    out.set("queue_visible_messages", "Messages ready to be received.", { queue }, d.visible);
    out.set("queue_inflight_messages", "Messages received and not yet acked (invisible).", { queue }, d.inflight);
    out.set("queue_delayed_messages", "Messages waiting for their delay to pass.", { queue }, d.delayed);
  }
  const help: Record<keyof typeof totals, string> = {
    enqueued: "Messages enqueued (duplicates not counted).",
    delivered: "Deliveries by receive.",
    redelivered: "Deliveries of a message delivered before.",
    acked: "Messages acked.",
    deadLettered: "Messages moved to a dead-letter queue.",
  };
  for (const [k, text] of Object.entries(help)) {
    const name = `queue_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_messages_total`;
    out.inc(name, text, {}, totals[k as keyof typeof totals]);
  }
}

/** Every cache node's counters (they restart from zero when the node crashes or is evicted from memory). */
async function cacheMetrics(env: Env, out: Registry): Promise<void> {
  const { nodes } = cacheSettings(env);
  const help = {
    hits: "Reads served by the node alone.",
    misses: "Reads that asked the directory.",
    evictions: "Lines evicted by the LRU.",
    invalidations: "Invalidations received from the directory.",
    writebacks: "M lines evicted or demoted to S by a read elsewhere.",
    updates: "New values pushed by update-mode writes elsewhere.",
  } as const;
  await Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      const node = `n${i + 1}`;
      const info = await cacheNodeStub(env, node)
        .info(node)
        .catch(() => null);
      out.set("cache_node_up", "1 when the cache node answers.", { node }, info === null ? 0 : 1);
      if (info === null) return;
      for (const [k, text] of Object.entries(help)) {
        out.inc(`cache_${k}_total`, text, { node }, info.stats[k as keyof typeof help]);
      }
      out.set("cache_hit_rate", "hits / (hits + misses) since the node started.", { node }, info.stats.hitRate);
      out.set("cache_lines", "Valid lines (M, E or S) held.", { node }, info.lines.length);
    }),
  );
}
