/**
 * Random lock commands over a few resources and owners, with a clock that mostly advances and
 * sometimes steps back (a new leader with a slower clock). Small pools make contention,
 * upgrades and deadlocks common.
 */
import type { LockCommand, LockMode } from "../../shared/locks/index.js";
import type { Rand } from "../../shared/raft/rand.js";

export const RESOURCES = ["r0", "r1", "r2", "r3"];
export const OWNERS = ["A", "B", "C", "D", "E", "F"];

/** A wait the workload may aim a `cancel` at (as `waitEdges()` reports it). */
export interface KnownWait {
  resource: string;
  waiter: string;
  since: number;
}

export class Workload {
  now = 1_000;

  constructor(private readonly rand: Rand) {}

  /** The next command; `waits`, when given, lets most cancels hit a real wait. */
  next(waits: readonly KnownWait[] = []): LockCommand {
    const r = this.rand;
    this.now = r.chance(1, 20) ? this.now - r.range(1, 30) : this.now + r.range(0, 15);
    const now = this.now;
    const resource = r.pick(RESOURCES);
    const owner = r.pick(OWNERS);
    const roll = r.int(100);
    if (roll < 50) {
      const mode: LockMode = r.chance(1, 2) ? "shared" : "exclusive";
      const waitMs = r.chance(1, 3) ? 0 : r.range(1, 120);
      return { type: "acquire", resource, owner, mode, ttlMs: r.range(1, 200), waitMs, now };
    }
    if (roll < 70) return { type: "release", resource, owner, now };
    if (roll < 80) {
      return r.chance(1, 2)
        ? { type: "renew", resource, owner, now }
        : { type: "renew", resource, owner, ttlMs: r.range(1, 200), now };
    }
    if (roll < 92) return { type: "expire", now };
    if (waits.length > 0 && r.chance(3, 4)) {
      const w = r.pick(waits);
      const cmd: LockCommand = {
        type: "cancel",
        resource: w.resource,
        owner: w.waiter,
        now,
        reason: "deadlock",
        cycle: [w.waiter],
      };
      return r.chance(1, 2) ? cmd : { ...cmd, since: r.chance(3, 4) ? w.since : w.since + 1 };
    }
    const cmd: LockCommand = { type: "cancel", resource, owner, now, reason: "deadlock", cycle: [owner] };
    return r.chance(1, 2) ? cmd : { ...cmd, since: now - r.range(0, 40) };
  }
}
