/**
 * The lock service's replicated state machine: every lock of one Raft group. Pure and
 * deterministic: the result of an apply depends only on the state and the entry (time travels
 * inside each command), so every replica answers every command the same way.
 *
 * Fencing tokens: one counter per group, `lastToken`; every grant that is not an idempotent
 * re-acquire takes `token = max(lastToken + 1, entry index)`. Tokens therefore strictly
 * increase per resource (they strictly increase across the whole group), survive a resource
 * being deleted and reused, and travel in snapshots. With one grant per entry the token is the
 * entry's Raft index, a number operators can find in the log; an entry that grants several
 * waiters at once (promotions) hands out index, index + 1, ... and the next entries catch up.
 *
 * Expiry is lazy: a resource is settled (expired leases dropped, overdue waiters timed out,
 * waiters promoted) whenever a command touches it, and every resource is settled by `expire`,
 * which the leader proposes once `nextDeadline()` has passed.
 */
import type { StateMachine } from "../raft/state-machine.js";
import type { Entry } from "../raft/types.js";
import {
  blockers,
  blockingInstances,
  earliestDeadline,
  emptyResource,
  fitsHolders,
  holderInfos,
  isEmpty,
  modeOf,
  type Resource,
  waiterInfos,
} from "./resource.js";
import type {
  AcquireCommand,
  CancelCommand,
  Grant,
  LockApplied,
  LockCommand,
  LockEvent,
  LockMode,
  LockResult,
  LockView,
  ReleaseCommand,
  RenewCommand,
} from "./types.js";
import { type ResourceWaitEdge, WaitForGraph } from "./wait-for-graph.js";

/** The snapshot image. Resources keep their map order, which decides the order of events. */
interface Image {
  version: 1;
  time: number;
  lastToken: number;
  resources: [string, Resource][];
}

export class LockTable implements StateMachine<LockApplied | null> {
  private resources = new Map<string, Resource>();
  /** t: the largest `now` of any command applied so far. */
  private time = 0;
  private lastToken = 0;
  // Scratch state of the apply in progress (apply is synchronous): the entry index for tokens
  // and the events produced so far.
  private index = 0;
  private events: LockEvent[] = [];

  /** Applies one committed entry; a leader's no-op (empty data) and conf entries give null. */
  apply(entry: Entry): LockApplied | null {
    if (entry.type !== "normal" || entry.data === "") return null;
    return this.applyCommand(JSON.parse(entry.data) as LockCommand, entry.index);
  }

  applyCommand(cmd: LockCommand, index: number): LockApplied {
    this.time = Math.max(this.time, cmd.now);
    this.index = index;
    this.events = [];
    const result = this.run(cmd);
    const events = this.events;
    this.events = [];
    return { result, events };
  }

  private run(cmd: LockCommand): LockResult {
    switch (cmd.type) {
      case "acquire":
        return this.onResource(cmd.resource, (res) => this.acquire(res, cmd));
      case "release":
        return this.onResource(cmd.resource, (res) => this.release(res, cmd));
      case "renew":
        return this.onResource(cmd.resource, (res) => this.renew(res, cmd));
      case "cancel":
        return this.onResource(cmd.resource, (res) => this.cancel(res, cmd));
      case "expire":
        for (const name of [...this.resources.keys()]) this.onResource(name, () => undefined);
        return { type: "expired" };
      default:
        throw new Error(`unknown lock command ${JSON.stringify(cmd satisfies never)}`);
    }
  }

  /** Settles `name`, runs `fn` on it, then stores it back, or deletes it once empty. */
  private onResource<R>(name: string, fn: (res: Resource) => R): R {
    const res = this.resources.get(name) ?? emptyResource();
    this.settle(name, res);
    const out = fn(res);
    if (isEmpty(res)) this.resources.delete(name);
    else this.resources.set(name, res);
    return out;
  }

  private acquire(res: Resource, c: AcquireCommand): LockResult {
    const t = this.time;
    const held = res.holders.find((h) => h.owner === c.owner);
    if (held?.mode === c.mode) {
      // Idempotent re-acquire: a retried request must not change the token it was promised.
      held.expiresAt = t + c.ttlMs;
      held.ttlMs = c.ttlMs;
      return grantOf(c.resource, held);
    }
    const waiting = res.waiters.find((w) => w.owner === c.owner);
    if (waiting) {
      // One wait per owner and resource, so events map to requests unambiguously.
      if (waiting.mode !== c.mode || c.waitMs <= 0) return this.conflict(res, c);
      // Never shorten it: an earlier request of this owner may still be held open on it.
      waiting.deadline = Math.max(waiting.deadline, t + c.waitMs);
      waiting.ttlMs = c.ttlMs;
      return { type: "waiting", resource: c.resource, owner: c.owner, mode: c.mode, deadline: waiting.deadline };
    }
    // A holder changing mode (downgrade, or upgrade by the sole holder) goes ahead of the queue:
    // the waiters wait for it anyway. Anyone else is granted only if nobody is waiting (FIFO).
    if (fitsHolders(res, c.owner, c.mode) && (held !== undefined || res.waiters.length === 0)) {
      const grant = this.grant(res, c.resource, c.owner, c.mode, c.ttlMs);
      this.promote(c.resource, res); // a downgrade may let shared waiters in
      return grant;
    }
    if (c.waitMs <= 0) return this.conflict(res, c);
    const graph = WaitForGraph.from(this.waitEdges(t));
    for (const b of blockers(res, c.owner, c.mode, res.waiters.length, t)) graph.add(c.owner, b);
    const cycle = graph.findCycleThrough(c.owner);
    if (cycle) return { type: "deadlock", resource: c.resource, owner: c.owner, cycle };
    const deadline = t + c.waitMs;
    res.waiters.push({ owner: c.owner, mode: c.mode, ttlMs: c.ttlMs, deadline, since: t });
    return { type: "waiting", resource: c.resource, owner: c.owner, mode: c.mode, deadline };
  }

