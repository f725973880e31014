import type { Entry } from "./types.js";

/**
 * A replicated state machine. `apply` must be deterministic given the log: every replica applies
 * the same entries in the same order and must reach the same state. Time, if needed, travels
 * inside the command (the leader's clock at proposal), never from the replica's own clock.
 */
export interface StateMachine<Result = unknown> {
  /** Applies one committed normal entry; the result goes back to the proposer, if waiting. */
  apply(entry: Entry): Result;
  /** A serialised image of the whole state (for log compaction and InstallSnapshot). */
  snapshot(): string;
  /** Replaces the whole state with a snapshot's image. */
  restore(data: string): void;
}
