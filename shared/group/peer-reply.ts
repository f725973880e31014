import { type NodeId, ProposalDroppedError } from "../raft/index.js";
import { CommandFailedError, NotLeaderError, OutcomeUnknownError, ProposalLostError } from "../replica/replica.js";

/** What a peer answers: a value, or why not (so the Worker can retry elsewhere). */
export type PeerReply<T> =
  | { ok: true; value: T }
  | { ok: false; error: "not-leader"; leader: NodeId }
  | { ok: false; error: "down" }
  | { ok: false; error: "timeout" }
  /** The command was committed but could not be applied (a bug or an input the routes let through). */
  | { ok: false; error: "failed"; detail: string }
  /** The settings disagree with the cluster shape stored with the data: the peer refuses to start. */
  | { ok: false; error: "misconfigured"; detail: string };

/**
 * The answer for an error a request's work threw, when the replica raised it; undefined for
 * anything else (the host decides: a crash, or a bug to rethrow). The Durable Object and the
 * simulator's peers answer with this, so the Worker sees the same replies from both.
 */
export function replyForError(e: unknown, replica: { leader(): NodeId }): PeerReply<never> | undefined {
  if (e instanceof NotLeaderError) return { ok: false, error: "not-leader", leader: e.leader };
  // Refused before anything was appended (e.g. a leadership transfer is under way).
  if (e instanceof ProposalDroppedError) return { ok: false, error: "not-leader", leader: replica.leader() };
  // Superseded by a new leader: it did not happen; the caller retries at the new leader.
  if (e instanceof ProposalLostError) return { ok: false, error: "not-leader", leader: replica.leader() };
  // A snapshot replaced the log around it: a retry with the same request id applies it at most once.
  if (e instanceof OutcomeUnknownError) return { ok: false, error: "not-leader", leader: replica.leader() };
  if (e instanceof CommandFailedError) return { ok: false, error: "failed", detail: e.message };
  return undefined;
}