  private release(res: Resource, c: ReleaseCommand): LockResult {
    const i = res.holders.findIndex((h) => h.owner === c.owner);
    if (i < 0) return this.withdraw(res, c);
    res.holders.splice(i, 1);
    this.promote(c.resource, res);
    return { type: "released", resource: c.resource, owner: c.owner };
  }

  /**
   * A release by an owner that is waiting, not holding: a client that gave up waiting withdraws
   * its wait, so it is never granted a lock it will not use. Its held request ends as cancelled.
   */
  private withdraw(res: Resource, c: ReleaseCommand): LockResult {
    const i = res.waiters.findIndex((w) => w.owner === c.owner);
    const waiter = res.waiters[i];
    if (waiter === undefined) return { type: "notHolder", resource: c.resource, owner: c.owner };
    res.waiters.splice(i, 1);
    const { resource, owner } = c;
    this.events.push({ type: "cancelled", resource, owner, mode: waiter.mode, reason: "withdrawn", cycle: [] });
    this.promote(resource, res); // the withdrawn wait may have been the head of the queue
    return { type: "withdrawn", resource, owner };
  }

  private renew(res: Resource, c: RenewCommand): LockResult {
    const held = res.holders.find((h) => h.owner === c.owner);
    if (held === undefined) return { type: "notHolder", resource: c.resource, owner: c.owner };
    held.ttlMs = c.ttlMs ?? held.ttlMs;
    held.expiresAt = this.time + held.ttlMs;
    return { type: "renewed", resource: c.resource, owner: c.owner, expiresAt: held.expiresAt };
  }

  private cancel(res: Resource, c: CancelCommand): LockResult {
    const i = res.waiters.findIndex((w) => w.owner === c.owner && (c.since === undefined || w.since === c.since));
    const waiter = res.waiters[i];
    if (waiter === undefined) return { type: "notWaiting", resource: c.resource, owner: c.owner };
    res.waiters.splice(i, 1);
    const { resource, owner, reason, cycle } = c;
    this.events.push({ type: "cancelled", resource, owner, mode: waiter.mode, reason, cycle });
    this.promote(c.resource, res); // the victim may have been the head of the queue
    return { type: "cancelled", resource, owner };
  }

  /**
   * Brings `res` up to time t: leases that ended are dropped, then waits that ran out time out
   * (before any promotion: a request whose deadline passed is not granted late, when its
   * client may have given up), then the head of the queue is promoted.
   */
  private settle(name: string, res: Resource): void {
    const t = this.time;
    res.holders = res.holders.filter((h) => h.expiresAt > t);
    const overdue = res.waiters.filter((w) => w.deadline <= t);
    if (overdue.length > 0) {
      res.waiters = res.waiters.filter((w) => w.deadline > t);
      for (const w of overdue) {
        const holders = holderInfos(res.holders);
        this.events.push({ type: "timedOut", resource: name, owner: w.owner, mode: w.mode, holders });
      }
    }
    this.promote(name, res);
  }

  /** Grants from the head of the queue while the head fits: consecutive shared together, exclusive alone. */
  private promote(name: string, res: Resource): void {
    for (let head = res.waiters[0]; head && fitsHolders(res, head.owner, head.mode); head = res.waiters[0]) {
      res.waiters.shift();
      this.events.push(this.grant(res, name, head.owner, head.mode, head.ttlMs));
    }
  }

  /** A new holding with a new token; replaces the owner's old one (upgrade or downgrade). */
  private grant(res: Resource, name: string, owner: string, mode: LockMode, ttlMs: number): Grant {
    this.lastToken = Math.max(this.lastToken + 1, this.index);
    const holder = { owner, mode, fencingToken: this.lastToken, expiresAt: this.time + ttlMs, ttlMs };
    res.holders = res.holders.filter((h) => h.owner !== owner);
    res.holders.push(holder);
    return grantOf(name, holder);
  }

  private conflict(res: Resource, c: AcquireCommand): LockResult {
    return { type: "conflict", resource: c.resource, owner: c.owner, holders: holderInfos(res.holders) };
  }

