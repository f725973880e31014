/**
 * One Raft peer of one group, hosted the way objects/raft-peer.ts hosts it: its core comes from
 * createGroupCore (the real Replica, dedup layer, GroupState and services), one alarm for every
 * timer, `serve` = handle on the leader or forward once to the leader, `guard` maps the
 * replica's errors to not-leader and times out. Differences are only the runtime: the clock, the
 * timers, the storage and the network are simulated, and faults (crash, pause) come from the
 * simulator instead of admin routes.
 */

import { type CacheNodes, ORDER_TIMEOUT_MS } from "../../../shared/cache/directory-service.js";
import type { DirectoryReply, DirectoryRequest } from "../../../shared/cache/types.js";
import { createGroupCore, type GroupCore } from "../../../shared/group/core.js";
import { type PeerReply, replyForError } from "../../../shared/group/peer-reply.js";
import type { IdempotencyRequest } from "../../../shared/idempotency/service.js";
import type { IdemResult } from "../../../shared/idempotency/types.js";
import type { LockReply, LockRequest } from "../../../shared/locks/lock-service.js";
import type { QueueReply, QueueRequest } from "../../../shared/queue/queue-service.js";
import type { ConfState, Message, NodeId, Rand } from "../../../shared/raft/index.js";
import { PeerClock } from "./clock.js";
import type { PeerNetwork } from "./net.js";
import { type Callee, RpcError, rpc } from "./rpc.js";
import { type Chunking, CrashSignal, type Disk, emptyDisk, SimStorage } from "./storage.js";
import type { Scheduled, World } from "./world.js";

/** As in objects/raft-peer.ts. */
export const COMMIT_TIMEOUT_MS = 2500;

/** Which peer produced an answer (the leader that served it, behind any forwarding). */
export const answeredBy = new WeakMap<object, string>();

/** Faults planted in the code under test, to prove that the checkers notice them (see README of the folder). */
export type Bug =
  | "naiveSnapshotChunks"
  | "placeByOrigin"
  | "staleReceive"
  | "leaderClock"
  | "cacheFalseAck"
  | "cacheLateGrant"
  | "cacheVolatileDirty";
export const BUGS: readonly Bug[] = [
  "naiveSnapshotChunks",
  "placeByOrigin",
  "staleReceive",
  "leaderClock",
  "cacheFalseAck",
  "cacheLateGrant",
  "cacheVolatileDirty",
];

export interface PeerEnv {
  world: World;
  net: PeerNetwork;
  peer: (id: NodeId) => SimPeer;
  genesis: ConfState;
  tickMs: number;
  compactEvery: number;
  chunking: Chunking;
  /** Longest time a write takes to become durable (storage.sync()). */
  diskMs: number;
  /** The drift bound the cores are told (the peers' clocks drift at most this much). */
  maxDriftPpm: number;
  /** How this peer's directory reaches the cache nodes (cache.ts). */
  cacheNodes: (peer: SimPeer) => CacheNodes;
  /** S leases of the cache directory (ms). */
  cacheLeaseMs: number;
  /** Idle groups quiesce (GroupCoreOptions.quiesce). */
  quiesce?: boolean;
  bug: Bug | undefined;
  /** Asked after every answer this peer gives as leader: crash right after it? */
  crashAfterAnswer: (peer: SimPeer) => boolean;
  /** Called with every core built (instrumentation for the checkers). */
  onStart: (peer: SimPeer, core: GroupCore) => void;
  /** Anything the core throws that production would not expect. */
  onError: (peer: SimPeer, e: unknown) => void;
  log: (line: () => string) => void;
}

