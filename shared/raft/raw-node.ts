import { type ConfChange, encodeConfChange } from "./conf.js";
import type { ProgressState } from "./progress.js";
import { Raft, type RaftConfig } from "./raft.js";
import {
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  message,
  type NodeId,
  type Ready,
  type SoftState,
  type StateRole,
} from "./types.js";

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  lead: NodeId;
  role: StateRole;
  conf: ConfState;
  leadTransferee: NodeId;
  /** Quiesced: no heartbeats (leader) or election timer (follower) until woken (Raft.quiesce). */
  quiesced: boolean;
  /** Leader only: replication progress per member. */
  progress: { id: NodeId; match: number; next: number; state: ProgressState; recentActive: boolean }[];
}

/** Message types that only this node may create: never accept them from the network. */
const LOCAL_ONLY = new Set(["hup", "beat", "checkQuorum", "prop", "unreachable", "snapStatus"]);

/**
 * The public surface of a Raft peer (etcd's RawNode): drive it with `tick`, `step`, `propose`,
 * then repeatedly take `ready()`, do the work in this order, and `advance()`:
 *
 *   const rd = node.ready();
 *   storage.persist(rd.hardState, rd.entries, rd.snapshot);   // one atomic write
 *   send(rd.messages);                                         // only after the persist
 *   stateMachine.restore(rd.snapshot); apply(rd.committedEntries);
 *   node.advance(rd);
 *
 * Vote grants and append acknowledgements are messages, so they leave only once the term, vote
 * and entries they promise are durable.
 */
export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoft = this.raft.softState();
    this.prevHard = cfg.storage.initialState().hardState;
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (tests and bootstrap). */
  campaign(): void {
    this.raft.step(message({ type: "hup" }));
  }

  /**
   * Proposes commands as one batch (group commit). Returns the index and term of the first one:
   * the proposal succeeded iff the entry applied at that index has that term.
   * Throws ProposalDroppedError when this node cannot take it (e.g. not the leader).
   */
  propose(data: readonly string[]): { index: number; term: number } {
    const entries: Entry[] = data.map((d) => ({ term: 0, index: 0, type: "normal", data: d }));
    return this.proposeEntries(entries);
  }

  /** Proposes one membership change: addLearner, then promote once caught up, or remove. */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.proposeEntries([{ term: 0, index: 0, type: "conf", data: encodeConfChange(cc) }]);
  }

  private proposeEntries(entries: Entry[]): { index: number; term: number } {
    this.raft.step(message({ type: "prop", entries }));
    const first = entries[0];
    return { index: first?.index ?? 0, term: first?.term ?? 0 };
  }

  /** A message from a peer. Local-only types are ignored: a peer cannot make us campaign. */
  step(m: Message): void {
    if (LOCAL_ONLY.has(m.type)) return;
    this.raft.step(m);
  }

  /** Requests a linearizable read point; it arrives as a ReadState with the same context. */
  readIndex(context: string): void {
    this.raft.step(message({ type: "readIndex", context }));
  }

  /**
   * Quiesces this leader if the group is idle (Raft.canQuiesce): a last heartbeat tells the
   * followers to stop their election timers, for at most `quietTicks` (plus an election timeout);
   * then no timer runs here until something wakes it. Returns whether it quiesced.
   */
  quiesce(quietTicks = Number.POSITIVE_INFINITY): boolean {
    return this.raft.quiesce(quietTicks);
  }

  /** Ends quiescence (the host got a request, or a deadline came): timers run again. */
  wake(): void {
    this.raft.wake();
  }

  transferLeader(transferee: NodeId): void {
    this.raft.step(message({ type: "transferLeader", from: transferee }));
  }

  /** The host could not deliver to `id`: stop streaming to it optimistically. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: "unreachable", from: id }));
  }

  reportSnapshot(id: NodeId, failed: boolean): void {
    this.raft.step(message({ type: "snapStatus", from: id, reject: failed }));
  }

  hasReady(): boolean {
    const r = this.raft;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.entries.length > 0 || r.log.unstable.snapshot !== undefined) return true;
    if (r.log.hasNextEntries()) return true;
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) return true;
    return !sameHardState(r.hardState(), this.prevHard);
  }

  /** The work to do now. Must be followed by `advance(ready)` before the next call. */
  ready(): Ready {
    const r = this.raft;
    const soft = r.softState();
    const hard = r.hardState();
    const rd: Ready = {
      entries: r.log.unstableEntries(),
      committedEntries: r.log.nextEntries(r.maxCommittedPerReady),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];
    const snapshot = r.log.unstable.snapshot;
    if (snapshot !== undefined) rd.snapshot = snapshot;
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) rd.softState = soft;
    if (!sameHardState(hard, this.prevHard)) rd.hardState = hard;
    rd.mustSync =
      rd.entries.length > 0 ||
      snapshot !== undefined ||
      hard.term !== this.prevHard.term ||
      hard.vote !== this.prevHard.vote;
    return rd;
  }

  /** The host has persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    const log = this.raft.log;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.hardState) this.prevHard = rd.hardState;
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) log.stableTo(last.index, last.term);
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > log.applied) log.appliedTo(rd.snapshot.metadata.index);
    }
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied !== undefined) log.appliedTo(applied.index);
  }

  status(): Status {
    const r = this.raft;
    const progress =
      r.role === "leader"
        ? [...r.prs].map(([id, pr]) => ({
            id,
            match: pr.match,
            next: pr.next,
            state: pr.state,
            recentActive: pr.recentActive,
          }))
        : [];
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      lead: r.lead,
      role: r.role,
      conf: r.conf,
      leadTransferee: r.leadTransferee,
      quiesced: r.quiesced,
      progress,
    };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