  /**
   * The linearizable GET. Leases ended by `now` and waits run out by `now` are left out;
   * promotions are not anticipated: a waiter becomes a holder only when a committed command
   * grants it a token.
   */
  view(resource: string, now: number): LockView {
    const t = Math.max(this.time, now);
    const res = this.resources.get(resource) ?? emptyResource();
    const holders = holderInfos(res.holders.filter((h) => h.expiresAt > t));
    const waiters = waiterInfos(res.waiters.filter((w) => w.deadline > t));
    return { resource, mode: modeOf(holders), holders, waiters };
  }

  /**
   * The locks whose name starts with `prefix` that are held or waited for at `now`, sorted by
   * resource (code unit order), at most `limit`; `truncated` when more would follow. A read of
   * the state, like `view`.
   */
  list(prefix: string, now: number, limit: number): { locks: LockView[]; truncated: boolean } {
    const names = [...this.resources.keys()].filter((r) => r.startsWith(prefix)).sort();
    const locks: LockView[] = [];
    for (const name of names) {
      const v = this.view(name, now);
      if (v.holders.length === 0 && v.waiters.length === 0) continue;
      if (locks.length >= limit) return { locks, truncated: true };
      locks.push(v);
    }
    return { locks, truncated: false };
  }

  /**
   * The answer a retried acquire gets now, when its first answer was "waiting": the grant if the
   * owner holds the lock in that mode, still waiting, or a conflict once its wait ended without
   * a grant. (Held requests learn the outcome from events, which a retry at another peer missed.)
   */
  acquireOutcome(resource: string, owner: string, mode: LockMode): LockResult {
    const res = this.resources.get(resource) ?? emptyResource();
    const t = this.time;
    const held = res.holders.find((h) => h.owner === owner && h.mode === mode && h.expiresAt > t);
    if (held !== undefined) return grantOf(resource, held);
    const waiting = res.waiters.find((w) => w.owner === owner && w.mode === mode && w.deadline > t);
    if (waiting !== undefined) return { type: "waiting", resource, owner, mode, deadline: waiting.deadline };
    return { type: "conflict", resource, owner, holders: holderInfos(res.holders.filter((h) => h.expiresAt > t)) };
  }

  /**
   * When the leader should propose `expire`: the earliest lease end or wait deadline, possibly
   * already past; undefined when nothing is held or waited for. A linear scan: the host asks
   * after applying a batch, and a group holds few enough locks for that to be cheap.
   */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (const res of this.resources.values()) {
      const d = earliestDeadline(res);
      if (d !== undefined && (min === undefined || d < min)) min = d;
    }
    return min;
  }

  /**
   * The wait-for edges of this group at `now` (default: the last applied time), for the local
   * deadlock check and the cross-group detector. Ended leases and run-out waits are left out:
   * they are about to go and must not make a phantom cycle. `holderTag` names the instance of the
   * blocker (`h<token>` or `w<since>`), so the detector can tell an edge that lasted from one that
   * ended and came back.
   */
  waitEdges(now = this.time): ResourceWaitEdge[] {
    const t = Math.max(this.time, now);
    const edges: ResourceWaitEdge[] = [];
    for (const [resource, res] of this.resources) {
      res.waiters.forEach((w, i) => {
        if (w.deadline <= t) return;
        for (const b of blockingInstances(res, w.owner, w.mode, i, t)) {
          edges.push({ waiter: w.owner, holder: b.owner, holderTag: b.tag, resource, since: w.since });
        }
      });
    }
    return edges;
  }

  /**
   * Live holdings (leases not ended by `now`) and live waits, over every resource, for `/metrics`.
   * A linear scan, like nextDeadline: it runs once per scrape.
   */
  counts(now = this.time): { held: number; waiting: number } {
    const t = Math.max(this.time, now);
    let held = 0;
    let waiting = 0;
    for (const res of this.resources.values()) {
      for (const h of res.holders) if (h.expiresAt > t) held++;
      for (const w of res.waiters) if (w.deadline > t) waiting++;
    }
    return { held, waiting };
  }

  /** The last applied time t (the host may use it to tell how far the group's clock has come). */
  get now(): number {
    return this.time;
  }

  snapshot(): string {
    const image: Image = { version: 1, time: this.time, lastToken: this.lastToken, resources: [...this.resources] };
    return JSON.stringify(image);
  }

  restore(data: string): void {
    if (data === "") {
      this.resources = new Map();
      this.time = 0;
      this.lastToken = 0;
      return;
    }
    const image = JSON.parse(data) as Image;
    if (image.version !== 1) throw new Error(`unknown lock table snapshot version ${image.version}`);
    this.resources = new Map(image.resources);
    this.time = image.time;
    this.lastToken = image.lastToken;
  }
}

function grantOf(
  resource: string,
  h: { owner: string; mode: LockMode; fencingToken: number; expiresAt: number },
): Grant {
  return {
    type: "granted",
    resource,
    owner: h.owner,
    mode: h.mode,
    fencingToken: h.fencingToken,
    expiresAt: h.expiresAt,
  };
}
