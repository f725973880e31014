import { emptyHistogram, type HistogramData, LATENCY_BUCKETS_SECONDS, observe } from "../metrics/histogram.js";
import {
  type ConfChange,
  type Entry,
  type HardState,
  type Message,
  NONE,
  type NodeId,
  type Rand,
  RawNode,
  type Snapshot,
  type StateMachine,
  type Status,
  type Storage,
} from "../raft/index.js";

/** Storage a replica can write: one Ready atomically, and compaction. */
export interface DurableLog extends Storage {
  /** Writes one Ready's durable part atomically; returns whether it wrote anything. */
  persist(rd: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot }): boolean;
  createSnapshot(index: number, data: string): Snapshot;
}

/** Sends a batch of messages to one peer, fire and forget: Raft retries what is lost. */
export interface Transport {
  send(to: NodeId, msgs: Message[]): void;
}

export interface ReplicaConfig<R> {
  id: NodeId;
  storage: DurableLog;
  transport: Transport;
  machine: StateMachine<R>;
  rand: Rand;
  /** Wall-clock length of one Raft tick. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Applied entries kept in the log before it is compacted into a snapshot. */
  compactEvery: number;
  /** Runs `fn` soon, after the current event: proposals arriving meanwhile share one Ready. */
  defer: (fn: () => void) => void;
  /** Resolves when every write so far is durable (a Durable Object's `storage.sync()`). */
  whenDurable?: () => Promise<void>;
  /** Append messages in flight per follower: few, so that entries travel in batches. */
  maxInflight?: number;
  now: number;
  /** This peer's own clock (ms); defaults to the last `now` the host passed in. */
  clock?: () => number;
  /** The state machine's time: the largest command time it has applied (see groupNow). */
  machineTime?: () => number;
  /**
   * How fast a peer's clock may run compared to real time, in parts per million: the group clock
   * runs that much slower, so a lease measured on a fast clock still lasts its full length.
   */
  maxDriftPpm?: number;
  /** Every applied normal entry with its result, on every replica (the lock waiters listen here). */
  onApply?: (entry: Entry, result: R) => void;
  /**
   * Quiesce the group when it is idle (see maybeQuiesce): the leader stops heartbeating and the
   * followers their election timers, and nextWakeup() is +Infinity. Off by default.
   */
  quiesce?: boolean;
  /**
   * The host's next timed work on a leader (a lease or wait deadline, a time stamp), on this
   * peer's clock; undefined when none. A leader quiesces only when it is not near, and followers
   * wake by themselves an election timeout after it (in case the leader died while quiet).
   */
  nextDeadline?: () => number | undefined;
}

/** A leader quiesces only if the host's next deadline is at least this many heartbeat intervals away. */
export const QUIESCE_HORIZON_HEARTBEATS = 3;

/** Group time `t` corresponds to this peer's local clock reading `l` (see Replica.groupNow). */
export interface TimeAnchor {
  t: number;
  l: number;
  term: number;
}

/** This replica is not the leader; `leader` is its best guess (NONE when unknown). */
export class NotLeaderError extends Error {
  constructor(readonly leader: NodeId) {
    super(`not the leader (leader: ${leader === NONE ? "unknown" : leader})`);
  }
}

