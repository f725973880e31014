import { applyConfChange, confChangeError, decodeConfChange, sameConf } from "./conf.js";
import { RaftLog } from "./log.js";
import { Progress } from "./progress.js";
import { committedIndex, isMajority, type VoteResult, voteResult } from "./quorum.js";
import type { Rand } from "./rand.js";
import { type ReadIndexStatus, ReadOnly } from "./read-only.js";
import { CompactedError, type Storage } from "./storage.js";
import {
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  message,
  NONE,
  type NodeId,
  type ReadState,
  type SoftState,
  type StateRole,
} from "./types.js";

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Ticks without hearing from a leader before campaigning (randomised in [n, 2n)). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be well below electionTick. */
  heartbeatTick: number;
  /** Seeded randomness for election timeouts: Raft has none of its own. */
  rand: Rand;
  /** The last index the host's state machine has applied (restart of a durable state machine). */
  applied?: number;
  /** Append messages in flight per follower before the leader waits for acks. */
  maxInflight?: number;
  /** Entries per append message. */
  maxEntriesPerMsg?: number;
  /** Committed entries handed out per Ready. */
  maxCommittedPerReady?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /**
   * Send an (often empty) append to every follower as soon as the commit index moves, so they
   * apply at once (etcd's behaviour, the default). Off, followers learn it from the next append
   * or heartbeat: half the messages when only the leader serves reads.
   */
  broadcastCommit?: boolean;
}

/** A proposal the node cannot take: it is not leader, is transferring leadership, or the change is invalid. */
export class ProposalDroppedError extends Error {
  constructor(
    reason: string,
    readonly leader: NodeId = NONE,
  ) {
    super(`proposal dropped: ${reason}`);
  }
}

/** `vote.context` of a campaign forced by leadership transfer: it bypasses pre-vote and leases. */
export const CAMPAIGN_TRANSFER = "transfer";

const voteRespType = (t: MessageType): MessageType => (t === "vote" ? "voteResp" : "preVoteResp");

/**
 * `heartbeat.context` of a quiesce heartbeat (see Raft.quiesce): "quiesce" (quiet until woken) or
 * "quiesce:<ticks>" (quiet for at most that many ticks). ReadIndex contexts never take this form.
 */
export const QUIESCE = "quiesce";
/** The ReadIndex-style context of the heartbeat round a woken leader confirms itself with. */
const WAKE_CONTEXT = "quiesce-wake:";

export function quiesceContext(ticks: number): string {
  return Number.isFinite(ticks) ? `${QUIESCE}:${Math.max(1, Math.ceil(ticks))}` : QUIESCE;
}

