/**
 * Commands, results and events of the lock state machine: all plain JSON data. Commands travel
 * as the `data` of Raft entries; results and events go back to the host, which answers HTTP.
 *
 * Every command carries `now`, the proposing leader's clock in ms. Replicas never read a clock:
 * they use `t = max(previous t, now)`, so time never runs backwards when leadership moves to a
 * node whose clock is behind.
 */

/** Any number of shared holders, or exactly one exclusive holder. */
export type LockMode = "exclusive" | "shared";

/** Take `resource` for `owner` for `ttlMs`, waiting up to `waitMs` behind others (0 = try-lock). */
export interface AcquireCommand {
  type: "acquire";
  resource: string;
  owner: string;
  mode: LockMode;
  ttlMs: number;
  waitMs: number;
  now: number;
}

export interface ReleaseCommand {
  type: "release";
  resource: string;
  owner: string;
  now: number;
}

/** Extends a live lease to t + ttlMs; without `ttlMs` by the TTL the lease was last given. */
export interface RenewCommand {
  type: "renew";
  resource: string;
  owner: string;
  ttlMs?: number;
  now: number;
}

/**
 * Proposed by the leader when `nextDeadline()` has passed: drops expired leases, times out
 * waiters whose deadline passed and promotes the waiters that can then be granted.
 */
export interface ExpireCommand {
  type: "expire";
  now: number;
}

/**
 * Removes a waiter that the cross-group deadlock detector chose as a victim. `since`, when given,
 * must equal the wait's start: a detection built from stale edges then cannot cancel a newer
 * wait of the same owner on the same resource.
 */
export interface CancelCommand {
  type: "cancel";
  resource: string;
  owner: string;
  now: number;
  reason: "deadlock";
  cycle: string[];
  since?: number;
}

export type LockCommand = AcquireCommand | ReleaseCommand | RenewCommand | ExpireCommand | CancelCommand;

export interface HolderInfo {
  owner: string;
  mode: LockMode;
  expiresAt: number;
}

export interface WaiterInfo {
  owner: string;
  mode: LockMode;
}

/** A grant: the direct answer to an acquire, or an event when a waiter is promoted. */
export interface Grant {
  type: "granted";
  resource: string;
  owner: string;
  mode: LockMode;
  fencingToken: number;
  expiresAt: number;
}

/** The direct answer to the command of one entry (goes back to its proposer). */
export type LockResult =
  | Grant
  /** Not granted: a try-lock, a second wait in another mode, or (as an event) a timed-out wait. */
  | { type: "conflict"; resource: string; owner: string; holders: HolderInfo[] }
  /** Waiting would close a cycle in the wait-for graph; `cycle` starts with the requester. */
  | { type: "deadlock"; resource: string; owner: string; cycle: string[] }
  /** Queued: the host holds the request open until a `granted`, `timedOut` or `cancelled` event. */
  | { type: "waiting"; resource: string; owner: string; mode: LockMode; deadline: number }
  | { type: "released"; resource: string; owner: string }
  /** Release by an owner that was waiting, not holding: its wait is withdrawn (it is never granted). */
  | { type: "withdrawn"; resource: string; owner: string }
  | { type: "renewed"; resource: string; owner: string; expiresAt: number }
  /** Release or renew by an owner that holds no live lease. */
  | { type: "notHolder"; resource: string; owner: string }
  /** Answer to `cancel`: the wait was removed, or there was no such wait any more. */
  | { type: "cancelled"; resource: string; owner: string }
  | { type: "notWaiting"; resource: string; owner: string }
  | { type: "expired" };

/** A wait ran out: the held request is answered 409 lock-conflict with `holders`. */
export interface TimedOut {
  type: "timedOut";
  resource: string;
  owner: string;
  mode: LockMode;
  holders: HolderInfo[];
}

/**
 * A wait ended without a grant: the victim of a cross-group deadlock (answered 409 deadlock), or
 * withdrawn by a release of its own owner (answered 409 lock-conflict; `cycle` is empty).
 */
export interface Cancelled {
  type: "cancelled";
  resource: string;
  owner: string;
  mode: LockMode;
  reason: "deadlock" | "withdrawn";
  cycle: string[];
}

/**
 * What an apply did to waits other than the command's own answer. The host matches events to
 * held requests by (resource, owner): an owner has at most one wait per resource.
 */
export type LockEvent = Grant | TimedOut | Cancelled;

export interface LockApplied {
  result: LockResult;
  events: LockEvent[];
}

/** The body of `GET /v1/locks/{resource}`. */
export interface LockView {
  resource: string;
  mode: LockMode | null;
  holders: HolderInfo[];
  waiters: WaiterInfo[];
}
