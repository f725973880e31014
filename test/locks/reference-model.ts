/**
 * A deliberately simple model of the lock rules for the randomized test: arrays and linear
 * scans, everything recomputed from scratch, no sharing of code with the LockTable. It does not
 * pick a deadlock cycle; it says whether one exists and how short the shortest is, and keeps
 * the edges so the test can check the cycle the table reports.
 */
import type { HolderInfo, LockCommand, LockEvent, LockMode, LockResult, LockView } from "../../shared/locks/index.js";

interface Held {
  owner: string;
  mode: LockMode;
  token: number;
  expiresAt: number;
  ttl: number;
}

interface Wait {
  owner: string;
  mode: LockMode;
  ttl: number;
  deadline: number;
  since: number;
}

interface Lock {
  name: string;
  held: Held[];
  waits: Wait[];
}

export interface Edge {
  waiter: string;
  holder: string;
  /** Set by `edges()` (the LockTable's `h<token>` / `w<since>`); the deadlock check needs none. */
  holderTag?: string;
  resource: string;
  since: number;
}

/** A deadlock answer the table must match: its cycle must be a shortest cycle in `edges`. */
export interface ExpectedDeadlock {
  edges: Edge[];
  shortest: number;
}

export class ReferenceLocks {
  /** In order of creation; a lock leaves the list when it is empty. */
  locks: Lock[] = [];
  t = 0;
  last = 0;
  deadlock: ExpectedDeadlock | undefined;
  private index = 0;
  private events: LockEvent[] = [];

  step(cmd: LockCommand, index: number): { result: LockResult; events: LockEvent[] } {
    this.t = Math.max(this.t, cmd.now);
    this.index = index;
    this.events = [];
    this.deadlock = undefined;
    let result: LockResult;
    if (cmd.type === "expire") {
      for (const lock of [...this.locks]) this.touch(lock.name, () => null);
      result = { type: "expired" };
    } else {
      result = this.touch(cmd.resource, (lock) => this.command(lock, cmd));
    }
    return { result, events: this.events };
  }

  private touch<R>(name: string, fn: (lock: Lock) => R): R {
    let lock = this.locks.find((l) => l.name === name);
    if (!lock) lock = { name, held: [], waits: [] };
    lock.held = lock.held.filter((h) => h.expiresAt > this.t);
    for (const w of lock.waits) {
      if (w.deadline > this.t) continue;
      const holders = lock.held.map(info);
      this.events.push({ type: "timedOut", resource: name, owner: w.owner, mode: w.mode, holders });
    }
    lock.waits = lock.waits.filter((w) => w.deadline > this.t);
    this.promote(lock);
    const out = fn(lock);
    const i = this.locks.indexOf(lock);
    const empty = lock.held.length === 0 && lock.waits.length === 0;
    if (empty && i >= 0) this.locks.splice(i, 1);
    if (!empty && i < 0) this.locks.push(lock);
    return out;
  }

  private command(lock: Lock, cmd: Exclude<LockCommand, { type: "expire" }>): LockResult {
    const { resource, owner } = cmd;
    const mine = lock.held.find((h) => h.owner === owner);
    if (cmd.type === "release") {
      if (!mine) {
        // A waiting owner's release withdraws its wait (API: released false, withdrawn true).
        const w = lock.waits.find((x) => x.owner === owner);
        if (!w) return { type: "notHolder", resource, owner };
        lock.waits = lock.waits.filter((x) => x !== w);
        this.events.push({ type: "cancelled", resource, owner, mode: w.mode, reason: "withdrawn", cycle: [] });
        this.promote(lock);
        return { type: "withdrawn", resource, owner };
      }
      lock.held = lock.held.filter((h) => h !== mine);
      this.promote(lock);
      return { type: "released", resource, owner };
    }
    if (cmd.type === "renew") {
      if (!mine) return { type: "notHolder", resource, owner };
      if (cmd.ttlMs !== undefined) mine.ttl = cmd.ttlMs;
      mine.expiresAt = this.t + mine.ttl;
      return { type: "renewed", resource, owner, expiresAt: mine.expiresAt };
    }
    if (cmd.type === "cancel") {
      const w = lock.waits.find((x) => x.owner === owner && (cmd.since === undefined || cmd.since === x.since));
      if (!w) return { type: "notWaiting", resource, owner };
      lock.waits = lock.waits.filter((x) => x !== w);
      this.events.push({ type: "cancelled", resource, owner, mode: w.mode, reason: "deadlock", cycle: cmd.cycle });
      this.promote(lock);
      return { type: "cancelled", resource, owner };
    }
    const { mode, ttlMs, waitMs } = cmd;
    const conflict: LockResult = { type: "conflict", resource, owner, holders: lock.held.map(info) };
    if (mine && mine.mode === mode) {
      mine.expiresAt = this.t + ttlMs;
      mine.ttl = ttlMs;
      return { type: "granted", resource, owner, mode, fencingToken: mine.token, expiresAt: mine.expiresAt };
    }
    const w = lock.waits.find((x) => x.owner === owner);
    if (w) {
      if (w.mode !== mode || waitMs <= 0) return conflict;
      w.deadline = Math.max(w.deadline, this.t + waitMs);
      w.ttl = ttlMs;
      return { type: "waiting", resource, owner, mode, deadline: w.deadline };
    }
    if (canHold(lock, owner, mode) && (mine || lock.waits.length === 0)) {
      const g = this.grant(lock, owner, mode, ttlMs);
      this.promote(lock);
      return g;
    }
    if (waitMs <= 0) return conflict;
    const mineEdges = waitsFor(lock, owner, mode, lock.waits.length, this.t);
    const edges = [...this.edges(), ...mineEdges.map((holder) => ({ waiter: owner, holder, resource, since: this.t }))];
    const shortest = shortestCycle(edges, owner);
    if (shortest > 0) {
      this.deadlock = { edges, shortest };
      return { type: "deadlock", resource, owner, cycle: [] }; // the cycle is checked separately
    }
    lock.waits.push({ owner, mode, ttl: ttlMs, deadline: this.t + waitMs, since: this.t });
    return { type: "waiting", resource, owner, mode, deadline: this.t + waitMs };
  }