/** The quiet ticks a quiesce heartbeat's context grants (Infinity: until woken); undefined for others. */
export function quietTicksOf(context: string): number | undefined {
  if (context === QUIESCE) return Number.POSITIVE_INFINITY;
  if (!context.startsWith(`${QUIESCE}:`)) return undefined;
  const n = Number(context.slice(QUIESCE.length + 1));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The Raft state machine of one peer. Input: `tick()` and `step(message)`. Output: the log's
 * unstable entries, `msgs` and `readStates`, collected by RawNode into a Ready. No I/O, no clock.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = "follower";
  readonly log: RaftLog;

  /** Configuration in force: the latest one in the log (dissertation §4.1), and where it came from. */
  conf: ConfState = { voters: [], learners: [] };
  private confIndex = 0;
  private confTerm = 0;

  /** Leader: replication state per member (voters and learners, including itself when a member). */
  readonly prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  /** Leader: no new conf change until the log is committed up to here. */
  private pendingConfIndex = 0;
  private readonly readOnly = new ReadOnly();
  private pendingReadIndex: Message[] = [];

  /**
   * Quiescence (CockroachDB's, see quiesce()): a quiesced peer counts no ticks, so a leader sends
   * no heartbeats and a follower runs no election timer, until something wakes it.
   */
  quiesced = false;
  /** A quiesced follower wakes by itself after this many more ticks (Infinity: only when woken). */
  private quietLeft = Number.POSITIVE_INFINITY;
  /** A leader woken from quiescence: the context of its confirming heartbeat round, until a majority answered. */
  private wakeContext: string | undefined;
  private wakeSeq = 0;

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly rand: Rand;
  private readonly maxInflight: number;
  private readonly maxEntriesPerMsg: number;
  readonly maxCommittedPerReady: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly broadcastCommit: boolean;

  constructor(cfg: RaftConfig) {
    if (cfg.heartbeatTick <= 0 || cfg.electionTick <= cfg.heartbeatTick) {
      throw new Error("need 0 < heartbeatTick < electionTick");
    }
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.rand = cfg.rand;
    this.maxInflight = cfg.maxInflight ?? 256;
    this.maxEntriesPerMsg = cfg.maxEntriesPerMsg ?? 4096;
    this.maxCommittedPerReady = cfg.maxCommittedPerReady ?? 65536;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.broadcastCommit = cfg.broadcastCommit ?? true;
    this.log = new RaftLog(cfg.storage, cfg.applied ?? 0);
    const { hardState } = cfg.storage.initialState();
    this.recomputeConf();
    this.becomeFollower(hardState.term, NONE);
    this.vote = hardState.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  isVoter(id: NodeId = this.id): boolean {
    return this.conf.voters.includes(id);
  }

  // ---- membership --------------------------------------------------------------------------

  /** Rebuilds the configuration from the snapshot and every entry after it. */
  private recomputeConf(): void {
    const meta = this.log.snapshot().metadata;
    this.conf = meta.conf;
    this.confIndex = meta.index;
    this.confTerm = meta.term;
    this.takeConfFrom(this.log.slice(this.log.firstIndex(), this.log.lastIndex() + 1));
  }

  /** Applies the conf entries of `ents` that are newer than the configuration in force. */
  private takeConfFrom(ents: readonly Entry[]): void {
    for (const e of ents) {
      if (e.type !== "conf" || e.index <= this.confIndex) continue;
      this.conf = applyConfChange(this.conf, decodeConfChange(e));
      this.confIndex = e.index;
      this.confTerm = e.term;
    }
  }

  /** After the log changed: a truncated conf entry reverts the configuration, a new one applies. */
  private syncConf(appended: readonly Entry[]): void {
    const before = this.conf;
    if (this.log.term(this.confIndex) !== this.confTerm) this.recomputeConf();
    else this.takeConfFrom(appended);
    if (sameConf(before, this.conf)) return;
    this.rebuildProgress();
    if (this.role !== "leader") return;
    if (this.leadTransferee !== NONE && !this.prs.has(this.leadTransferee)) this.leadTransferee = NONE;
    // The quorum changed: the commit index may move, and new members need the log.
    if (this.maybeCommit() && this.role === "leader") this.bcastAppend();
  }

  /** Keeps exactly one Progress per member; new ones start probing at the end of our log. */
  private rebuildProgress(): void {
    const members = new Set([...this.conf.voters, ...this.conf.learners]);
    for (const id of this.prs.keys()) if (!members.has(id)) this.prs.delete(id);
    const last = this.log.lastIndex();
    for (const id of members) {
      if (this.prs.has(id)) continue;
      const pr = new Progress(last + 1, this.maxInflight);
      if (id === this.id) pr.match = last;
      this.prs.set(id, pr);
    }
  }

  // ---- roles -------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.int(this.electionTimeout);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.pendingConfIndex = 0;
    this.readOnly.clear();
    this.pendingReadIndex = [];
    this.quiesced = false;
    this.quietLeft = Number.POSITIVE_INFINITY;
    this.wakeContext = undefined;
    this.prs.clear();
    this.rebuildProgress();
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = "follower";
  }

  private becomePreCandidate(): void {
    if (this.role === "leader") throw new Error("leader cannot become pre-candidate");
    // Pre-vote changes neither term nor vote: a partitioned node cannot inflate terms.
    this.votes.clear();
    this.lead = NONE;
    this.role = "preCandidate";
  }

  private becomeCandidate(): void {
    if (this.role === "leader") throw new Error("leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    if (this.role === "follower") throw new Error("follower cannot become leader");
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    this.prs.get(this.id)?.becomeReplicate();
    // A no-op of the new term lets the leader commit (and learn) everything before it (§5.4.2).
    // Conf changes wait for it: the fix for the single-server change bug (dissertation errata).
    this.appendEntries([{ term: 0, index: 0, type: "normal", data: "" }]);
    this.pendingConfIndex = this.log.lastIndex();
  }

  // ---- ticks -------------------------------------------------------------------------------

  tick(): void {
    if (this.quiesced) this.tickQuiet(1);
    else if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  /**
   * Counts up to `n` ticks of a quiesced peer, which do nothing but bring a bounded quiet to its
   * end (then the peer wakes). Returns how many it took: all `n`, or the ones before it woke.
   */
  tickQuiet(n: number): number {
    if (!this.quiesced || n <= 0) return 0;
    if (n < this.quietLeft) {
      this.quietLeft -= n;
      return n;
    }
    const took = this.quietLeft;
    this.wake();
    return took;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: "hup", from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: "checkQuorum", from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === "leader") this.leadTransferee = NONE;
    }
    if (this.role !== "leader") return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: "beat", from: this.id }));
    }
  }

  /** Ticks until this node's next timer fires (heartbeat or election): lets a host sleep till then. */
  ticksUntilTimeout(): number {
    // Quiesced: nothing until woken, or until a bounded quiet ends (Infinity: no timer at all).
    if (this.quiesced) return Math.max(1, this.quietLeft);
    if (this.role === "leader") {
      return Math.max(
        1,
        Math.min(this.heartbeatTimeout - this.heartbeatElapsed, this.electionTimeout - this.electionElapsed),
      );
    }
    return Math.max(1, this.randomizedElectionTimeout - this.electionElapsed);
  }

  // ---- quiescence --------------------------------------------------------------------------

  /**
   * May this leader quiesce? Every member has acknowledged its last entry, which is committed and
   * applied here, recently (heard from since the last check-quorum round); no ReadIndex request
   * and no leadership transfer is pending. The host adds its own conditions (see Replica).
   */
  canQuiesce(): boolean {
    if (this.role !== "leader" || this.quiesced || this.leadTransferee !== NONE) return false;
    if (this.pendingReadIndex.length > 0 || this.readOnly.lastPendingContext() !== "") return false;
    const last = this.log.lastIndex();
    if (this.log.committed !== last || this.log.applied !== last || this.log.unstable.entries.length > 0) return false;
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // (A follower in probe state with match = last is caught up too: an "unreachable" report
      // moves it there, and no new entry brings it back to replicate while the group is idle.)
      if (pr.match !== last || pr.state === "snapshot" || !pr.recentActive) return false;
    }
    return true;
  }

  /**
   * Quiesces an idle leader (CockroachDB's quiescence): one last heartbeat, carrying the commit
   * index and a quiesce mark, tells the followers to stop their election timers; then the leader
   * stops heartbeating. `quietTicks` bounds the followers' quiet: the host's next deadline (a
   * follower wakes by itself an election timeout after it, so that a leader that died meanwhile
   * is replaced in time); Infinity when the host has none. Returns whether it quiesced.
   *
   * Safety never depends on it: a quiesced peer is an ordinary peer that counts no ticks, and any
   * message other than a quiesce heartbeat, any proposal, read or transfer, wakes it (wake()).
   */
  quiesce(quietTicks = Number.POSITIVE_INFINITY): boolean {
    if (!this.canQuiesce()) return false;
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    const context = quiesceContext(quietTicks + this.electionTimeout);
    for (const id of this.prs.keys()) {
      if (id === this.id) continue;
      this.send(message({ type: "heartbeat", to: id, commit: this.log.committed, index, logTerm, context }));
    }
    this.quiesced = true;
    this.quietLeft = Number.POSITIVE_INFINITY;
    return true;
  }

  /**
   * Ends quiescence: the election timer (follower) or heartbeats and check-quorum (leader) start
   * again from zero, so silence while quiet counts for nothing. A woken leader first confirms by a
   * heartbeat round that a majority still follows it (confirmed()): it may have been deposed while
   * quiet, with no check-quorum to tell it.
   */
  wake(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.quietLeft = Number.POSITIVE_INFINITY;
    this.electionElapsed = 0;
    if (this.role !== "leader") return;
    this.heartbeatElapsed = 0;
    for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
    const context = `${WAKE_CONTEXT}${++this.wakeSeq}`;
    this.wakeContext = context;
    this.readOnly.add(context, this.log.committed, this.id);
    const acks = this.readOnly.recvAck(this.id, context);
    if (acks !== undefined && isMajority(this.conf.voters, acks)) {
      this.readOnly.advance(context);
      this.wakeContext = undefined;
      return;
    }
    this.bcastHeartbeat(context);
  }

  /**
   * Does `m` end this peer's quiescence? Every message does but those that change nothing: a
   * quiesce heartbeat, a message of an older term (answered or dropped), a host's report that a
   * peer is down, at a follower a plain heartbeat or an append of its leader that it already has
   * (no newer commit, entries it holds), and at a
   * leader a caught-up follower's late answer to a heartbeat or an append.
   */
  private wakesUp(m: Message): boolean {
    if (m.type === "unreachable" || (m.term !== 0 && m.term < this.term)) return false;
    if (m.type === "heartbeat" && quietTicksOf(m.context) !== undefined) return false;
    // A late (or reordered) plain heartbeat or append of our leader that tells nothing new: answered, no more.
    if (this.role === "follower" && m.term === this.term && m.from === this.lead && m.commit <= this.log.committed) {
      if (m.type === "heartbeat" && m.context === "") return false;
      const last = m.entries[m.entries.length - 1];
      const known =
        last === undefined ? this.log.matchTerm(m.index, m.logTerm) : this.log.matchTerm(last.index, last.term);
      if (m.type === "app" && known && m.index <= this.log.lastIndex()) return false;
    }
    if (this.role === "leader" && m.term === this.term && !m.reject) {
      const last = this.log.lastIndex();
      const caughtUp = this.prs.get(m.from)?.match === last;
      if (caughtUp && (m.type === "heartbeatResp" || (m.type === "appResp" && m.index <= last))) return false;
    }
    return true;
  }

  /**
   * A leader that is awake and, if it was ever quiesced in this term, has heard from a majority
   * since it woke. Only such a leader may answer from local state without a ReadIndex round.
   */
  confirmed(): boolean {
    return this.role === "leader" && !this.quiesced && this.wakeContext === undefined;
  }

  // ---- elections ---------------------------------------------------------------------------

  /**
   * May this node campaign? Voters may, and so may a node whose own removal is still uncommitted:
   * it may be needed to commit it (dissertation §4.2.2); its own vote does not count.
   */
  private promotable(): boolean {
    if (this.isVoter()) return true;
    return this.confIndex > this.log.committed && !this.conf.learners.includes(this.id);
  }

  private hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    this.campaign(this.preVote && !transfer ? "preVote" : "vote", transfer);
  }

  private campaign(type: "preVote" | "vote", transfer: boolean): void {
    let term: number;
    if (type === "preVote") {
      this.becomePreCandidate();
      term = this.term + 1; // the term we would use; ours is unchanged
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // A single voter wins at once.
      if (type === "preVote") this.campaign("vote", transfer);
      else this.becomeLeader();
      return;
    }
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      this.send(
        message({
          type,
          to: id,
          term,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          context: transfer ? CAMPAIGN_TRANSFER : "",
        }),
      );
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.conf.voters, this.votes);
  }

  // ---- step --------------------------------------------------------------------------------

  /** Processes one message: local (term 0) or from a peer. */
  step(m: Message): void {
    if (this.quiesced && this.wakesUp(m)) this.wake();
    if (m.term > this.term && m.term !== 0) {
      if (m.type === "vote" || m.type === "preVote") {
        // Check-quorum lease: while we hear from a leader, ignore disruptive campaigns.
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) return;
      }
      if (m.type === "preVote") {
        // A pre-vote never changes our term.
      } else if (m.type === "preVoteResp" && !m.reject) {
        // We bump our term once a quorum grants the pre-vote.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term && m.term !== 0) {
      if ((this.checkQuorum || this.preVote) && (m.type === "heartbeat" || m.type === "app")) {
        // A stale leader (e.g. back from a partition) learns the newer term from this reply.
        this.send(message({ type: "appResp", to: m.from }));
      } else if (m.type === "preVote") {
        this.send(message({ type: "preVoteResp", to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case "hup":
        this.hup(m.context === CAMPAIGN_TRANSFER);
        return;
      case "vote":
      case "preVote": {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === "preVote" && m.term > this.term);
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // The grant goes out after the vote is persisted: messages leave only after the Ready's persist.
          this.send(message({ type: voteRespType(m.type), to: m.from, term: m.term }));
          if (m.type === "vote") {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(message({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return;
      }
    }

    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        return;
      case "candidate":
      case "preCandidate":
        this.stepCandidate(m);
        return;
      case "follower":
        this.stepFollower(m);
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "beat":
        this.bcastHeartbeat();
        return;
      case "checkQuorum":
        if (!this.quorumActive()) this.becomeFollower(this.term, NONE);
        return;
      case "prop":
        this.propose(m.entries);
        return;
      case "readIndex":
        this.leaderReadIndex(m);
        return;
    }
    // Everything else is about one follower's progress.
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case "appResp":
        this.handleAppendResponse(m, pr);
        return;
      case "heartbeatResp":
        this.handleHeartbeatResponse(m, pr);
        return;
      case "unreachable":
        if (pr.state === "replicate") pr.becomeProbe();
        return;
      case "snapStatus":
        // Failed or not, go back to probing: a success is confirmed by the follower's appResp.
        if (pr.state === "snapshot") {
          if (m.reject) pr.pendingSnapshot = 0;
          pr.becomeProbe();
          pr.probeSent = true; // wait for a heartbeat response before the next probe
        }
        return;
      case "transferLeader":
        this.handleTransferLeader(m.from, pr);
        return;
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === "preCandidate" ? "preVoteResp" : "voteResp";
    switch (m.type) {
      case "prop":
        throw new ProposalDroppedError("no leader");
      case "app":
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResp: {
        const res = this.poll(m.from, !m.reject);
        if (res === "won") {
          if (this.role === "preCandidate") {
            this.campaign("vote", m.context === CAMPAIGN_TRANSFER);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "prop":
        throw new ProposalDroppedError("not leader", this.lead);
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case "transferLeader":
      case "readIndex":
        // Forwarded to the leader, which answers the original sender.
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, from: m.from === NONE ? this.id : m.from });
        return;
      case "readIndexResp":
        this.readStates.push({ index: m.index, context: m.context });
        return;
      case "timeoutNow":
        // The leader asks us to take over now (leadership transfer): skip pre-vote and leases.
        this.hup(true);
        return;
    }
  }

  // ---- leader: replication ------------------------------------------------------------------

  /** Appends proposals at the leader. Throws ProposalDroppedError when they cannot be taken. */
  private propose(entries: Entry[]): void {
    if (!this.isVoter()) throw new ProposalDroppedError("leader is being removed");
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError("leadership transfer in progress");
    let confAt = -1;
    entries.forEach((e, i) => {
      if (e.type !== "conf") return;
      if (confAt >= 0) throw new ProposalDroppedError("one conf change at a time");
      if (this.pendingConfIndex > this.log.committed) throw new ProposalDroppedError("a conf change is pending");
      const err = confChangeError(this.conf, decodeConfChange(e));
      if (err !== undefined) throw new ProposalDroppedError(err);
      confAt = i;
    });
    this.appendEntries(entries);
    if (confAt >= 0) this.pendingConfIndex = this.log.lastIndex() - entries.length + 1 + confAt;
    this.bcastAppend();
  }

  private appendEntries(entries: Entry[]): void {
    let i = this.log.lastIndex();
    for (const e of entries) {
      e.term = this.term;
      e.index = ++i;
    }
    const last = this.log.append(entries);
    this.syncConf(entries);
    this.prs.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
  }

  /** Advances the commit index to what a majority has (current-term entries only). */
  private maybeCommit(): boolean {
    const mci = committedIndex(this.conf.voters, (id) => this.prs.get(id)?.match ?? 0);
    if (!this.log.maybeCommit(mci, this.term)) return false;
    this.releasePendingReadIndex();
    // A leader that removed itself steps down once the removal is committed (dissertation §4.2.2).
    if (!this.isVoter() && this.log.committed >= this.confIndex) this.becomeFollower(this.term, NONE);
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends the entries `to` lacks (or a snapshot). Returns whether a message was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] | undefined;
    try {
      ents = this.log.entries(pr.next, this.maxEntriesPerMsg);
    } catch (e) {
      if (!(e instanceof CompactedError)) throw e;
    }
    if (prevTerm === undefined || ents === undefined) {
      // What it needs is compacted away: send the snapshot (only to a follower that answers).
      if (!pr.recentActive) return false;
      const snapshot = this.log.snapshot();
      this.send(message({ type: "snap", to, snapshot }));
      pr.becomeSnapshot(snapshot.metadata.index);
      return true;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      message({ type: "app", to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }),
    );
    const last = ents[ents.length - 1];
    if (last !== undefined) pr.sentEntries(last.index);
    else if (pr.state === "probe") pr.probeSent = true;
    return true;
  }

  private bcastHeartbeat(context = this.readOnly.lastPendingContext()): void {
    const last = this.log.lastIndex();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Liveness under message loss: restart replication that made no progress for a heartbeat,
      // and resend a snapshot that seems lost. Safety never depends on these.
      if (pr.state === "replicate" && pr.match < last && pr.match === pr.matchAtBeat) pr.becomeProbe();
      if (pr.state === "snapshot" && ++pr.snapshotAge * this.heartbeatTimeout > 2 * this.electionTimeout) {
        pr.becomeProbe();
      }
      pr.matchAtBeat = pr.match;
      const commit = Math.min(pr.match, this.log.committed);
      this.send(message({ type: "heartbeat", to: id, commit, context }));
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // Fast backtracking: skip every entry of a term the follower cannot have (§5.3, etcd's hint).
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
    else if (pr.state === "replicate") pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      if (this.role !== "leader") return; // stepped down after its own removal
      // Tell followers the new commit index now, or let it ride on the next append or heartbeat.
      if (this.broadcastCommit) this.bcastAppend();
      else if (wasPaused) this.sendAppend(m.from);
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    while (this.maybeSendAppend(m.from, false)) {
      // keep the pipeline full while the flow control allows
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send(message({ type: "timeoutNow", to: m.from }));
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // Free a slot so a follower whose acks were lost is not stuck behind a full window.
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (m.context === "") return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined || !isMajority(this.conf.voters, acks)) return;
    for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs);
  }

  private quorumActive(): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.prs) {
      if (id === this.id || pr.recentActive) active.add(id);
      if (id !== this.id) pr.recentActive = false;
    }
    return isMajority(this.conf.voters, active);
  }

  private handleTransferLeader(transferee: NodeId, pr: Progress): void {
    if (!this.isVoter(transferee) || transferee === this.id) return;
    if (this.leadTransferee === transferee) return;
    this.leadTransferee = transferee;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    if (pr.match === this.log.lastIndex()) this.send(message({ type: "timeoutNow", to: transferee }));
    else this.sendAppend(transferee);
  }

  // ---- leader: ReadIndex --------------------------------------------------------------------

  private leaderReadIndex(m: Message): void {
    const from = m.from === NONE ? this.id : m.from;
    if (this.conf.voters.length === 1 && this.isVoter()) {
      this.answerRead({ context: m.context, index: this.log.committed, from, acks: new Set() });
      return;
    }
    // Until an entry of this term commits, our commit index may be behind the real one (§6.4).
    if (this.log.term(this.log.committed) !== this.term) {
      this.pendingReadIndex.push(m);
      return;
    }
    this.readOnly.add(m.context, this.log.committed, from);
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeat(m.context);
  }

  private releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const m of pending) this.leaderReadIndex(m);
  }

  private answerRead(rs: ReadIndexStatus): void {
    if (rs.context === this.wakeContext) {
      this.wakeContext = undefined; // confirmed: a majority answered the heartbeat round after waking
      return;
    }
    if (rs.context.startsWith(WAKE_CONTEXT)) return;
    if (rs.from === this.id) this.readStates.push({ index: rs.index, context: rs.context });
    else this.send(message({ type: "readIndexResp", to: rs.from, index: rs.index, context: rs.context }));
  }

  // ---- follower -----------------------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: "appResp", to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.syncConf(m.entries);
      this.send(message({ type: "appResp", to: m.from, index: lastNew }));
      return;
    }
    // Reject with a hint: the last index ≤ m.index whose term is ≤ m.logTerm (fast backtracking).
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      message({
        type: "appResp",
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    const quiet = quietTicksOf(m.context);
    if (quiet !== undefined) {
      // A quiesce heartbeat: quiesce only holding exactly the leader's log, all of it committed.
      const last = this.log.lastIndex();
      if (m.index === last && m.commit === last && this.log.matchTerm(m.index, m.logTerm)) {
        this.log.commitTo(m.commit);
        this.quiesced = true;
        this.quietLeft = quiet;
        return; // no answer: the leader is quiet too
      }
      // Not caught up after all: an ordinary answer wakes the leader, which sends what is missing.
      this.send(message({ type: "heartbeatResp", to: m.from }));
      return;
    }
    this.log.commitTo(m.commit);
    this.send(message({ type: "heartbeatResp", to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    const { index, term } = s.metadata;
    if (index <= this.log.committed) {
      this.send(message({ type: "appResp", to: m.from, index: this.log.committed }));
    } else if (this.log.matchTerm(index, term)) {
      // We already have the snapshot's last entry: just fast-forward the commit index.
      this.log.commitTo(index);
      this.send(message({ type: "appResp", to: m.from, index: this.log.committed }));
    } else {
      this.log.restore(s);
      this.syncConf([]);
      this.send(message({ type: "appResp", to: m.from, index: this.log.lastIndex() }));
    }
  }

  // ---- output -------------------------------------------------------------------------------

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    // Votes carry their own term; forwarded proposals and reads stay local (term 0).
    const ownTerm = m.type === "vote" || m.type === "preVote" || m.type === "voteResp" || m.type === "preVoteResp";
    if (!ownTerm && m.type !== "readIndex" && m.type !== "transferLeader") m.term = this.term;
    this.msgs.push(m);
  }
}
