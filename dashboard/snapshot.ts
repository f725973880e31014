/**
 * One event of `GET /dashboard/events` (workers/routes/dashboard.ts): what the cluster looks like
 * now, as the service's own read routes answer it. Counters are cumulative; the page turns two
 * snapshots into rates (model.ts), so the stream keeps no state per connection.
 */
import type { ClusterStatus, LockList } from "../client/types.js";
import type { HistogramData } from "../shared/metrics/histogram.js";

/** A part the stream could read, or why not (a group without quorum answers 503 for a while). */
export type Part<T> = { ok: true; value: T } | { ok: false; error: string };

/** One entry of `GET /v1/cluster` (the route's own schema, as the client library types it). */
export type GroupView = ClusterStatus["groups"][number];
export type PeerView = GroupView["peers"][number];

/** One entry of `GET /v1/locks`. */
export type LockEntry = LockList["locks"][number];

/** A queue: its depth (`GET /v1/queues`) and its message counters (summed over its groups' leaders). */
export interface QueueView {
  queue: string;
  visible: number;
  inflight: number;
  delayed: number;
  dlq: number;
  /** Cumulative; absent when the leaders' counters could not be read this time. */
  enqueued?: number;
  acked?: number;
}

export interface CacheNodeView {
  node: string;
  capacity: number;
  /** Lines by MESI state (invalid lines are not held, so not counted). */
  states: { M: number; E: number; S: number };
  /** The first lines, at most `MAX_CACHE_LINES` of them. */
  lines: { key: string; state: string }[];
  stats: { hits: number; misses: number; evictions: number; invalidations: number; hitRate: number };
}

/** Where the admin actions stand, as far as the page needs to know to offer them. */
export type AdminAccess =
  /** FAULT_INJECTION is not "true": the fault routes answer 404. */
  | "disabled"
  /** `npm start` on loopback without ADMIN_TOKEN: open. */
  | "open"
  /** ADMIN_TOKEN is set: the page must send it. */
  | "token"
  /** No ADMIN_TOKEN and not the insecure local mode: every admin route answers 403. */
  | "closed";

export interface Snapshot {
  /** The Worker's clock when the snapshot was taken (ms). */
  at: number;
  admin: AdminAccess;
  groups: Part<GroupView[]>;
  locks: Part<{ locks: LockEntry[]; truncated: boolean }>;
  queues: Part<QueueView[]>;
  /** Every cache node n1..nN, each read on its own (a crashed node fails alone). */
  cache: ({ node: string } & Part<CacheNodeView>)[];
  /** This Worker isolate's requests (the dashboard's own left out), cumulative since it started. */
  http: { requests: number; latency: HistogramData };
}

/** Cache lines sent per node: enough to see the states at work without shipping 1024 lines a second. */
export const MAX_CACHE_LINES = 48;
