import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type {
  AdminAccess,
  CacheNodeView,
  GroupView,
  LockEntry,
  Part,
  QueueView,
  Snapshot,
} from "../../dashboard/snapshot.js";
import { MAX_CACHE_LINES } from "../../dashboard/snapshot.js";
import { cacheSettings, clusterShape } from "../../shared/cluster.js";
import type { Labels } from "../../shared/metrics/registry.js";
import { auth } from "../auth.js";
import type { Env } from "../env.js";
import { httpTotals, queueReport } from "../metrics.js";
import { cache } from "./cache.js";
import { cluster } from "./cluster.js";
import { locks } from "./locks.js";
import { queues } from "./queues.js";

/**
 * `GET /dashboard/events`: server-sent events, one `snapshot` (dashboard/snapshot.ts) a second,
 * for the page at `/dashboard`. Each snapshot asks the service's own read routes (GET /v1/cluster,
 * /v1/locks, /v1/queues, /v1/cache/nodes/nK) in process, so it shows exactly what a client
 * would read; called on the route modules directly, these reads are not counted in the request
 * metrics the page draws. The stream needs the API token like any /v1 route (the page streams
 * over fetch, so it sends the header; no token travels in a URL).
 */
export const dashboard = new Hono<{ Bindings: Env }>();

export const SNAPSHOT_EVERY_MS = 1000;
/** Miniflare never tells a Worker that its client went away: end each stream, the page reconnects. */
export const STREAM_FOR_MS = 3 * 60_000;
/** A part not read by then is reported as unavailable for this snapshot (its request goes on). */
const PART_DEADLINE_MS = 1500;

dashboard.get("/events", auth, (c) =>
  streamSSE(c, async (stream) => {
    const endAt = Date.now() + STREAM_FOR_MS;
    let id = 0;
    while (!stream.aborted && Date.now() < endAt) {
      const started = Date.now();
      const snapshot = await sharedSnapshot(c.env);
      await stream.writeSSE({ event: "snapshot", id: String(id++), data: JSON.stringify(snapshot) });
      await stream.sleep(Math.max(0, SNAPSHOT_EVERY_MS - (Date.now() - started)));
    }
  }),
);

/**
 * The snapshot every open page of this isolate sends: taken at most once per SNAPSHOT_EVERY_MS
 * however many pages stream, so fifty tabs cost the groups what one does.
 */
const recent = new WeakMap<Env, { at: number; snapshot: Promise<Snapshot> }>();
export function sharedSnapshot(env: Env, now = Date.now()): Promise<Snapshot> {
  const last = recent.get(env);
  if (last !== undefined && now - last.at < SNAPSHOT_EVERY_MS) return last.snapshot;
  const snapshot = takeSnapshot(env);
  recent.set(env, { at: now, snapshot });
  return snapshot;
}

/** Everything the page shows, read now. */
export async function takeSnapshot(env: Env): Promise<Snapshot> {
  const { nodes } = cacheSettings(env);
  const [groups, lockList, queueList, counters, cacheNodes] = await Promise.all([
    read<{ groups: GroupView[] }>(cluster, "/", env),
    // Stale reads: an open page must not keep idle groups awake (test/workers/dashboard-quiet.test.ts).
    read<{ locks: LockEntry[]; truncated: boolean }>(locks, "/?stale=true", env),
    read<{ queues: Omit<QueueView, "enqueued" | "acked">[] }>(queues, "/?stale=true", env),
    queueCounters(env),
    Promise.all(Array.from({ length: nodes }, (_, i) => cacheNode(env, `n${i + 1}`))),
  ]);
  return {
    at: Date.now(),
    admin: adminAccess(env),
    groups: groups.ok ? { ok: true, value: groups.value.groups } : groups,
    locks: lockList,
    queues: queueList.ok
      ? { ok: true, value: queueList.value.queues.map((q) => ({ ...q, ...counters.get(q.queue) })) }
      : queueList,
    cache: cacheNodes,
    http: httpTotals(notDashboard),
  };
}

type Route = { request: (path: string, init: RequestInit | undefined, env: Env) => Response | Promise<Response> };

/** GET `path` of a route module; its JSON, or what went wrong (a problem's detail, or no answer in time). */
async function read<T>(route: Route, path: string, env: Env): Promise<Part<T>> {
  const answer = (async (): Promise<Part<T>> => {
    const res = await route.request(path, { headers: { accept: "application/json" } }, env);
    const body = (await res.json()) as T & { detail?: string };
    if (res.ok) return { ok: true, value: body };
    return { ok: false, error: `${res.status}: ${body.detail ?? res.statusText}` };
  })().catch((err: unknown): Part<T> => ({ ok: false, error: String(err) }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<Part<T>>((done) => {
    timer = setTimeout(() => done({ ok: false, error: `no answer within ${PART_DEADLINE_MS} ms` }), PART_DEADLINE_MS);
  });
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function cacheNode(env: Env, node: string): Promise<{ node: string } & Part<CacheNodeView>> {
  const info = await read<{
    capacity: number;
    lines: { key: string; state: string }[];
    stats: CacheNodeView["stats"];
  }>(cache, `/nodes/${node}`, env);
  if (!info.ok) return { node, ...info };
  const { capacity, lines, stats } = info.value;
  const states = { M: 0, E: 0, S: 0 };
  for (const l of lines) if (l.state === "M" || l.state === "E" || l.state === "S") states[l.state]++;
  const { hits, misses, evictions, invalidations, hitRate } = stats;
  return {
    node,
    ok: true,
    value: {
      node,
      capacity,
      states,
      lines: lines.slice(0, MAX_CACHE_LINES),
      stats: { hits, misses, evictions, invalidations, hitRate },
    },
  };
}

/** Enqueued and acked totals per queue, summed over the leaders that answered (the rest are left out). */
async function queueCounters(env: Env): Promise<Map<string, { enqueued: number; acked: number }>> {
  const { groups } = clusterShape(env);
  const reports = await Promise.all(Array.from({ length: groups }, (_, g) => queueReport(env, g)));
  const totals = new Map<string, { enqueued: number; acked: number }>();
  // A partial sum would show as a drop and then a burst: report counters only when every group answered.
  if (reports.some((r) => r === undefined)) return totals;
  for (const r of reports) {
    for (const { queue, counts } of r?.queues ?? []) {
      const t = totals.get(queue) ?? { enqueued: 0, acked: 0 };
      t.enqueued += counts.enqueued;
      t.acked += counts.acked;
      totals.set(queue, t);
    }
  }
  return totals;
}

function adminAccess(env: Env): AdminAccess {
  if (env.FAULT_INJECTION !== "true") return "disabled";
  if (env.ADMIN_TOKEN) return "token";
  return env.INSECURE_LOCAL === "true" ? "open" : "closed";
}

/** This isolate's requests and their latency, the dashboard's own routes left out (its reads are not the load). */
const notDashboard = (labels: Labels) => !String(labels.route ?? "").startsWith("/dashboard");
