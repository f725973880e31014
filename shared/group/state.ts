import { DirectoryTable, type StoredCacheResult } from "../cache/directory.js";
import type { CacheApplied, CacheCommand } from "../cache/types.js";
import { IdempotencyTable } from "../idempotency/table.js";
import type { IdemApplied, IdemCommand } from "../idempotency/types.js";
import { LockTable } from "../locks/lock-table.js";
import type { LockApplied, LockCommand, LockResult } from "../locks/types.js";
import { parseReceipt } from "../queue/placement.js";
import { QueueTable } from "../queue/queue-table.js";
import type { Delivery, QueueApplied, QueueCommand, QueueResult } from "../queue/types.js";
import type { StateMachine } from "../raft/state-machine.js";
import type { Entry } from "../raft/types.js";

/** What one applied entry did, tagged by the state machine that applied it. */
export type GroupResult =
  | ({ kind: "lock" } & LockApplied)
  | ({ kind: "queue" } & QueueApplied)
  | ({ kind: "idem" } & IdemApplied)
  | ({ kind: "cache" } & CacheApplied)
  | null;

const LOCK_COMMANDS = new Set<string>(["acquire", "release", "renew", "expire", "cancel"]);

/**
 * What the exactly-once memory keeps of a result, to answer a retry (shared/replica/dedup.ts):
 * never message bodies and never events. A receive keeps its receipts, as
 * `[shard, seq, delivery]`; the deliveries are rebuilt from the state when a retry comes.
 */
export type StoredResult =
  | null
  | { kind: "lock"; result: LockResult }
  | { kind: "queue"; result: Exclude<QueueResult, { type: "received" }> }
  | { kind: "received"; queue: string; shard: number; deliveries: [number, number][]; deadLettered: number }
  | ({ kind: "idem" } & IdemApplied)
  | { kind: "cache"; result: StoredCacheResult };

/**
 * Everything one Raft group replicates: the locks, the queue shards, the Idempotency-Keys and the
 * cache directory entries placed on it. Commands are told apart by their `type` (the sets do not
 * overlap); snapshots hold every table.
 *
 * Time is one clock for the whole group: every command's `now` is raised to the largest time
 * applied so far, whichever table it is for, so a lease measured by the lock table and a
 * visibility timeout measured by the queue table start from the same group time (see
 * Replica.groupNow for why that time never runs ahead of real time).
 */
export class GroupState implements StateMachine<GroupResult> {
  readonly locks = new LockTable();
  readonly queues = new QueueTable();
  /** Idempotency-Keys placed on this group (shared/idempotency/). */
  readonly idempotency = new IdempotencyTable();
  /** The cache directory of the keys placed on this group (shared/cache/). */
  readonly cache = new DirectoryTable();
  private time = 0;

  /** The group's time: the largest command time applied. */
  get now(): number {
    return this.time;
  }

  apply(entry: Entry): GroupResult {
    if (entry.type !== "normal" || entry.data === "") return null;
    const cmd = JSON.parse(entry.data) as LockCommand | QueueCommand | IdemCommand | CacheCommand;
    this.time = Math.max(this.time, cmd.now);
    cmd.now = this.time;
    if (cmd.type === "idem-begin" || cmd.type === "idem-finish")
      return { kind: "idem", ...this.idempotency.applyCommand(cmd) };
    if (cmd.type.startsWith("cache-")) return { kind: "cache", ...this.cache.apply(cmd as CacheCommand, entry.index) };
    if (LOCK_COMMANDS.has(cmd.type))
      return { kind: "lock", ...this.locks.applyCommand(cmd as LockCommand, entry.index) };
    return { kind: "queue", ...this.queues.applyCommand(cmd as QueueCommand) };
  }

  /** The part of `result` a retry needs: small, and free of message bodies. */
  compact(result: GroupResult): StoredResult {
    if (result === null) return null;
    if (result.kind === "lock") return { kind: "lock", result: result.result };
    if (result.kind === "idem") return result;
    if (result.kind === "cache") return { kind: "cache", result: this.cache.compact(result.result) };
    const r = result.result;
    if (r.type !== "received") return { kind: "queue", result: r };
    const deliveries = r.messages.map((m): [number, number] => {
      const receipt = parseReceipt(m.receipt);
      return [receipt?.seq ?? 0, receipt?.delivery ?? 0];
    });
    return { kind: "received", queue: r.queue, shard: r.shard, deliveries, deadLettered: r.deadLettered };
  }

  /**
   * The answer to a retry of a command whose stored result is `stored`, from the state now: no
   * events or wakes fire again. A receive answers with those of its deliveries that are still
   * current; an acquire that was left waiting answers with the request's outcome now.
   */
  replay(stored: StoredResult): GroupResult {
    if (stored === null) return null;
    switch (stored.kind) {
      case "lock": {
        const r = stored.result;
        const result = r.type === "waiting" ? this.locks.acquireOutcome(r.resource, r.owner, r.mode) : r;
        return { kind: "lock", result, events: [] };
      }
      case "queue":
        return { kind: "queue", result: stored.result, wake: [] };
      case "received": {
        const { queue, shard, deadLettered } = stored;
        const messages = stored.deliveries.flatMap(([seq, delivery]): Delivery[] => {
          const d = this.queues.delivery(queue, shard, seq, delivery);
          return d === undefined ? [] : [d];
        });
        return { kind: "queue", result: { type: "received", queue, shard, messages, deadLettered }, wake: [] };
      }
      case "idem":
        return stored;
      case "cache":
        return { kind: "cache", result: this.cache.replay(stored.result) };
    }
  }

  snapshot(): string {
    return JSON.stringify({
      locks: this.locks.snapshot(),
      queues: this.queues.snapshot(),
      idempotency: this.idempotency.snapshot(),
      cache: this.cache.snapshot(),
    });
  }

  restore(data: string): void {
    if (data === "") {
      this.time = 0;
      this.locks.restore("");
      this.queues.restore("");
      this.idempotency.restore("");
      this.cache.restore("");
      return;
    }
    const image = JSON.parse(data) as { locks: string; queues: string; idempotency?: string; cache?: string };
    this.locks.restore(image.locks);
    this.queues.restore(image.queues);
    // Snapshots taken before idempotency keys existed have none.
    this.idempotency.restore(image.idempotency ?? "");
    // ... nor cache directories.
    this.cache.restore(image.cache ?? "");
    this.time = Math.max(this.locks.now, this.queues.now, this.idempotency.now);
  }
}
