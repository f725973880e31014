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
  /** Every applied normal entry with its result, on every replica (the lock waiters listen here). */
  onApply?: (entry: Entry, result: R) => void;
}

/** This replica is not the leader; `leader` is its best guess (NONE when unknown). */
export class NotLeaderError extends Error {
  constructor(readonly leader: NodeId) {
    super(`not the leader (leader: ${leader === NONE ? "unknown" : leader})`);
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
  resolve: (result: R) => void;
  reject: (e: Error) => void;
}

interface PendingRead {
  index: number;
  resolve: () => void;
  reject: (e: Error) => void;
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
  }

  get id(): NodeId {
    return this.cfg.id;
  }

  isLeader(): boolean {
    return this.raw.raft.role === "leader";
  }

  leader(): NodeId {
    return this.raw.raft.lead;
  }

  /** Proposes one command; resolves with its result once committed and applied here. */
  propose(data: string): Promise<R> {
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
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
    batch.forEach((p, i) => {
      this.proposals.set(first.index + i, { term: first.term, resolve: p.resolve, reject: p.reject });
    });
    this.flush(NONE);
  }

  /** Proposes one membership change; resolves once it is applied here. */
  changeMembership(cc: ConfChange): Promise<void> {
    if (!this.isLeader()) throw new NotLeaderError(this.leader());
    const { index, term } = this.raw.proposeConfChange(cc);
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
    const context = `${this.cfg.id}:${++this.readSeq}`;
    this.raw.readIndex(context);
    this.queueFlush();
    return new Promise((resolve, reject) => this.reads.set(context, { index: -1, resolve, reject }));
  }

  /** Messages from peer `from`. Returns the replies to it, so they can ride back on the same call. */
  receive(from: NodeId, msgs: readonly Message[], now: number): Message[] {
    // Count the time that passed first: ticks owed from before these messages must not be
    // charged after them (a heartbeat would otherwise be followed by a spurious election timeout).
    this.advanceClock(now);
    this.lastHeard.set(from, now);
    for (const m of msgs) this.raw.step(m);
    return this.flush(from);
  }

  /** Turns elapsed wall time into ticks (several if the object slept), then does the work. */
  tick(now: number): void {
    if (this.advanceClock(now)) this.flush(NONE);
  }

  /** Runs the ticks due by `now`; true if any ran. */
  private advanceClock(now: number): boolean {
    const due = Math.floor((now - this.lastTick) / this.cfg.tickMs);
    if (due <= 0) return false;
    this.lastTick += due * this.cfg.tickMs;
    // After a long sleep, a couple of election timeouts of ticks is all that matters.
    for (let i = 0; i < Math.min(due, 2 * this.cfg.electionTicks); i++) this.raw.tick();
    return true;
  }

  /** When the next Raft timer fires (heartbeat or election timeout), in wall-clock ms. */
  nextWakeup(): number {
    return this.lastTick + this.raw.raft.ticksUntilTimeout() * this.cfg.tickMs;
  }

  /** The host crashed or is shutting down: every waiting caller gets `error`. */
  failAll(error: Error): void {
    for (const p of [...this.proposals.values(), ...this.confChanges.values(), ...this.inbox]) p.reject(error);
    this.inbox = [];
    this.confChanges.clear();
    for (const r of this.reads.values()) r.reject(error);
    this.proposals.clear();
    this.reads.clear();
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
    const wasLeader = this.isLeader();
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
      if (rd.snapshot !== undefined) {
        this.cfg.machine.restore(rd.snapshot.data);
        this.applied = rd.snapshot.metadata.index;
      }
      for (const e of rd.committedEntries) this.apply(e);
      for (const rs of rd.readStates) {
        const r = this.reads.get(rs.context);
        if (r !== undefined) r.index = rs.index;
      }
      this.raw.advance(rd);
      this.resolveReads();
      this.maybeCompact();
    }
    if (wasLeader && !this.isLeader()) {
      // Reads wait for a ReadState that a deposed leader will never get: fail them fast.
      // Proposals stay: they may still commit under the new leader, and apply tells.
      const err = new NotLeaderError(this.leader());
      for (const r of this.reads.values()) r.reject(err);
      this.reads.clear();
    }
    return replies;
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
    if (e.type !== "normal" || e.data === "") {
      pending?.reject(new ProposalLostError());
      return;
    }
    const result = this.cfg.machine.apply(e);
    this.cfg.onApply?.(e, result);
    if (pending === undefined) return;
    if (pending.term === e.term) pending.resolve(result);
    else pending.reject(new ProposalLostError());
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
    this.lastSnapshotBytes = image.length;
    this.bytesSinceSnapshot = 0;
  }
}
