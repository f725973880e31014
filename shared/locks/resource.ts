/**
 * One lock: who holds it and who waits for it, in arrival order. Plain data, stored in
 * snapshots as is. The functions here are the rules that look at one resource only; the
 * LockTable owns time, fencing tokens and events.
 */
import type { HolderInfo, LockMode, WaiterInfo } from "./types.js";

export interface Holder {
  owner: string;
  mode: LockMode;
  fencingToken: number;
  expiresAt: number;
  /** The TTL last asked for: a renew without one extends by this much. */
  ttlMs: number;
}

export interface Waiter {
  owner: string;
  mode: LockMode;
  /** The lease to grant when promoted. */
  ttlMs: number;
  /** The wait times out once t ≥ deadline. */
  deadline: number;
  /** When the wait started: the cross-group detector cancels the newest wait of a cycle. */
  since: number;
}

/** Invariants: an owner appears at most once in each list; a holder that also waits holds shared and waits exclusive (an upgrade). */
export interface Resource {
  holders: Holder[];
  waiters: Waiter[];
}

export function emptyResource(): Resource {
  return { holders: [], waiters: [] };
}

export function isEmpty(res: Resource): boolean {
  return res.holders.length === 0 && res.waiters.length === 0;
}

/** Only shared goes with shared. */
export function compatible(a: LockMode, b: LockMode): boolean {
  return a === "shared" && b === "shared";
}

/** True when `owner` could hold `mode` next to the other holders (its own holding does not count). */
export function fitsHolders(res: Resource, owner: string, mode: LockMode): boolean {
  return res.holders.every((h) => h.owner === owner || compatible(h.mode, mode));
}

/**
 * One instance of something a wait is blocked by: its owner, and a tag that tells this instance
 * from a later one of the same owner: `h<fencingToken>` for a holding (tokens are unique in a
 * group, and a holding keeps its token until it ends), `w<since>` for an earlier wait.
 */
export interface Blocker {
  owner: string;
  tag: string;
}

/**
 * Whom `owner` asking `mode` from queue position `position` waits for, at time `t`: the
 * incompatible live holders, then the incompatible earlier waiters whose wait has not run out
 * (FIFO: it cannot pass them). Never itself; each owner once (an upgrading holder that also
 * waits earlier in the queue is listed as the holder).
 */
export function blockingInstances(
  res: Resource,
  owner: string,
  mode: LockMode,
  position: number,
  t: number,
): Blocker[] {
  const out: Blocker[] = [];
  const add = (other: string, tag: string) => {
    if (other !== owner && !out.some((b) => b.owner === other)) out.push({ owner: other, tag });
  };
  for (const h of res.holders) {
    if (h.expiresAt > t && !compatible(h.mode, mode)) add(h.owner, `h${h.fencingToken}`);
  }
  for (const w of res.waiters.slice(0, position)) {
    if (w.deadline > t && !compatible(w.mode, mode)) add(w.owner, `w${w.since}`);
  }
  return out;
}

/** The owners of `blockingInstances`, in the same order. */
export function blockers(res: Resource, owner: string, mode: LockMode, position: number, t: number): string[] {
  return blockingInstances(res, owner, mode, position, t).map((b) => b.owner);
}

export function holderInfos(holders: readonly Holder[]): HolderInfo[] {
  return holders.map((h) => ({ owner: h.owner, mode: h.mode, expiresAt: h.expiresAt }));
}

export function waiterInfos(waiters: readonly Waiter[]): WaiterInfo[] {
  return waiters.map((w) => ({ owner: w.owner, mode: w.mode }));
}

/** "exclusive" if anyone holds exclusive, "shared" if anyone holds at all, else null. */
export function modeOf(holders: readonly HolderInfo[]): LockMode | null {
  if (holders.length === 0) return null;
  return holders.some((h) => h.mode === "exclusive") ? "exclusive" : "shared";
}

/** The earliest moment something changes on its own: a lease ends or a wait times out. */
export function earliestDeadline(res: Resource): number | undefined {
  let min: number | undefined;
  for (const h of res.holders) if (min === undefined || h.expiresAt < min) min = h.expiresAt;
  for (const w of res.waiters) if (min === undefined || w.deadline < min) min = w.deadline;
  return min;
}
