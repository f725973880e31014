import { IdempotencyTable } from "../idempotency/table.js";
import type { IdemApplied, IdemCommand } from "../idempotency/types.js";
import { LockTable } from "../locks/lock-table.js";
import type { LockApplied, LockCommand } from "../locks/types.js";
import { QueueTable } from "../queue/queue-table.js";
import type { QueueApplied, QueueCommand } from "../queue/types.js";
import type { StateMachine } from "../raft/state-machine.js";
import type { Entry } from "../raft/types.js";

/** What one applied entry did, tagged by the state machine that applied it. */
export type GroupResult =
  | ({ kind: "lock" } & LockApplied)
  | ({ kind: "queue" } & QueueApplied)
  | ({ kind: "idem" } & IdemApplied)
  | null;

const LOCK_COMMANDS = new Set<string>(["acquire", "release", "renew", "expire", "cancel"]);

/**
 * Everything one Raft group replicates: the locks and the queue shards placed on it. Commands
 * are told apart by their `type` (the two sets do not overlap); snapshots hold both tables.
 */
export class GroupState implements StateMachine<GroupResult> {
  readonly locks = new LockTable();
  readonly queues = new QueueTable();
  /** Idempotency-Keys placed on this group (shared/idempotency/). */
  readonly idempotency = new IdempotencyTable();

  apply(entry: Entry): GroupResult {
    if (entry.type !== "normal" || entry.data === "") return null;
    const cmd = JSON.parse(entry.data) as LockCommand | QueueCommand | IdemCommand;
    if (cmd.type === "idem-begin" || cmd.type === "idem-finish")
      return { kind: "idem", ...this.idempotency.applyCommand(cmd) };
    if (LOCK_COMMANDS.has(cmd.type))
      return { kind: "lock", ...this.locks.applyCommand(cmd as LockCommand, entry.index) };
    return { kind: "queue", ...this.queues.applyCommand(cmd as QueueCommand) };
  }

  snapshot(): string {
    return JSON.stringify({
      locks: this.locks.snapshot(),
      queues: this.queues.snapshot(),
      idempotency: this.idempotency.snapshot(),
    });
  }

  restore(data: string): void {
    if (data === "") {
      this.locks.restore("");
      this.queues.restore("");
      this.idempotency.restore("");
      return;
    }
    const image = JSON.parse(data) as { locks: string; queues: string; idempotency?: string };
    this.locks.restore(image.locks);
    this.queues.restore(image.queues);
    // Snapshots taken before idempotency keys existed have none.
    this.idempotency.restore(image.idempotency ?? "");
  }
}