export class SimPeer implements Callee {
  life = 0;
  paused = false;
  backlog: Scheduled[] = [];
  serving = new Set<(e: Error) => void>();
  core: GroupCore | undefined;
  storage: SimStorage | undefined;
  /** What SQLite holds: survives crashes. */
  readonly disk: Disk = emptyDisk();
  /** Set by the fault injector: the next Raft send crashes the peer right after it. */
  crashAfterSend = false;
  readonly name: string;
  private alarmAt: number | null = null;
  /** Names the alarm event that is current (a replaced or moved alarm's event does nothing). */
  private alarmToken = 0;
  private pauseToken = 0;
  crashes = 0;
  /** Alarms that fired (each a billed request on Cloudflare), over all lives. */
  alarms = 0;
  /** Raft message batches sent (one Workers RPC each), over all lives. */
  sends = 0;
  /** Cache directory requests being served here in this life (the simulator waits for none before its final reads). */
  cacheOps = 0;

  constructor(
    readonly group: number,
    readonly id: NodeId,
    public clock: PeerClock,
    private readonly rand: Rand,
    private readonly env: PeerEnv,
  ) {
    this.name = `g${group}p${id}`;
    this.start();
  }

  get up(): boolean {
    return this.core !== undefined;
  }

  /** This peer's Date.now(). */
  wall(): number {
    return this.clock.wall(this.env.world.now);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Builds the core from the Disk: first start, and every restart. */
  start(): void {
    const { world, bug } = this.env;
    const storage = new SimStorage(this.env.genesis, this.disk, this.env.chunking);
    const core = createGroupCore({
      id: this.id,
      storage,
      transport: { send: (to, msgs) => this.send(to, msgs) },
      rand: this.rand.fork(),
      tickMs: this.env.tickMs,
      compactEvery: this.env.compactEvery,
      clock: () => this.wall(),
      sleep: (ms) => world.sleep(this.clock.realDuration(ms), this),
      defer: (fn) => world.after(0, () => this.run(fn), this),
      whenDurable: () => world.sleep(this.rand.int(this.env.diskMs + 1), this),
      maxDriftPpm: this.env.maxDriftPpm,
      cacheNodes: this.env.cacheNodes(this),
      cacheLeaseMs: this.env.cacheLeaseMs,
      quiesce: this.env.quiesce ?? false,
    });
    // The planted bugs that need the lead's seams (Replica.servesReads, Replica.groupNow): until
    // those exist, today's code behaves like the bug anyway.
    const seams = core.replica as unknown as { servesReads?: () => boolean; groupNow?: (local: number) => number };
    if (bug === "staleReceive" && typeof seams.servesReads === "function") {
      seams.servesReads = () => core.replica.isLeader();
    }
    if (bug === "leaderClock" && typeof seams.groupNow === "function") seams.groupNow = (local) => local;
    this.storage = storage;
    this.core = core;
    this.env.onStart(this, core);
    this.arm();
  }

  /** Loses everything in memory; the Disk stays. Calls being served fail. */
  crash(point: string): void {
    this.env.log(() => `${this.name} crash (${point})`);
    this.life++;
    this.crashes++;
    // As RaftPeer.crash: nothing scheduled before the crash may still write or send.
    this.core?.replica.stop(new Error("peer crashed"));
    this.core = undefined;
    this.storage = undefined;
    this.alarmAt = null;
    this.cacheOps = 0;
    this.env.world.crashed(this);
    this.crashAfterSend = false;
    const calls = [...this.serving];
    this.serving.clear();
    for (const fail of calls) fail(new RpcError(`${this.name} crashed`));
  }

  restart(): void {
    this.env.log(() => `${this.name} restart`);
    this.start();
  }

  /**
   * The clock fault of RaftPeer.setClockOffset: from now on this peer's clock reads `deltaMs`
   * more; the running replica is told, so it measures elapsed time across the step. The alarm
   * stays at its real time (its reading on the new clock moves by the step).
   */
  stepClock(deltaMs: number): void {
    this.env.log(() => `${this.name} clock step ${deltaMs > 0 ? "+" : ""}${deltaMs} ms`);
    this.clock = new PeerClock(this.clock.offsetMs + deltaMs, this.clock.driftPpm);
    if (this.alarmAt !== null) this.alarmAt += deltaMs;
    this.core?.replica.clockStepped(deltaMs);
  }

  /** Restarts on another machine, whose clock is `clock` (a Durable Object may move when it wakes). */
  migrate(clock: PeerClock): void {
    if (this.up) throw new Error("migrate a crashed peer only");
    this.env.log(() => `${this.name} moves: clock offset ${clock.offsetMs} ms, drift ${clock.driftPpm} ppm`);
    this.clock = clock;
  }

  /** Stops stepping, ticking and running deferred work for `ms`; then resumes with what piled up. */
  pause(ms: number): void {
    if (!this.up || this.paused) return;
    this.env.log(() => `${this.name} pause ${ms} ms`);
    this.paused = true;
    const token = ++this.pauseToken;
    this.env.world.after(ms, () => {
      if (this.pauseToken !== token || !this.paused) return;
      this.env.log(() => `${this.name} resume (${this.backlog.length} events)`);
      this.env.world.resume(this);
    });
  }

  /** Runs host-loop work; a crash point inside it crashes the peer there. */
  private run(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof CrashSignal) this.crash(e.point);
      else throw e;
    }
  }

  // ---- Raft transport ---------------------------------------------------------------------------

  private send(to: NodeId, msgs: Message[]): void {
    this.sends++;
    const target = this.env.peer(to);
    this.env.net.send(this.id, to, () => target.receive(this.id, msgs), target);
    if (this.crashAfterSend) {
      this.crashAfterSend = false;
      throw new CrashSignal("afterSend");
    }
  }

  /** Raft messages from `from` land here; the replies go back over the network. */
  receive(from: NodeId, msgs: Message[]): void {
    const core = this.core;
    const sender = this.env.peer(from);
    if (core === undefined) {
      // A call to a peer that is down answers null: the sender reports it unreachable.
      this.env.world.after(this.env.net.delay(), () => sender.core?.replica.raw.reportUnreachable(this.id), sender);
      return;
    }
    this.run(() => {
      const replies = core.replica.receive(from, msgs, this.wall());
      if (replies.length > 0) this.env.net.send(this.id, from, () => sender.receive(this.id, replies), sender);
      this.arm();
    });
  }

  // ---- timers -----------------------------------------------------------------------------------

  /**
   * One alarm for every timer: the next Raft timeout or the next lock deadline (RaftPeer.arm).
   * A quiesced peer with nothing due has no alarm at all; one with a deadline has exactly that
   * alarm (an earlier one, left from before it quiesced, would only wake it for nothing).
   */
  arm(): void {
    const core = this.core;
    if (core === undefined) return;
    const now = this.wall();
    let deadline = core.nextWakeup() ?? Number.POSITIVE_INFINITY;
    if (deadline <= now) deadline = now + this.env.tickMs;
    const next = Math.max(now + 1, Math.min(core.replica.nextWakeup(), deadline));
    if (next === Number.POSITIVE_INFINITY) {
      this.alarmAt = null; // ctx.storage.deleteAlarm()
      this.alarmToken++;
      return;
    }
    if (this.alarmAt !== null && this.alarmAt <= next && !core.replica.isQuiesced()) return;
    if (this.alarmAt === next) return;
    this.alarmAt = next;
    const token = ++this.alarmToken;
    this.env.world.at(this.clock.realAt(next), () => this.alarm(token), this);
  }

  private alarm(token: number): void {
    if (this.alarmToken !== token) return; // replaced by an earlier one
    this.alarmAt = null;
    const core = this.core;
    if (core === undefined) return;
    this.alarms++;
    this.run(() => {
      core.replica.tick(this.wall());
      core.housekeeping();
      core.replica.promoteCaughtUpLearners();
      this.arm();
    });
  }

  // ---- requests ---------------------------------------------------------------------------------

  /** A lock request: served here if leader, else forwarded once to the leader. */
  lock(req: LockRequest, requestId: string, forwarded = false): Promise<PeerReply<LockReply>> {
    const waitMs = req.op === "acquire" ? req.waitMs : 0;
    return this.serve(
      forwarded,
      (leader) => leader.lock(req, requestId, true),
      (core, signal) => core.locks.handle(req, requestId, signal),
      COMMIT_TIMEOUT_MS + waitMs,
    );
  }

  /** An Idempotency-Key's begin or finish on the key's group. */
  idempotency(req: IdempotencyRequest, forwarded = false): Promise<PeerReply<IdemResult>> {
    return this.serve(
      forwarded,
      (leader) => leader.idempotency(req, true),
      (core) => core.idempotency.handle(req),
      COMMIT_TIMEOUT_MS,
    );
  }

  /** A queue request for shards on this group: served here if leader, else forwarded once. */
  queues(req: QueueRequest, requestId: string, forwarded = false): Promise<PeerReply<QueueReply>> {
    const waitMs = req.op === "wait" ? req.timeoutMs : 0;
    return this.serve(
      forwarded,
      (leader) => leader.queues(req, requestId, true),
      (core, signal) => core.queues.handle(req, requestId, signal),
      COMMIT_TIMEOUT_MS + waitMs,
    );
  }

  /** A cache node's request to the directory of a key on this group (RaftPeer.cache). */
  cache(req: DirectoryRequest, requestId: string, forwarded = false): Promise<PeerReply<DirectoryReply>> {
    // A write may wait out the lease of a sharer it cannot reach.
    const timeoutMs = COMMIT_TIMEOUT_MS + 2 * ORDER_TIMEOUT_MS + this.env.cacheLeaseMs;
    return this.serve(
      forwarded,
      (leader) => leader.cache(req, requestId, true),
      (core, signal) => {
        const life = this.life;
        this.cacheOps++;
        const done = () => {
          if (this.life === life) this.cacheOps--;
        };
        const out = core.cache.handle(req, requestId, signal);
        out.then(done, done);
        return out;
      },
      timeoutMs,
    );
  }

  private async serve<T>(
    forwarded: boolean,
    forward: (leader: SimPeer) => Promise<PeerReply<T>>,
    handle: (core: GroupCore, signal: AbortSignal) => Promise<T>,
    timeoutMs: number,
  ): Promise<PeerReply<T>> {
    const core = this.core;
    if (core === undefined) return { ok: false, error: "down" };
    // A client request wakes a quiesced peer: a follower runs its election timer again (the
    // leader it forwards to may have died while the group was quiet).
    core.replica.wake();
    this.arm();
    if (core.replica.isLeader()) return this.guard(core, (signal) => handle(core, signal), timeoutMs);
    const leader = core.replica.leader();
    const net = this.env.net;
    if (forwarded || leader === 0 || net.isBlocked(this.id, leader)) return { ok: false, error: "not-leader", leader };
    const target = this.env.peer(leader);
    const leg = (from: NodeId, to: NodeId) => ({
      delay: () => net.delay(),
      lost: () => net.isBlocked(from, to) || net.lost(),
    });
    return rpc(this.env.world, leg(this.id, leader), leg(leader, this.id), target, () => forward(target), this);
  }

  private async guard<T>(
    core: GroupCore,
    work: (signal: AbortSignal) => Promise<T>,
    timeoutMs: number,
  ): Promise<PeerReply<T>> {
    const life = this.life;
    const gaveUp = new AbortController();
    const timeout = new Promise<"timeout">((resolve) => {
      this.env.world.after(
        this.clock.realDuration(timeoutMs),
        () => {
          gaveUp.abort();
          resolve("timeout");
        },
        this,
      );
    });
    try {
      const out = await Promise.race([work(gaveUp.signal), timeout]);
      if (out === "timeout") return { ok: false, error: "timeout" };
      if (typeof out === "object" && out !== null) answeredBy.set(out, this.name);
      if (this.env.crashAfterAnswer(this)) this.env.world.after(0, () => this.crash("after answering"), this);
      return { ok: true, value: out };
    } catch (e) {
      const reply = replyForError(e, core.replica);
      // A committed command the state machine could not apply is a bug in the simulated code.
      if (reply?.ok === false && reply.error === "failed") this.env.onError(this, e);
      if (reply !== undefined) return reply;
      if (this.life !== life) return { ok: false, error: "down" };
      this.env.onError(this, e);
      throw e;
    } finally {
      this.arm();
    }
  }
}
