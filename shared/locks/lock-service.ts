import type { GroupResult } from "../group/state.js";
import {
  copyHistogram,
  emptyHistogram,
  type HistogramData,
  observe,
  WAIT_BUCKETS_SECONDS,
} from "../metrics/histogram.js";
import type { NodeId } from "../raft/index.js";
import type { Entry } from "../raft/types.js";
import { encodeCommand } from "../replica/dedup.js";
import type { Replica, ReplicaMetrics } from "../replica/replica.js";
import type { LockTable } from "./lock-table.js";
import type { LockApplied, LockCommand, LockEvent, LockMode, LockResult, LockView } from "./types.js";
import type { ResourceWaitEdge } from "./wait-for-graph.js";

/** What a client asks of the lock service (the routes' bodies, validated). */
export type LockRequest =
  | { op: "acquire"; resource: string; owner: string; mode: LockMode; ttlMs: number; waitMs: number }
  | { op: "release"; resource: string; owner: string }
  | { op: "renew"; resource: string; owner: string; ttlMs?: number }
  | { op: "view"; resource: string }
  /**
   * The locks of this group whose name starts with `prefix`, held or waited for (a read); no
   * resource. `stale`: from this leader's state, with no quorum round and without waking a quiet
   * group (dashboards and monitoring; it may miss the last moment's changes).
   */
  | { op: "list"; resource: ""; prefix: string; limit: number; stale?: boolean }
  /** This group's lock and Raft counters, from the leader's memory (`/metrics`); no resource. */
  | { op: "metrics"; resource: "" };

/** The final answer: a command's result, a waiter's event, a view, or the metrics. */
export type LockReply =
  | LockResult
  | LockEvent
  | { type: "view"; view: LockView }
  | { type: "list"; locks: LockView[]; truncated: boolean }
  | { type: "unknown" }
  | { type: "metrics"; peer: NodeId; locks: LockMetrics; raft: ReplicaMetrics };

/**
 * A group's lock counters as one replica counted them (see LockCounters), and the locks held and
 * waited for now.
 */
export interface LockMetrics {
  /** Grants with a new fencing token: at once or to a waiter, including upgrades and downgrades. */
  acquired: number;
  released: number;
  /** Acquires refused because waiting would close a cycle, and waits cancelled as cross-group victims. */
  deadlocks: number;
  /** Waits that ran out before a grant. */
  timedOut: number;
  /** How long acquires waited before their grant, in seconds (0 when granted at once). */
  waitSeconds: HistogramData;
  /** Live holdings (a shared lock held by three owners counts three). */
  held: number;
  waiting: number;
}

/** Waits whose start LockCounters remembers at most (the oldest is forgotten past it). */
const MAX_TRACKED_WAITS = 100_000;

/**
 * Lock counters, kept by every replica as it applies entries (LockService.onApply), so they are
 * the same on every peer that applied the same entries, and a leader change does not reset them.
 * They live in memory only: a peer that restarts (or whose Durable Object was evicted) counts
 * again from zero, from the entries it applies after its snapshot, so after a leader change the
 * new leader's values may be lower (Prometheus sees a counter reset).
 *
 * Exactly once per effect: a grant counts only with a fencing token above every token counted
 * (tokens strictly increase across the group; an idempotent re-acquire or a retried request
 * answered again by the exactly-once layer carries its old token), and a result object counts
 * once (a retry answered again returns the very object the first apply returned).
 */
export class LockCounters {
  acquired = 0;
  released = 0;
  deadlocks = 0;
  timedOut = 0;
  readonly waitSeconds = emptyHistogram(WAIT_BUCKETS_SECONDS);
  private lastToken = 0;
  private readonly counted = new WeakSet<object>();
  /** Group time at which each live wait (resource\0owner) began. */
  private readonly waits = new Map<string, number>();

  /** One applied lock entry at group time `now`. */
  count(applied: { result: LockResult; events: readonly LockEvent[] }, now: number): void {
    const r = applied.result;
    if (!this.counted.has(r)) {
      this.counted.add(r);
      if (r.type === "granted") this.granted(r, now, false);
      else if (r.type === "released") this.released++;
      else if (r.type === "deadlock") this.deadlocks++;
      else if (r.type === "waiting") {
        const key = keyOf(r.resource, r.owner);
        if (!this.waits.has(key)) {
          if (this.waits.size >= MAX_TRACKED_WAITS) this.waits.delete(this.waits.keys().next().value as string);
          this.waits.set(key, now);
        }
      }
    }
    for (const e of applied.events) {
      if (e.type === "granted") this.granted(e, now, true);
      else {
        this.waits.delete(keyOf(e.resource, e.owner));
        if (e.type === "timedOut") this.timedOut++;
        else if (e.reason === "deadlock") this.deadlocks++;
      }
    }
  }