  private promote(lock: Lock): void {
    while (lock.waits.length > 0) {
      const w = lock.waits[0] as Wait;
      if (!canHold(lock, w.owner, w.mode)) return;
      lock.waits.shift();
      this.events.push(this.grant(lock, w.owner, w.mode, w.ttl));
    }
  }

  private grant(lock: Lock, owner: string, mode: LockMode, ttl: number): LockEvent & { type: "granted" } {
    this.last = Math.max(this.last + 1, this.index);
    lock.held = lock.held.filter((h) => h.owner !== owner);
    const h: Held = { owner, mode, token: this.last, expiresAt: this.t + ttl, ttl };
    lock.held.push(h);
    return { type: "granted", resource: lock.name, owner, mode, fencingToken: h.token, expiresAt: h.expiresAt };
  }

  /** Every waiter's blockers at t (each pair once per resource). */
  edges(now = this.t): Edge[] {
    const t = Math.max(this.t, now);
    const out: Edge[] = [];
    for (const lock of this.locks) {
      lock.waits.forEach((w, i) => {
        if (w.deadline <= t) return;
        for (const holder of waitsFor(lock, w.owner, w.mode, i, t)) {
          // Which instance blocks: a live incompatible holding (its token), else the earlier wait.
          const blocks = (m: LockMode) => m === "exclusive" || w.mode === "exclusive";
          const held = lock.held.find((h) => h.owner === holder && h.expiresAt > t && blocks(h.mode));
          const holderTag = held ? `h${held.token}` : `w${lock.waits.find((x) => x.owner === holder)?.since}`;
          out.push({ waiter: w.owner, holder, holderTag, resource: lock.name, since: w.since });
        }
      });
    }
    return out;
  }

  view(name: string, now: number): LockView {
    const t = Math.max(this.t, now);
    const lock = this.locks.find((l) => l.name === name);
    const holders = (lock?.held ?? []).filter((h) => h.expiresAt > t).map(info);
    const waiters = (lock?.waits ?? []).filter((w) => w.deadline > t).map((w) => ({ owner: w.owner, mode: w.mode }));
    let mode: LockMode | null = null;
    if (holders.length > 0) mode = holders.some((h) => h.mode === "exclusive") ? "exclusive" : "shared";
    return { resource: name, mode, holders, waiters };
  }

  nextDeadline(): number | undefined {
    const times = this.locks.flatMap((l) => [...l.held.map((h) => h.expiresAt), ...l.waits.map((w) => w.deadline)]);
    return times.length === 0 ? undefined : Math.min(...times);
  }
}

function info(h: Held): HolderInfo {
  return { owner: h.owner, mode: h.mode, expiresAt: h.expiresAt };
}

function canHold(lock: Lock, owner: string, mode: LockMode): boolean {
  return lock.held.every((h) => h.owner === owner || (h.mode === "shared" && mode === "shared"));
}

/** The owners a request at queue position `pos` waits for: incompatible holders, then earlier waiters. */
function waitsFor(lock: Lock, owner: string, mode: LockMode, pos: number, t: number): string[] {
  const out: string[] = [];
  const blocks = (m: LockMode) => m === "exclusive" || mode === "exclusive";
  for (const h of lock.held) {
    if (h.expiresAt > t && h.owner !== owner && blocks(h.mode) && !out.includes(h.owner)) out.push(h.owner);
  }
  for (const w of lock.waits.slice(0, pos)) {
    if (w.deadline > t && w.owner !== owner && blocks(w.mode) && !out.includes(w.owner)) out.push(w.owner);
  }
  return out;
}

/** Length of the shortest cycle through `start` (0 if none), by growing the set reached in k steps. */
export function shortestCycle(edges: readonly Edge[], start: string): number {
  let frontier = new Set([start]);
  const seen = new Set<string>();
  for (let k = 1; frontier.size > 0; k++) {
    const next = new Set<string>();
    for (const e of edges) {
      if (!frontier.has(e.waiter)) continue;
      if (e.holder === start) return k;
      if (!seen.has(e.holder)) next.add(e.holder);
    }
    for (const n of next) seen.add(n);
    frontier = next;
  }
  return 0;
}
