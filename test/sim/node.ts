import { type ConfState, MemoryStorage, type NodeId, type Rand, RawNode, type Ready } from "../../shared/raft/index.js";
import { KvStateMachine } from "./kv.js";

/** Where a crash strikes while a Ready is handled (Durable Object SQLite commits are atomic). */
export type CrashPoint = "beforePersist" | "afterPersist" | "afterSend";

export interface NodeTuning {
  electionTick: number;
  heartbeatTick: number;
  /** Time units between this node's ticks: different per node, so clocks drift apart. */
  tickEvery: number;
  tickPhase: number;
  /** Flow control: small windows and batches make partial replication (and its bugs) likely. */
  maxInflight: number;
  maxEntriesPerMsg: number;
  /** Tell followers of commits at once, or on the next append/heartbeat (as the peers do). */
  broadcastCommit: boolean;
}

/** Faults planted in the code under test, to prove that the checkers notice them. */
export type Bug = "voteWithoutLogCheck" | "sendBeforePersist";

/**
 * One simulated peer: durable `storage` (survives crashes) and everything else in memory
 * (lost by `crash`). It is the host loop of raw-node.ts: persist, send, apply, advance.
 */
export class SimNode {
  readonly storage: MemoryStorage;
  raw: RawNode | undefined;
  readonly kv = new KvStateMachine();
  applied = 0;
  /** Set by the fault injector: the next Ready crashes the node at this point. */
  crashAt: CrashPoint | undefined;

  constructor(
    readonly id: NodeId,
    bootstrap: ConfState,
    readonly tuning: NodeTuning,
    private readonly rand: Rand,
    private readonly bug: Bug | undefined,
  ) {
    this.storage = new MemoryStorage(bootstrap);
    this.start();
  }

  get up(): boolean {
    return this.raw !== undefined;
  }

  /** (Re)starts from durable storage: the state machine is rebuilt from the snapshot and the log. */
  start(): void {
    const snap = this.storage.snapshot();
    this.kv.restore(snap.data);
    this.applied = snap.metadata.index;
    const raw = new RawNode({
      id: this.id,
      storage: this.storage,
      electionTick: this.tuning.electionTick,
      heartbeatTick: this.tuning.heartbeatTick,
      rand: this.rand,
      applied: this.applied,
      maxInflight: this.tuning.maxInflight,
      maxEntriesPerMsg: this.tuning.maxEntriesPerMsg,
      broadcastCommit: this.tuning.broadcastCommit,
    });
    if (this.bug === "voteWithoutLogCheck") raw.raft.log.isUpToDate = () => true;
    this.raw = raw;
  }

  crash(): void {
    this.raw = undefined;
    this.crashAt = undefined;
  }

  ticksAt(now: number): boolean {
    return (now + this.tuning.tickPhase) % this.tuning.tickEvery === 0;
  }

  /** Persists the Ready atomically, as one SQLite transaction would. */
  persist(rd: Ready): void {
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
  }

  /** Log compaction: keep the log short by snapshotting the state machine now and then. */
  maybeCompact(threshold: number): void {
    if (this.applied - this.storage.firstIndex() >= threshold) {
      this.storage.createSnapshot(this.applied, this.kv.snapshot());
    }
  }
}