/** The state machine threw on this command: it was committed but had no effect. */
export class CommandFailedError extends Error {
  constructor(
    readonly index: number,
    cause: unknown,
  ) {
    super(`command at index ${index} could not be applied: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/**
 * This replica can no longer tell whether a proposal took effect (a snapshot replaced the log
 * around it): the caller should retry with the same request id, which applies it at most once.
 */
export class OutcomeUnknownError extends Error {
  constructor() {
    super("the outcome of the proposal is unknown here; retry it with the same request id");
  }
}

/** A different entry was committed at the proposal's index: it did not take effect. */
export class ProposalLostError extends Error {
  constructor() {
    super("proposal was superseded by a new leader and did not take effect");
  }
}

interface PendingProposal<R> {
  term: number;
  /** When it entered Raft (this peer's clock), for the commit latency; absent for membership changes. */
  at?: number;
  resolve: (result: R) => void;
  reject: (e: Error) => void;
}

interface PendingRead {
  /** The term this replica led when the read came in: only that leadership can serve it. */
  term: number;
  index: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Counters of one replica since it was built, in memory (a restart, or an eviction of the Durable
 * Object, starts them again at zero), for `/metrics`.
 */
export interface ReplicaMetrics {
  /** Commands this peer proposed as leader. */
  proposals: number;
  /** From a proposal entering Raft to its apply on this leader, in seconds. */
  commitSeconds: HistogramData;
  /** Elections this peer started: terms in which it voted for itself (campaigns; pre-votes are not counted). */
  elections: number;
  /** Times this peer learned of a new leader (etcd's leader_changes_seen). */
  leaderChanges: number;
  /** Snapshots this peer took of its state (log compaction). */
  snapshotsCreated: number;
  /** Snapshots this peer installed from its leader. */
  snapshotsInstalled: number;
}

/**
 * One replica of a Raft group, with the host loop of raw-node.ts: persist each Ready, send its
 * messages, apply committed entries, advance. It turns proposals and reads into promises and wall
 * time into ticks. No runtime APIs: the Durable Object (or a test) supplies storage, transport,
 * clock and `defer`.
 */
export class Replica<R> {
  readonly raw: RawNode;
  private readonly proposals = new Map<number, PendingProposal<R>>();
  private readonly confChanges = new Map<number, PendingProposal<void>>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly lastHeard = new Map<NodeId, number>();
  /** Callers waiting for this leader to serve (see whenServing). */
  private servingWaiters: { term: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readSeq = 0;
  private lastTick: number;
  private flushQueued = false;
  /** Log weight applied since the last snapshot, and that snapshot's size (see maybeCompact). */
  private bytesSinceSnapshot = 0;
  private lastSnapshotBytes = 0;
  private batchQueued = false;
  /** Proposals not yet handed to Raft (see queueBatch). */
  private inbox: { data: string; resolve: (r: R) => void; reject: (e: Error) => void }[] = [];
  /** Resolves once the last write is durable; undefined when nothing is being written. */
  private durable: Promise<void> | undefined;
  private applied: number;
  /** Where group time stands on this peer's clock, fixed when this peer's leadership began to serve. */
  private anchor: TimeAnchor | undefined;
  /** After stop() (a crash): nothing more is written, sent, applied or answered. */
  private stopped = false;
  readonly metrics: ReplicaMetrics = {
    proposals: 0,
    commitSeconds: emptyHistogram(LATENCY_BUCKETS_SECONDS),
    elections: 0,
    leaderChanges: 0,
    snapshotsCreated: 0,
    snapshotsInstalled: 0,
  };
  /** The term and leader last seen by countElections. */
  private seenTerm = 0;
  private seenLead: NodeId = NONE;

  constructor(private readonly cfg: ReplicaConfig<R>) {
    const snap = cfg.storage.snapshot();
    cfg.machine.restore(snap.data);
    this.applied = snap.metadata.index;
    this.lastSnapshotBytes = snap.data.length;
    this.raw = new RawNode({
      id: cfg.id,
      storage: cfg.storage,
      electionTick: cfg.electionTicks,
      heartbeatTick: cfg.heartbeatTicks,
      rand: cfg.rand,
      applied: this.applied,
      maxInflight: cfg.maxInflight ?? 4,
      // Clients are served by the leader only: followers may learn commits a heartbeat later.
      broadcastCommit: false,
    });
    this.lastTick = cfg.now;
    this.seenTerm = this.raw.raft.term;
  }

  get id(): NodeId {
    return this.cfg.id;
  }

  isLeader(): boolean {
    return !this.stopped && this.raw.raft.role === "leader";
  }

  leader(): NodeId {
    return this.stopped ? NONE : this.raw.raft.lead;
  }

  /**
   * A leader whose applied state includes every write acknowledged before its term: it has
   * applied its term's first entry (the no-op), and with it everything committed earlier. Only
   * such a leader may answer from local state or stamp commands with group time.
   */
  servesReads(): boolean {
    // A leader woken from quiescence serves once a majority has answered it again (Raft.confirmed):
    // while quiet, nothing (no check-quorum) would have told it that it was deposed.
    return this.anchored() && this.raw.raft.confirmed();
  }

  /**
   * The time of a read that skips the quorum round (a metrics scrape, a stale listing): group
   * time on a leader that serves, else `applied`, the time of the last command it applied.
   */
  staleTime(local: number, applied: number): number {
    return this.servesReads() ? this.groupNow(local) : applied;
  }

  /**
   * A leader whose group clock is set for its term (it applied the term's first entry), awake or
   * quiesced: its group times (wallTime, groupNow) are valid, e.g. to arm the next deadline.
   */
  anchored(): boolean {
    return this.isLeader() && this.anchor?.term === this.raw.raft.term;
  }

  /** Resolves once this replica is a leader that serves (servesReads); rejects if it is not leader. */
  whenServing(): Promise<void> {
    this.wakeIfQuiet();
    if (this.servesReads()) return Promise.resolve();
    if (!this.isLeader()) return Promise.reject(new NotLeaderError(this.leader()));
    const term = this.raw.raft.term;
    return new Promise((resolve, reject) => this.servingWaiters.push({ term, resolve, reject }));
  }

  /**
   * Group time at this peer's clock reading `local`: the time a serving leader stamps on commands.
   *
   * A leader's own clock may be ahead of its predecessor's: stamping with it would end leases,
   * waits and visibility timeouts early in real time. So group time only ever advances by
   * elapsed time: when a leader starts to serve (its no-op applied), it anchors the group's
   * latest command time to its clock reading at that moment, and from there adds the time its
   * own clock measures, slowed by the drift bound. No reading of any clock is trusted, only
   * differences, so the offset between peers' clocks does not matter; each leader change
   * lengthens deadlines by the time from the last stamped command to the new leader's no-op.
   */
  groupNow(local: number): number {
    const a = this.anchor;
    if (a === undefined) return local;
    const rate = 1 - (this.cfg.maxDriftPpm ?? 0) / 1e6;
    return Math.floor(a.t + (local - a.l) * rate);
  }

  /** The largest command time the state machine has applied (0 before any). */
  lastCommandTime(): number {
    return this.cfg.machineTime?.() ?? 0;
  }

  /**
   * A group time as a reading of this peer's clock (what answers report as Unix ms). One fixed
   * offset per term, so every answer of a leader reports a deadline the same way; the drift
   * allowance only ever makes the real end later than reported.
   */
  wallTime(groupTime: number): number {
    const a = this.anchor;
    return a === undefined ? groupTime : groupTime + (a.l - a.t);
  }

  /** The first reading of this peer's clock at which groupNow reaches `groupTime` (for alarms). */
  localAt(groupTime: number): number {
    const a = this.anchor;
    if (a === undefined) return groupTime;
    const rate = 1 - (this.cfg.maxDriftPpm ?? 0) / 1e6;
    return a.l + Math.ceil((groupTime - a.t) / rate);
  }

  /** This peer's clock was stepped by `deltaMs` (a fault): measure elapsed time across the step. */
  clockStepped(deltaMs: number): void {
    this.lastTick += deltaMs;
    if (this.anchor !== undefined) this.anchor = { ...this.anchor, l: this.anchor.l + deltaMs };
  }

  /** When (local clock) this peer last took a proposal, read or membership change; see wakeIfQuiet. */
  private lastBusy = Number.NEGATIVE_INFINITY;

  private localNow(): number {
    return this.cfg.clock?.() ?? this.lastTick;
  }

  /** Proposes one command; resolves with its result once committed and applied here. */
  propose(data: string): Promise<R> {
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
    this.wakeIfQuiet();
    return new Promise((resolve, reject) => {
      this.inbox.push({ data, resolve, reject });
      this.queueBatch();
    });
  }

  /**
   * Group commit: proposals wait in the inbox while the last write is becoming durable, then go
   * to Raft together, as one append, one write and one message per follower.
   */
  private queueBatch(): void {
    if (this.batchQueued) return;
    this.batchQueued = true;
    const go = () =>
      this.cfg.defer(() => {
        this.batchQueued = false;
        this.proposeInbox();
      });
    if (this.durable === undefined) go();
    else this.durable.then(go, go);
  }

  private proposeInbox(): void {
    if (this.stopped) return;
    const batch = this.inbox;
    this.inbox = [];
    if (batch.length === 0) return;
    if (!this.isLeader()) {
      const err = new NotLeaderError(this.leader());
      for (const p of batch) p.reject(err);
      return;
    }
    let first: { index: number; term: number };
    try {
      first = this.raw.propose(batch.map((p) => p.data));
    } catch (e) {
      for (const p of batch) p.reject(e as Error);
      return;
    }
    this.metrics.proposals += batch.length;
    const at = this.localNow();
    batch.forEach((p, i) => {
      // A proposal of an earlier term at this index was cut from the log before it was applied
      // (this peer led, lost the lead, and leads again): it never will be.
      this.proposals.get(first.index + i)?.reject(new ProposalLostError());
      this.proposals.set(first.index + i, { term: first.term, at, resolve: p.resolve, reject: p.reject });
    });
    this.flush(NONE);
  }

  /** Proposes one membership change; resolves once it is applied here. */
  changeMembership(cc: ConfChange): Promise<void> {
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
    this.wakeIfQuiet();
    const { index, term } = this.raw.proposeConfChange(cc);
    this.confChanges.get(index)?.reject(new ProposalLostError());
    this.queueFlush();
    return new Promise((resolve, reject) => this.confChanges.set(index, { term, resolve: () => resolve(), reject }));
  }

  /**
   * Leader housekeeping: promotes learners that have caught up (within `slack` entries), one at a
   * time, so a new peer votes only once it can keep up.
   */
  promoteCaughtUpLearners(slack = 16): void {
    if (!this.isLeader() || this.confChanges.size > 0) return;
    const { progress, conf, lastIndex } = this.raw.status();
    const ready = progress.find((p) => conf.learners.includes(p.id) && p.match + slack >= lastIndex);
    if (ready === undefined) return;
    this.changeMembership({ type: "promote", node: ready.id }).catch(() => undefined);
  }

  /** Resolves once local state reflects every write committed before the call (ReadIndex). */
  read(): Promise<void> {
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
    this.wakeIfQuiet();
    const context = `${this.cfg.id}:${++this.readSeq}`;
    this.raw.readIndex(context);
    this.queueFlush();
    const term = this.raw.raft.term;
    return new Promise((resolve, reject) => this.reads.set(context, { term, index: -1, resolve, reject }));
  }

  /** Messages from peer `from`. Returns the replies to it, so they can ride back on the same call. */
  receive(from: NodeId, msgs: readonly Message[], now: number): Message[] {
    if (this.stopped) return [];
    // Count the time that passed first: ticks owed from before these messages must not be
    // charged after them (a heartbeat would otherwise be followed by a spurious election timeout).
    this.advanceClock(now);
    this.lastHeard.set(from, now);
    for (const m of msgs) this.raw.step(m);
    return this.flush(from);
  }

  /** Turns elapsed wall time into ticks (several if the object slept), then does the work. */
  tick(now: number): void {
    if (this.stopped) return;
    if (!this.advanceClock(now)) return;
    this.maybeQuiesce();
    this.flush(NONE);
  }

  /** Quiesced: no Raft timer runs here until something wakes it (nextWakeup() is +Infinity, or a bounded quiet's end). */
  isQuiesced(): boolean {
    return !this.stopped && this.raw.raft.quiesced;
  }

  /**
   * The host's wake hook: a client request reached this peer, or a deadline came. Ends this
   * peer's quiescence: a follower runs its election timer again (and so replaces a leader that
   * died while quiet), a leader heartbeats and confirms its leadership. Harmless when awake.
   */
  wake(): void {
    if (this.stopped || !this.raw.raft.quiesced) return;
    // Quiet ticks first: they must not be charged to the election timer after waking.
    this.advanceClock(this.localNow());
    this.raw.wake();
    this.flush(NONE);
  }

  /**
   * Proposals, reads and membership changes wake a quiesced leader (its heartbeat leaves on the
   * next flush), and keep an awake one from quiescing for an election timeout: a group that gets
   * a request every few ticks would otherwise quiesce between them and pay a wake-up round trip
   * on each (measured: locks at c=1 fell from ~300 to ~140 ops/s).
   */
  private wakeIfQuiet(): void {
    this.lastBusy = this.localNow();
    if (this.stopped || !this.raw.raft.quiesced) return;
    this.raw.wake();
    this.queueFlush();
  }

  /**
   * Quiesces an idle leader (Raft.quiesce) when the host has nothing in flight either: no
   * proposal waiting or in Raft, no read, no membership change, no learner to promote, no caller
   * waiting for it to serve, and the host's next deadline (a lease, a wait, a time stamp) at
   * least QUIESCE_HORIZON_HEARTBEATS heartbeat intervals away. Run on ticks only.
   */
  private maybeQuiesce(): void {
    if (!this.cfg.quiesce || !this.servesReads()) return;
    if (this.localNow() - this.lastBusy < this.cfg.electionTicks * this.cfg.tickMs) return;
    if (this.inbox.length > 0 || this.batchQueued || this.proposals.size > 0 || this.confChanges.size > 0) return;
    if (this.reads.size > 0 || this.servingWaiters.length > 0 || this.raw.raft.conf.learners.length > 0) return;
    let quietTicks = Number.POSITIVE_INFINITY;
    const deadline = this.cfg.nextDeadline?.();
    if (deadline !== undefined) {
      const ms = deadline - this.localNow();
      if (ms < QUIESCE_HORIZON_HEARTBEATS * this.cfg.heartbeatTicks * this.cfg.tickMs) return;
      quietTicks = Math.ceil(ms / this.cfg.tickMs);
    }
    this.raw.quiesce(quietTicks);
  }

  /**
   * Runs the ticks due by `now`; true if any ran. A leader that was paused (a late alarm, a long
   * apply) runs at most one heartbeat interval of them: the replies its followers sent meanwhile
   * are still waiting to be stepped, and counting the whole pause at once would pass check-quorum
   * rounds in which they could not be heard, deposing a leader with healthy followers. Time a
   * leader spends paused is time it did not lead; elections elsewhere still run on their clocks.
   */
  private advanceClock(now: number): boolean {
    const due = Math.floor((now - this.lastTick) / this.cfg.tickMs);
    if (due <= 0) return false;
    this.lastTick += due * this.cfg.tickMs;
    // A quiesced peer's ticks do nothing (the ones left after a bounded quiet ends run as usual).
    const left = due - this.raw.raft.tickQuiet(due);
    // After a long sleep, a couple of election timeouts of ticks is all that matters.
    const owed = this.isLeader() ? this.cfg.heartbeatTicks : 2 * this.cfg.electionTicks;
    for (let i = 0; i < Math.min(left, owed); i++) this.raw.tick();
    return true;
  }

  /**
   * When the next Raft timer fires (heartbeat or election timeout), in wall-clock ms; +Infinity
   * for a quiesced peer with no bound on its quiet (then the host sets no alarm for Raft).
   */
  nextWakeup(): number {
    const ticks = this.raw.raft.ticksUntilTimeout();
    if (!Number.isFinite(ticks)) return Number.POSITIVE_INFINITY;
    return this.lastTick + ticks * this.cfg.tickMs;
  }

  /** The host crashed or is shutting down: every waiting caller gets `error`. */
  failAll(error: Error): void {
    for (const p of [...this.proposals.values(), ...this.confChanges.values(), ...this.inbox]) p.reject(error);
    this.inbox = [];
    this.confChanges.clear();
    for (const r of this.reads.values()) r.reject(error);
    this.proposals.clear();
    this.reads.clear();
    for (const w of this.servingWaiters) w.reject(error);
    this.servingWaiters = [];
  }

  /**
   * A crash: every waiting caller gets `error`, and from now on this replica does nothing at all:
   * work already scheduled (a deferred flush, a batch waiting for durability) writes nothing,
   * sends nothing and applies nothing. A restart builds a new replica from storage.
   */
  stop(error: Error): void {
    this.stopped = true;
    this.failAll(error);
  }

  /** Raft status, plus how long ago each peer was last heard from (at wall time `now`). */
  status(now: number): Status & { lastContactMs: Map<NodeId, number> } {
    const lastContactMs = new Map([...this.lastHeard].map(([id, at]) => [id, Math.max(0, now - at)]));
    return { ...this.raw.status(), lastContactMs };
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.cfg.defer(() => {
      this.flushQueued = false;
      this.flush(NONE);
    });
  }

  /** The host loop: persist, send, apply, advance, until there is nothing left to do. */
  private flush(replyTo: NodeId): Message[] {
    const replies: Message[] = [];
    if (this.stopped) return replies;
    while (this.raw.hasReady()) {
      const rd = this.raw.ready();
      if (this.cfg.storage.persist(rd) && this.cfg.whenDurable !== undefined) {
        const durable: Promise<void> = this.cfg.whenDurable().finally(() => {
          if (this.durable === durable) this.durable = undefined;
        });
        this.durable = durable;
      }
      const byPeer = new Map<NodeId, Message[]>();
      for (const m of rd.messages) {
        if (m.to === replyTo) replies.push(m);
        else {
          const batch = byPeer.get(m.to);
          if (batch === undefined) byPeer.set(m.to, [m]);
          else batch.push(m);
        }
      }
      for (const [to, batch] of byPeer) this.cfg.transport.send(to, batch);
      if (rd.snapshot !== undefined) this.installSnapshot(rd.snapshot.metadata.index, rd.snapshot.data);
      for (const e of rd.committedEntries) this.apply(e);
      for (const rs of rd.readStates) {
        const r = this.reads.get(rs.context);
        if (r !== undefined) r.index = rs.index;
      }
      this.raw.advance(rd);
      this.resolveReads();
      this.maybeCompact();
    }
    this.failStaleWaiters();
    this.releaseServingWaiters();
    this.countElections();
    return replies;
  }

  /** A new term in which this peer voted for itself is an election it started; a new known leader, a leader change. */
  private countElections(): void {
    const { term, vote, lead } = this.raw.raft;
    if (term !== this.seenTerm) {
      if (vote === this.cfg.id) this.metrics.elections++;
      this.seenTerm = term;
    }
    if (lead !== this.seenLead) {
      if (lead !== NONE) this.metrics.leaderChanges++;
      this.seenLead = lead;
    }
  }

  /**
   * Reads and serving waiters belong to the leadership (term) they arrived in. Once this replica
   * no longer leads in that term — deposed by a message or a tick stepped before this flush, or
   * leading again in a later term — they fail at once: a deposed leader never gets their
   * ReadState, and a later leadership must not run requests the Worker has long answered.
   * Proposals stay: they may still commit under the new leader, and apply tells.
   */
  private failStaleWaiters(): void {
    const leading = this.isLeader() ? this.raw.raft.term : -1;
    // Built only when someone is failed: this runs on every flush, and an Error's stack is dear.
    let err: NotLeaderError | undefined;
    const fail = () => {
      err ??= new NotLeaderError(this.leader());
      return err;
    };
    for (const [ctx, r] of this.reads) {
      if (r.term === leading) continue;
      this.reads.delete(ctx);
      r.reject(fail());
    }
    const stale = this.servingWaiters.filter((w) => w.term !== leading);
    if (stale.length === 0) return;
    this.servingWaiters = this.servingWaiters.filter((w) => w.term === leading);
    for (const w of stale) w.reject(fail());
  }

  /**
   * The leader sent a snapshot that replaces the log up to `index`. The entries of proposals and
   * membership changes waiting at or below it will never be applied here one by one, so their
   * outcome is unknown to this replica: they are rejected (the Worker retries with the same
   * request id, which applies at most once), and the change slot is freed for promotions.
   */
  private installSnapshot(index: number, data: string): void {
    this.metrics.snapshotsInstalled++;
    this.cfg.machine.restore(data);
    this.applied = index;
    this.lastSnapshotBytes = data.length;
    this.bytesSinceSnapshot = 0;
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      p.reject(new OutcomeUnknownError());
    }
    for (const [i, c] of this.confChanges) {
      if (i > index) continue;
      this.confChanges.delete(i);
      c.reject(new OutcomeUnknownError());
    }
  }

  private apply(e: Entry): void {
    this.applied = e.index;
    this.bytesSinceSnapshot += e.data.length;
    const pending = this.proposals.get(e.index);
    this.proposals.delete(e.index);
    const change = this.confChanges.get(e.index);
    this.confChanges.delete(e.index);
    if (change !== undefined) {
      if (e.type === "conf" && e.term === change.term) change.resolve();
      else change.reject(new ProposalLostError());
    }
    if (e.term === this.raw.raft.term && this.isLeader() && this.anchor?.term !== e.term) this.startServing(e.term);
    if (e.type !== "normal" || e.data === "") {
      pending?.reject(new ProposalLostError());
      return;
    }
    let result: R;
    try {
      result = this.cfg.machine.apply(e);
    } catch (err) {
      // Every replica fails the same way on the same entry: it becomes an error for its proposer
      // and the log moves on. (Rethrowing would re-apply the batch's prefix on the next flush.)
      if (pending?.term === e.term) pending.reject(new CommandFailedError(e.index, err));
      else pending?.reject(new ProposalLostError());
      return;
    }
    try {
      this.cfg.onApply?.(e, result);
    } catch (err) {
      console.error("onApply failed", err);
    }
    if (pending === undefined) return;
    if (pending.term === e.term) {
      if (pending.at !== undefined)
        observe(this.metrics.commitSeconds, Math.max(0, this.localNow() - pending.at) / 1000);
      pending.resolve(result);
    } else pending.reject(new ProposalLostError());
  }

  /** This leader applied its term's first entry: fix group time to its clock and serve. */
  private startServing(term: number): void {
    const local = this.localNow();
    const t = this.cfg.machineTime?.() ?? local;
    // A fresh group (no command applied yet) starts group time at its first leader's clock.
    this.anchor = { t: t > 0 ? t : local, l: local, term };
    const stale = this.servingWaiters.filter((w) => w.term !== term);
    this.servingWaiters = this.servingWaiters.filter((w) => w.term === term);
    for (const w of stale) w.reject(new NotLeaderError(this.leader()));
    this.releaseServingWaiters();
  }

  /** Callers waiting for this leader to serve go on once it does (its no-op applied; confirmed after waking). */
  private releaseServingWaiters(): void {
    if (this.servingWaiters.length === 0 || !this.servesReads()) return;
    const term = this.raw.raft.term;
    const ready = this.servingWaiters.filter((w) => w.term === term);
    this.servingWaiters = this.servingWaiters.filter((w) => w.term !== term);
    for (const w of ready) w.resolve();
  }

  private resolveReads(): void {
    for (const [ctx, r] of this.reads) {
      if (r.index < 0 || r.index > this.applied) continue;
      this.reads.delete(ctx);
      r.resolve();
    }
  }

  /**
   * Compacts once at least `compactEvery` entries were applied since the last snapshot and they
   * weigh at least as much as that snapshot did: a snapshot costs time proportional to the live
   * state (a large queue), so it is taken at most once per that many bytes of log, amortised.
   */
  private maybeCompact(): void {
    if (this.applied - this.cfg.storage.firstIndex() < this.cfg.compactEvery) return;
    if (this.bytesSinceSnapshot < this.lastSnapshotBytes) return;
    const image = this.cfg.machine.snapshot();
    this.cfg.storage.createSnapshot(this.applied, image);
    this.metrics.snapshotsCreated++;
    this.lastSnapshotBytes = image.length;
    this.bytesSinceSnapshot = 0;
  }
}
