/**
 * A LockTable driven like a Raft group would drive it: every command is the next entry (index
 * 1, 2, ...), stamped with the group's clock `now`, which the tests move by hand.
 */
import { type LockApplied, type LockCommand, type LockMode, LockTable } from "../../shared/locks/index.js";

export const TTL = 30_000;
export const START = 1_000;

export interface AcquireOptions {
  mode?: LockMode;
  ttlMs?: number;
  waitMs?: number;
}

export class Group {
  readonly table = new LockTable();
  index = 0;
  now = START;

  run(cmd: LockCommand): LockApplied {
    this.index++;
    return this.table.applyCommand(cmd, this.index);
  }

  acquire(resource: string, owner: string, o: AcquireOptions = {}): LockApplied {
    const { mode = "exclusive", ttlMs = TTL, waitMs = 0 } = o;
    return this.run({ type: "acquire", resource, owner, mode, ttlMs, waitMs, now: this.now });
  }

  release(resource: string, owner: string): LockApplied {
    return this.run({ type: "release", resource, owner, now: this.now });
  }

  renew(resource: string, owner: string, ttlMs?: number): LockApplied {
    return this.run(
      ttlMs === undefined
        ? { type: "renew", resource, owner, now: this.now }
        : { type: "renew", resource, owner, ttlMs, now: this.now },
    );
  }

  expire(): LockApplied {
    return this.run({ type: "expire", now: this.now });
  }

  cancel(resource: string, owner: string, cycle: string[], since?: number): LockApplied {
    const cmd: LockCommand = { type: "cancel", resource, owner, now: this.now, reason: "deadlock", cycle };
    return this.run(since === undefined ? cmd : { ...cmd, since });
  }

  /** The fencing token of a result that must be a grant. */
  token(applied: LockApplied): number {
    if (applied.result.type !== "granted") throw new Error(`expected a grant, got ${JSON.stringify(applied.result)}`);
    return applied.result.fencingToken;
  }
}
