import type { MiddlewareHandler } from "hono";
import { cacheSettings, clusterShape, genesisVoters, peerName } from "../shared/cluster.js";
import type { LockMetrics } from "../shared/locks/lock-service.js";
import {
  emptyHistogram,
  type HistogramData,
  mergeHistogram,
  WAIT_BUCKETS_SECONDS,
} from "../shared/metrics/histogram.js";
import { type Labels, Registry } from "../shared/metrics/registry.js";
import type { QueueCounts } from "../shared/queue/queue-service.js";
import type { NodeId, StateRole } from "../shared/raft/index.js";
import type { ReplicaMetrics } from "../shared/replica/replica.js";
import type { Env } from "./env.js";
import { cacheNodeStub, callGroup, peerStub } from "./groups.js";

/**
 * `/metrics` in the Prometheus text format. The Worker gathers at scrape time what each part
 * knows and renders it with shared/metrics/registry.ts (which refuses names against the
 * conventions); where each figure comes from, and when it starts again from zero:
 *
 * - `http_*`, `process_*`: this Worker isolate (each isolate reports its own; a new isolate starts at 0).
 * - `raft_peer_up`, `raft_role`, `raft_is_leader`, `raft_term`, `raft_commit_index`, `raft_last_index`:
 *   every peer's status, asked of every peer.
 * - `raft_proposals_total`, `raft_commit_latency_seconds`, `raft_elections_total`,
 *   `raft_leader_changes_seen_total`, `raft_snapshots_total`: the replica counters of each group's
 *   leader (shared/replica/replica.ts), labelled with that leader's `peer`; in the peer's memory,
 *   so they start at 0 when its object restarts, and a leader change moves them to another series.
 * - `lock_*`: counted by every replica of the group as it applies entries (LockCounters in
 *   shared/locks/lock-service.ts), reported by the leader: a leader change does not reset them,
 *   but a leader that restarted more recently than the last one reports lower values.
 *   `lock_active` and `lock_waiting` are the replicated lock table now.
 * - `queue_*_messages_total`: the same way, per queue (QueueCounters in shared/queue/queue-service.ts),
 *   summed over the groups that hold the queue's shards; the depth gauges are the replicated
 *   tables now; `queue_processing_seconds` is the leader's memory only (delivery and ack both
 *   served by it): it starts again at every leader change.
 * - `cache_*`: each cache node's counters (they start at 0 when the node restarts).
 *
 * workerd exposes neither CPU time nor memory use to a Worker, so there are no process CPU or
 * memory metrics (see docs/operations.md).
 */

/** Request counts and latencies of this Worker isolate (each isolate reports its own). */
const http = new Registry();

/** When this isolate served its first request (Date.now() reads 0 at a Worker's global scope). */
let startedAt: number | undefined;
const started = (): number => {
  startedAt ??= Date.now();
  return startedAt;
};

export const recordRequests: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const start = Date.now();
  started();
  await next();
  const labels = { method: c.req.method, route: c.req.routePath, status: c.res.status };
  http.inc("http_requests_total", "HTTP requests answered, by route and status.", labels);
  http.observe(
    "http_request_duration_seconds",
    "HTTP request latency in seconds (workerd's clock advances only across I/O).",
    { method: c.req.method, route: c.req.routePath },
    (Date.now() - start) / 1000,
  );
};

/**
 * This isolate's request count and latency over the routes `keep` accepts (by their labels), read
 * from the same series `/metrics` renders: the dashboard's throughput and latency charts.
 */
export function httpTotals(keep: (labels: Labels) => boolean): { requests: number; latency: HistogramData } {
  return {
    requests: http.total("http_requests_total", keep),
    latency: http.merged("http_request_duration_seconds", keep),
  };
}

/** How long a scrape waits for a group's leader before leaving that group's counters out. */
const LEADER_DEADLINE_MS = 1000;

const ROLES: StateRole[] = ["follower", "preCandidate", "candidate", "leader"];

interface PeerState {
  group: number;
  id: NodeId;
  status: { role: string; term: number; commitIndex: number; lastIndex: number } | null;
}

interface LeaderReport {
  peer: NodeId;
  locks: LockMetrics;
  raft: ReplicaMetrics;
}

interface QueueReport {
  depths: { queue: string; visible: number; inflight: number; delayed: number }[];
  queues: { queue: string; counts: QueueCounts; processingSeconds: HistogramData }[];
}