  /** A grant at group time `now`; `promoted`: to a waiter (else the acquire's own answer, with no wait). */
  private granted(g: { resource: string; owner: string; fencingToken: number }, now: number, promoted: boolean): void {
    if (g.fencingToken <= this.lastToken) return;
    this.lastToken = g.fencingToken;
    this.acquired++;
    const key = keyOf(g.resource, g.owner);
    const since = promoted ? this.waits.get(key) : now;
    this.waits.delete(key);
    // A wait that began before this replica started has no known start: it is not observed.
    if (since !== undefined) observe(this.waitSeconds, Math.max(0, now - since) / 1000);
  }

  /** A copy of the counters, with the table's live counts. */
  report(counts: { held: number; waiting: number }): LockMetrics {
    const { acquired, released, deadlocks, timedOut } = this;
    return { acquired, released, deadlocks, timedOut, waitSeconds: copyHistogram(this.waitSeconds), ...counts };
  }
}

/** How long past a wait's deadline to wait for the `expire` that ends it before giving up. */
const WAIT_GRACE_MS = 3000;
/** While deadlines are pending, the group's last command time is kept at most this old (see housekeeping). */
export const FRESH_MS = 1000;

interface Interest {
  resolve: (event: LockEvent) => void;
}

/**
 * The lock manager on one replica: turns requests into commands stamped with the leader's clock,
 * proposes them, and holds waiting acquires open until an applied entry grants, times out or
 * cancels them. Pure: the Durable Object supplies the replica, the clock and the timers.
 */
export class LockService {
  /** Held acquires by "resource\0owner": events of applied entries answer them. */
  private readonly interests = new Map<string, Interest[]>();
  private expireInFlight = false;
  /** Counted on every replica as entries apply (see LockCounters). */
  readonly counters = new LockCounters();

  constructor(
    private readonly replica: Replica<GroupResult>,
    private readonly table: LockTable,
    /** This peer's own clock; commands carry group time (Replica.groupNow), answers wall time. */
    private readonly clock: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
    /** Told whenever a request starts waiting: the cross-group deadlock detector should look. */
    private readonly onWaiting: () => void = () => {},
  ) {}

  /** The time of a read without a quorum round (metrics, stale listings). */
  private staleNow(): number {
    return this.replica.staleTime(this.clock(), this.table.now);
  }

  /** Group time now: what commands carry (valid on a serving leader). */
  private now(): number {
    return this.replica.groupNow(this.clock());
  }

  /** A group time as this peer's wall clock shows it: what answers report. */
  private wall(groupTime: number): number {
    return this.replica.wallTime(groupTime);
  }

  /** Times in an answer, from group time to wall time. */
  private toWall<T extends LockReply>(reply: T): T {
    if (reply.type === "granted" || reply.type === "renewed")
      return { ...reply, expiresAt: this.wall(reply.expiresAt) };
    if (reply.type === "conflict" || reply.type === "timedOut") {
      return { ...reply, holders: reply.holders.map((h) => ({ ...h, expiresAt: this.wall(h.expiresAt) })) };
    }
    if (reply.type === "view") {
      const holders = reply.view.holders.map((h) => ({ ...h, expiresAt: this.wall(h.expiresAt) }));
      return { ...reply, view: { ...reply.view, holders } };
    }
    if (reply.type === "list") {
      const locks = reply.locks.map((v) => ({
        ...v,
        holders: v.holders.map((h) => ({ ...h, expiresAt: this.wall(h.expiresAt) })),
      }));
      return { ...reply, locks };
    }
    return reply;
  }

  /** Wire this as the replica's `onApply`: every replica sees every event, in log order. */
  onApply(_entry: Entry, applied: GroupResult): void {
    if (applied?.kind !== "lock") return;
    // The table's time is the group time of the entry just applied.
    this.counters.count(applied, this.table.now);
    for (const event of applied.events) {
      const key = keyOf(event.resource, event.owner);
      const waiting = this.interests.get(key);
      if (waiting === undefined) continue;
      this.interests.delete(key);
      for (const w of waiting) w.resolve(event);
    }
  }

  /**
   * Serves one request on the leader (throws NotLeaderError elsewhere). `requestId` makes a retry
   * of the same request at another peer apply at most once (shared/replica/dedup.ts).
   */
  /**
   * `signal`: the caller gave up (the peer answered "timeout"): nothing is proposed after that, so
   * a request the Worker answered 503 cannot take effect later, when this leader starts to serve.
   */
  async handle(req: LockRequest, requestId: string, signal?: AbortSignal): Promise<LockReply> {
    return this.toWall(await this.serve(req, requestId, signal));
  }