/** Prometheus text: this isolate's HTTP metrics, and the cluster's state and counters read at scrape time. */
export async function renderMetrics(env: Env): Promise<string> {
  const shape = clusterShape(env);
  const groups = Array.from({ length: shape.groups }, (_, g) => g);
  const [peers, leaders, queues, cache] = await Promise.all([
    Promise.all(
      groups.flatMap((group) =>
        genesisVoters(shape).map(
          async (id): Promise<PeerState> => ({
            group,
            id,
            status: await peerStub(env, group, id)
              .status(peerName(group, id))
              .catch(() => null),
          }),
        ),
      ),
    ),
    Promise.all(groups.map((g) => leaderReport(env, g))),
    Promise.all(groups.map((g) => queueReport(env, g))),
    cacheReports(env),
  ]);
  const out = new Registry();
  processMetrics(out);
  peerMetrics(out, peers);
  groups.forEach((g) => {
    out.set(
      "raft_group_metrics_up",
      "1 when the group's leader answered this scrape (its Raft, lock and queue counters are in it).",
      { group: `g${g}` },
      leaders[g] !== undefined && queues[g] !== undefined ? 1 : 0,
    );
  });
  leaders.forEach((r, g) => {
    if (r !== undefined) leaderMetrics(out, `g${g}`, r);
  });
  queueMetrics(out, queues);
  cacheMetrics(out, cache);
  return http.render() + out.render();
}

function processMetrics(out: Registry): void {
  const start = started();
  out.set(
    "process_start_time_seconds",
    "When this Worker isolate served its first request, in Unix seconds.",
    {},
    Math.floor(start / 1000),
  );
  out.set(
    "process_uptime_seconds",
    "Seconds since this Worker isolate served its first request.",
    {},
    (Date.now() - start) / 1000,
  );
}

function peerMetrics(out: Registry, peers: PeerState[]): void {
  for (const { group, id, status: s } of peers) {
    const labels = { group: `g${group}`, peer: `p${id}` };
    out.set("raft_peer_up", "1 when the peer answers, 0 when it is down or unreachable.", labels, s === null ? 0 : 1);
    if (s === null) continue;
    for (const role of ROLES) {
      out.set(
        "raft_role",
        "1 for the peer's current Raft role, 0 for the others.",
        { ...labels, role },
        s.role === role ? 1 : 0,
      );
    }
    out.set("raft_is_leader", "1 on the group's leader.", labels, s.role === "leader" ? 1 : 0);
    out.set("raft_term", "Current Raft term of the peer.", labels, s.term);
    out.set("raft_commit_index", "Highest log index the peer knows committed.", labels, s.commitIndex);
    out.set("raft_last_index", "Last index of the peer's log.", labels, s.lastIndex);
  }
}

/** The lock and Raft counters of `group`'s leader; undefined when no leader answered in time. */
async function leaderReport(env: Env, group: number): Promise<LeaderReport | undefined> {
  const r = await callGroup(
    env,
    group,
    (peer, name) => peer.lock(name, { op: "metrics", resource: "" }, ""),
    LEADER_DEADLINE_MS,
  ).catch(() => undefined);
  if (r === undefined || !r.ok || r.value.type !== "metrics") return undefined;
  return r.value;
}

function leaderMetrics(out: Registry, group: string, r: LeaderReport): void {
  const peer = { group, peer: `p${r.peer}` };
  const raft = r.raft;
  out.inc("raft_proposals_total", "Commands proposed by the peer as leader.", peer, raft.proposals);
  out.histogram(
    "raft_commit_latency_seconds",
    "From a proposal entering Raft to its apply on the leader, in seconds.",
    peer,
    raft.commitSeconds,
  );
  out.inc(
    "raft_elections_total",
    "Elections the peer started (campaigns; pre-votes not counted).",
    peer,
    raft.elections,
  );
  out.inc("raft_leader_changes_seen_total", "Times the peer learned of a new leader.", peer, raft.leaderChanges);
  const snapshots = "Snapshots: created by the peer (log compaction) or installed from its leader.";
  out.inc("raft_snapshots_total", snapshots, { ...peer, kind: "created" }, raft.snapshotsCreated);
  out.inc("raft_snapshots_total", snapshots, { ...peer, kind: "installed" }, raft.snapshotsInstalled);

  const l = r.locks;
  const labels = { group };
  out.inc(
    "lock_acquired_total",
    "Locks granted (at once or to a waiter), upgrades and downgrades included.",
    labels,
    l.acquired,
  );
  out.inc("lock_released_total", "Locks released by their holder.", labels, l.released);
  out.inc(
    "lock_deadlocks_total",
    "Acquires refused as deadlocks, and waits cancelled as cross-group deadlock victims.",
    labels,
    l.deadlocks,
  );
  out.inc("lock_wait_timeouts_total", "Waits that ran out before a grant.", labels, l.timedOut);
  out.histogram(
    "lock_wait_seconds",
    "How long granted acquires waited, in seconds (0 when granted at once).",
    labels,
    l.waitSeconds,
  );
  out.set("lock_active", "Locks held now (each holder of a shared lock counts).", labels, l.held);
  out.set("lock_waiting", "Acquires waiting now.", labels, l.waiting);
}

/** The queue counters and depths of `group`'s shards, from its leader; undefined when no leader answered. */
export async function queueReport(env: Env, group: number): Promise<QueueReport | undefined> {
  const r = await callGroup(
    env,
    group,
    (peer, name) => peer.queues(name, { op: "metrics" }, ""),
    LEADER_DEADLINE_MS,
  ).catch(() => undefined);
  if (r === undefined || !r.ok || r.value.type !== "metrics") return undefined;
  return r.value;
}

const COUNTER_HELP: Record<keyof QueueCounts, [string, string]> = {
  enqueued: ["queue_enqueued_messages_total", "Messages enqueued (duplicates not counted)."],
  dequeued: ["queue_dequeued_messages_total", "Deliveries by receive (a redelivery counts again)."],
  redelivered: ["queue_redelivered_messages_total", "Deliveries of a message delivered before."],
  acked: ["queue_acked_messages_total", "Messages acked."],
  deadLettered: ["queue_dead_lettered_messages_total", "Messages moved to the queue's dead-letter queue."],
  redriven: ["queue_redriven_messages_total", "Messages moved back from the queue's dead-letter queue."],
};

/** Every queue any group's leader knows, summed over the groups: each series is present, at 0 when empty. */
function queueMetrics(out: Registry, reports: (QueueReport | undefined)[]): void {
  const zero = (): QueueCounts => ({
    enqueued: 0,
    dequeued: 0,
    redelivered: 0,
    acked: 0,
    deadLettered: 0,
    redriven: 0,
  });
  const queues = new Map<
    string,
    { counts: QueueCounts; depth: { visible: number; inflight: number; delayed: number }; processing: HistogramData }
  >();
  const of = (queue: string) => {
    let q = queues.get(queue);
    if (q === undefined) {
      q = {
        counts: zero(),
        depth: { visible: 0, inflight: 0, delayed: 0 },
        processing: emptyHistogram(WAIT_BUCKETS_SECONDS),
      };
      queues.set(queue, q);
    }
    return q;
  };
  for (const r of reports) {
    if (r === undefined) continue;
    for (const d of r.depths) {
      const q = of(d.queue);
      q.depth.visible += d.visible;
      q.depth.inflight += d.inflight;
      q.depth.delayed += d.delayed;
    }
    for (const m of r.queues) {
      const q = of(m.queue);
      for (const k of Object.keys(q.counts) as (keyof QueueCounts)[]) q.counts[k] += m.counts[k];
      mergeHistogram(q.processing, m.processingSeconds);
    }
  }
  // A queue's dead-letter queue is a queue of its own, known with it.
  for (const name of [...queues.keys()]) if (!name.endsWith(".dlq")) of(`${name}.dlq`);
  const size = (d: { visible: number; inflight: number; delayed: number }) => d.visible + d.inflight + d.delayed;
  for (const [queue, q] of [...queues].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const labels = { queue };
    out.set("queue_depth_messages", "Messages held: visible, in flight and delayed.", labels, size(q.depth));
    out.set("queue_visible_messages", "Messages ready to be received.", labels, q.depth.visible);
    out.set("queue_inflight_messages", "Messages received and not yet acked (invisible).", labels, q.depth.inflight);
    out.set("queue_delayed_messages", "Messages waiting for their delay to pass.", labels, q.depth.delayed);
    if (!queue.endsWith(".dlq")) {
      const dlq = queues.get(`${queue}.dlq`);
      out.set("queue_dlq_messages", "Messages in the queue's dead-letter queue.", labels, dlq ? size(dlq.depth) : 0);
    }
    for (const [k, [name, help]] of Object.entries(COUNTER_HELP))
      out.inc(name, help, labels, q.counts[k as keyof QueueCounts]);
    out.histogram(
      "queue_processing_seconds",
      "From a delivery to its ack, in seconds (both served by the current leader of the shard's group).",
      labels,
      q.processing,
    );
  }
}

type CacheInfo = Awaited<ReturnType<ReturnType<typeof cacheNodeStub>["info"]>>;

async function cacheReports(env: Env): Promise<{ node: string; info: CacheInfo }[]> {
  const { nodes } = cacheSettings(env);
  return Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      const node = `n${i + 1}`;
      const info = await cacheNodeStub(env, node)
        .info(node)
        .catch(() => null);
      return { node, info };
    }),
  );
}

/** Every cache node's counters (they restart from zero when the node crashes or is evicted from memory). */
function cacheMetrics(out: Registry, reports: { node: string; info: CacheInfo }[]): void {
  const help = {
    hits: "Reads served by the node alone.",
    misses: "Reads that asked the directory.",
    evictions: "Lines evicted by the LRU.",
    invalidations: "Invalidations received from the directory.",
    writebacks: "M lines evicted or demoted to S by a read elsewhere.",
    updates: "New values pushed by update-mode writes elsewhere.",
  } as const;
  for (const { node, info } of reports) {
    out.set("cache_node_up", "1 when the cache node answers.", { node }, info === null ? 0 : 1);
    if (info === null) continue;
    for (const [k, text] of Object.entries(help)) {
      out.inc(`cache_${k}_total`, text, { node }, info.stats[k as keyof typeof help]);
    }
    out.set(
      "cache_hit_ratio",
      "hits / (hits + misses) since the node started (0 before any read).",
      { node },
      info.stats.hitRate,
    );
    out.set("cache_lines", "Valid lines (M, E or S) held.", { node }, info.lines.length);
  }
}