  private async serve(req: LockRequest, requestId: string, signal?: AbortSignal): Promise<LockReply> {
    if (req.op === "metrics") {
      // This leader's memory, no round trip: a scrape must not load the log, and may be a little stale.
      const locks = this.counters.report(this.table.counts(this.staleNow()));
      const r = this.replica.metrics;
      const raft = { ...r, commitSeconds: copyHistogram(r.commitSeconds) };
      return { type: "metrics", peer: this.replica.id, locks, raft };
    }
    if (req.op === "view") {
      await this.replica.read();
      await this.replica.whenServing();
      return { type: "view", view: this.table.view(req.resource, this.now()) };
    }
    if (req.op === "list" && req.stale === true) {
      return { type: "list", ...this.table.list(req.prefix, this.staleNow(), req.limit) };
    }
    if (req.op === "list") {
      await this.replica.read();
      await this.replica.whenServing();
      return { type: "list", ...this.table.list(req.prefix, this.now(), req.limit) };
    }
    if (req.op !== "acquire") {
      const applied = await this.propose(req.op, req, requestId, signal);
      return applied.result;
    }
    // Listen before proposing: the grant may be applied in the same flush as the wait itself.
    const key = keyOf(req.resource, req.owner);
    let onEvent: (e: LockEvent) => void = () => {};
    const event = new Promise<LockEvent>((resolve) => {
      onEvent = resolve;
    });
    const interest = { resolve: onEvent };
    const list = this.interests.get(key) ?? [];
    list.push(interest);
    this.interests.set(key, list);
    try {
      const { op: _op, ...fields } = req;
      const applied = await this.propose("acquire", fields, requestId, signal);
      if (applied.result.type !== "waiting") return applied.result;
      this.onWaiting();
      const patience = applied.result.deadline - this.now() + WAIT_GRACE_MS;
      const timedOut = this.sleep(Math.max(0, patience)).then(() => ({ type: "unknown" }) as const);
      // Without any event by then this replica is cut off: the outcome is unknown to us.
      return await Promise.race([event, timedOut]);
    } finally {
      const rest = (this.interests.get(key) ?? []).filter((i) => i !== interest);
      if (rest.length > 0) this.interests.set(key, rest);
      else this.interests.delete(key);
    }
  }

  /**
   * Leader housekeeping on every wake: expire leases and waits whose time has come. While any
   * deadline is pending (`stampTime`), it also keeps the group's last command time within
   * FRESH_MS of now: a new leader's clock starts from that time (Replica.groupNow), so a stale
   * one would stretch every pending deadline by how long the group sat idle.
   */
  housekeeping(stampTime: boolean): void {
    if (!this.replica.servesReads() || this.expireInFlight) return;
    const now = this.now();
    const deadline = this.table.nextDeadline();
    const due = deadline !== undefined && deadline <= now;
    const stale = stampTime && now - this.replica.lastCommandTime() >= FRESH_MS;
    if (!due && !stale) return;
    this.expireInFlight = true;
    this.propose("expire", {}, "")
      .catch(() => undefined)
      .finally(() => {
        this.expireInFlight = false;
      });
  }

  /** When housekeeping next has work: the earliest lease end or wait deadline (group time). */
  nextDeadline(): number | undefined {
    return this.table.nextDeadline();
  }

  /** This group's wait-for edges, for the cross-group deadlock detector (leader only). */
  async waitEdges(): Promise<ResourceWaitEdge[]> {
    await this.replica.read();
    await this.replica.whenServing();
    return this.table.waitEdges(this.now());
  }

  /** Cancels the wait chosen as a cross-group deadlock victim. */
  async cancel(victim: { resource: string; owner: string; since: number; cycle: string[] }): Promise<LockResult> {
    const applied = await this.propose("cancel", { reason: "deadlock", ...victim }, "");
    return applied.result;
  }

  /**
   * Proposes a command stamped with group time, once this leader serves: before its term's first
   * entry is applied it knows neither the latest state nor where group time stands.
   */
  private async propose<T extends LockCommand["type"]>(
    type: T,
    fields: Omit<Extract<LockCommand, { type: T }>, "type" | "now">,
    id: string,
    signal?: AbortSignal,
  ): Promise<LockApplied> {
    await this.replica.whenServing();
    signal?.throwIfAborted();
    const cmd = { ...fields, type, now: this.now() } as LockCommand;
    const applied = await this.replica.propose(encodeCommand(id, cmd));
    if (applied?.kind !== "lock") throw new Error("lock command applied as something else");
    return applied;
  }
}

function keyOf(resource: string, owner: string): string {
  return `${resource}\0${owner}`;
}
