import { DurableObject } from "cloudflare:workers";
import { ORDER_TIMEOUT_MS } from "../shared/cache/directory-service.js";
import type { DirectoryReply, DirectoryRequest } from "../shared/cache/types.js";
import {
  cacheSettings,
  clusterShape,
  configuredShape,
  genesisVoters,
  parseStoredShape,
  peerName,
  shapeMismatch,
} from "../shared/cluster.js";
import { createGroupCore, type GroupCore } from "../shared/group/core.js";
import { type PeerReply, replyForError } from "../shared/group/peer-reply.js";
import type { IdempotencyRequest } from "../shared/idempotency/service.js";
import type { IdemResult } from "../shared/idempotency/types.js";
import type { LockReply, LockRequest } from "../shared/locks/lock-service.js";
import type { ResourceWaitEdge } from "../shared/locks/wait-for-graph.js";
import type { QueueReply, QueueRequest } from "../shared/queue/queue-service.js";
import { type ConfChange, type Message, type NodeId, Rand } from "../shared/raft/index.js";
import type { Env } from "../workers/env.js";
import { cacheNodeStub, peerStub } from "../workers/groups.js";
import { SqliteStorage } from "./sqlite-storage.js";

export type { PeerReply } from "../shared/group/peer-reply.js";

export interface PeerStatus {
  id: NodeId;
  role: string;
  term: number;
  leader: NodeId;
  commitIndex: number;
  lastIndex: number;
  voters: NodeId[];
  learners: NodeId[];
  progress: { id: NodeId; matchIndex: number; lastContactMs: number | null }[];
}

const COMMIT_TIMEOUT_MS = 2500;

/**
 * Requests that only look (a metrics scrape, a stale listing for a dashboard): served from the
 * leader's state, they must not wake a quiet group, or an open dashboard would keep it awake.
 */
const observes = (req: LockRequest | QueueRequest) => req.op === "metrics" || (req.op === "list" && req.stale === true);

type Core = GroupCore;

/**
 * One Raft peer of one group. Thin glue: SQLite storage, one alarm for every timer, Workers RPC
 * between peers, and a fault layer (crash, partition) for the admin routes. The logic lives in
 * shared/replica (the Raft host loop) and shared/locks (the state machine and held requests).
 */
export class RaftPeer extends DurableObject<Env> {
  private group = -1;
  private id: NodeId = 0;
  private core: Core | undefined;
  private crashed = false;
  /**
   * Aborted by the crash fault: the calls still in progress here then answer "down", as a real
   * crash breaks its callers' calls, so the Worker retries them at another peer (same request id).
   * Without it a lock wait held here would hang on the stopped replica until its waitMs ran out.
   */
  private life = new AbortController();
  private blocked = new Set<NodeId>();
  /** The `clock` fault: how far this peer's clock runs ahead of real time (ms; negative: behind). */
  private clockOffset = 0;
  /** Set when the settings disagree with the stored cluster shape (shared/cluster.ts). */
  private misconfigured: string | undefined;
  /** The alarm, on this peer's clock. */
  private alarmAt: number | null = null;

  /** This peer's clock: real time plus the injected offset. */
  private readonly now = (): number => Date.now() + this.clockOffset;

  private get tickMs(): number {
    return Number(this.env.RAFT_TICK_MS ?? 50);
  }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS peer_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    ctx.blockConcurrencyWhile(async () => {
      const name = this.meta("name");
      this.crashed = this.meta("crashed") === "true";
      this.blocked = new Set(JSON.parse(this.meta("blocked") ?? "[]") as NodeId[]);
      this.clockOffset = Number(this.meta("clockOffset") ?? 0);
      if (name !== undefined) this.identify(name);
    });
  }

  // ---- RPC from peers and the Worker --------------------------------------------------------

  /** Raft messages from peer `from`; the replies to it travel back as the result (null: down). */
  async receive(name: string, from: NodeId, msgs: Message[]): Promise<Message[] | null> {
    const core = this.start(name);
    if (core === undefined) return null;
    if (this.blocked.has(from)) return [];
    const replies = core.replica.receive(from, msgs, this.now());
    this.arm(core);
    return replies;
  }

  /** A lock request: served here if leader, else forwarded once to the leader. */
  async lock(name: string, req: LockRequest, requestId: string, forwarded = false): Promise<PeerReply<LockReply>> {
    const waitMs = req.op === "acquire" ? req.waitMs : 0;
    return this.serve(
      name,
      forwarded,
      (leader, leaderName) => leader.lock(leaderName, req, requestId, true),
      (core, signal) => core.locks.handle(req, requestId, signal),
      COMMIT_TIMEOUT_MS + waitMs,
      !observes(req),
    );
  }

  /**
   * A queue request for shards on this group: served here if leader, else forwarded once.
   * (Not named `queue`: that is the Durable Object handler of Cloudflare Queues.)
   */
  async queues(name: string, req: QueueRequest, requestId: string, forwarded = false): Promise<PeerReply<QueueReply>> {
    const waitMs = req.op === "wait" ? req.timeoutMs : 0;
    return this.serve(
      name,
      forwarded,
      (leader, leaderName) => leader.queues(leaderName, req, requestId, true),
      (core, signal) => core.queues.handle(req, requestId, signal),
      COMMIT_TIMEOUT_MS + waitMs,
      !observes(req),
    );
  }

  /** A cache node's request to the directory of a key on this group (shared/cache/directory-service.ts). */
  async cache(
    name: string,
    req: DirectoryRequest,
    requestId: string,
    forwarded = false,
  ): Promise<PeerReply<DirectoryReply>> {
    // A write may wait out the lease of a sharer it cannot reach.
    const timeoutMs = COMMIT_TIMEOUT_MS + 2 * ORDER_TIMEOUT_MS + cacheSettings(this.env).leaseMs;
    return this.serve(
      name,
      forwarded,
      (leader, leaderName) => leader.cache(leaderName, req, requestId, true),
      (core, signal) => core.cache.handle(req, requestId, signal),
      timeoutMs,
    );
  }

  /** An Idempotency-Key's begin or finish on the key's group (workers/idempotency.ts). */
  async idempotency(name: string, req: IdempotencyRequest, forwarded = false): Promise<PeerReply<IdemResult>> {
    return this.serve(
      name,
      forwarded,
      (leader, leaderName) => leader.idempotency(leaderName, req, true),
      (core) => core.idempotency.handle(req),
      COMMIT_TIMEOUT_MS,
    );
  }

  /**
   * Serves a client request on the leader, or forwards it once to the leader this peer knows
   * and can reach (a peer cut off from the leader answers not-leader: how a minority answers 503).
   */
  private async serve<T>(
    name: string,
    forwarded: boolean,
    forward: (leader: DurableObjectStub<RaftPeer>, leaderName: string) => Promise<PeerReply<T>>,
    handle: (core: Core, signal: AbortSignal) => Promise<T>,
    timeoutMs: number,
    wakes = true,
  ): Promise<PeerReply<T>> {
    const core = this.start(name);
    if (core === undefined) return this.down();
    // A client request wakes a quiesced peer: a follower runs its election timer again (the leader
    // may have died while quiet). A metrics scrape does not: it must not keep idle groups awake.
    if (wakes) core.replica.wake();
    if (core.replica.isLeader()) return this.guard(core, (signal) => handle(core, signal), timeoutMs);
    const leader = core.replica.leader();
    if (forwarded || leader === 0 || this.blocked.has(leader)) return { ok: false, error: "not-leader", leader };
    return forward(this.peer(leader), peerName(this.group, leader));
  }

  /** This group's wait-for edges (leader only), for the cross-group deadlock detector. */
  async waitEdges(name: string): Promise<PeerReply<ResourceWaitEdge[]>> {
    const core = this.start(name);
    if (core === undefined) return this.down();
    return this.guard(core, () => core.locks.waitEdges(), COMMIT_TIMEOUT_MS);
  }

  async cancelWait(
    name: string,
    victim: { resource: string; owner: string; since: number; cycle: string[] },
  ): Promise<PeerReply<unknown>> {
    const core = this.start(name);
    if (core === undefined) return this.down();
    return this.guard(core, () => core.locks.cancel(victim), COMMIT_TIMEOUT_MS);
  }

  async status(name: string): Promise<PeerStatus | null> {
    const core = this.start(name);
    if (core === undefined) return null;
    const s = core.replica.status(this.now());
    return {
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.lead,
      commitIndex: s.commit,
      lastIndex: s.lastIndex,
      voters: s.conf.voters,
      learners: s.conf.learners,
      progress: s.progress.map((p) => ({
        id: p.id,
        matchIndex: p.match,
        lastContactMs: p.id === s.id ? 0 : (s.lastContactMs.get(p.id) ?? null),
      })),
    };
  }

  /** Membership: add a learner (promoted by the leader once caught up), or remove a peer. */
  async changeMembership(name: string, cc: ConfChange): Promise<PeerReply<void>> {
    const core = this.start(name);
    if (core === undefined) return this.down();
    if (!core.replica.isLeader()) return { ok: false, error: "not-leader", leader: core.replica.leader() };
    // Asking again for what is already so succeeds: a node that restarts re-joins, a leaving one retries.
    const { conf } = core.replica.status(this.now());
    const member = conf.voters.includes(cc.node) || conf.learners.includes(cc.node);
    if ((cc.type === "addLearner" && member) || (cc.type === "remove" && !member))
      return { ok: true, value: undefined };
    if (cc.type === "addLearner") this.send(cc.node, []); // wake the new peer's object
    return this.guard(core, () => core.replica.changeMembership(cc), COMMIT_TIMEOUT_MS);
  }

  // ---- faults (admin routes) ----------------------------------------------------------------

  /** Loses every in-memory state and stops answering until `restart`. */
  async crash(name: string): Promise<void> {
    this.identify(name);
    this.crashed = true;
    this.setMeta("crashed", "true");
    // Nothing scheduled before the crash may still write or send: the old core stops for good.
    this.core?.replica.stop(new Error("peer crashed"));
    this.core = undefined;
    this.life.abort();
    this.life = new AbortController();
    this.alarmAt = null;
    await this.ctx.storage.deleteAlarm();
  }

  async restart(name: string): Promise<void> {
    this.crashed = false;
    this.setMeta("crashed", "false");
    this.start(name);
  }

  /**
   * The `clock` fault: from now on this peer's clock reads real time plus `offsetMs`. Stored, so
   * it survives a crash and a restart. The running replica measures elapsed time across the step
   * (a monotonic clock would): what matters is the offset between peers, not the jump itself.
   */
  async setClockOffset(name: string, offsetMs: number): Promise<void> {
    this.identify(name);
    const delta = offsetMs - this.clockOffset;
    this.clockOffset = offsetMs;
    this.setMeta("clockOffset", String(offsetMs));
    if (this.alarmAt !== null) this.alarmAt += delta;
    this.core?.replica.clockStepped(delta);
  }

  /** Stops exchanging Raft messages with these peers (both directions, as each side drops). */
  async setBlocked(name: string, peers: NodeId[]): Promise<void> {
    this.identify(name);
    this.blocked = new Set(peers);
    this.setMeta("blocked", JSON.stringify(peers));
  }

  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const core = this.start();
    if (core === undefined) return;
    core.replica.tick(this.now());
    core.housekeeping();
    core.replica.promoteCaughtUpLearners();
    this.arm(core);
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Starts lazily on the first call (and after a restart); undefined while crashed. */
  private start(name?: string): Core | undefined {
    if (name !== undefined) this.identify(name);
    if (this.crashed || this.id === 0) return undefined;
    if (this.core !== undefined) {
      if (this.alarmAt === null) this.arm(this.core);
      return this.core;
    }
    this.misconfigured = this.checkShape();
    if (this.misconfigured !== undefined) return undefined;
    const shape = clusterShape(this.env);
    const detector = this.env.DEADLOCK_DETECTOR;
    const core = createGroupCore({
      id: this.id,
      storage: new SqliteStorage(this.ctx.storage, { voters: genesisVoters(shape), learners: [] }),
      transport: { send: (to, msgs) => this.send(to, msgs) },
      rand: new Rand((Date.now() ^ (this.id * 0x9e3779b9)) >>> 0),
      tickMs: this.tickMs,
      compactEvery: Number(this.env.RAFT_COMPACT_EVERY ?? 1000),
      clock: this.now,
      sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
      defer: (fn) => setTimeout(fn, 0),
      whenDurable: () => this.ctx.storage.sync(),
      cacheNodes: {
        order: async (node, order) => {
          const reply = await cacheNodeStub(this.env, node).order(node, this.id, order);
          if (reply === null) throw new Error(`cache node ${node} unreachable`);
          return reply;
        },
      },
      cacheLeaseMs: cacheSettings(this.env).leaseMs,
      // Idle groups go quiet: no heartbeats, no alarms (docs/architecture.md, "Quiescence").
      quiesce: true,
      onWaiting: () =>
        void detector
          .get(detector.idFromName("detector"))
          .wake()
          .catch(() => undefined),
    });
    this.core = core;
    // Wake the other genesis peers: a Durable Object runs nothing until it is called.
    for (const id of genesisVoters(shape)) if (id !== this.id) this.send(id, []);
    this.arm(core);
    return core;
  }

  /**
   * The cluster's shape is stored with the data the first time a peer starts; afterwards the
   * settings must agree with it (changing RAFT_GROUPS, RAFT_PEERS or QUEUE_SHARDS over existing
   * data would move keys between groups or change the genesis voters). Returns why not.
   */
  private checkShape(): string | undefined {
    const configured = configuredShape(this.env);
    const stored = this.meta("shape");
    if (stored === undefined) {
      this.setMeta("shape", JSON.stringify(configured));
      return undefined;
    }
    const mismatch = shapeMismatch(parseStoredShape(JSON.parse(stored)), configured);
    if (mismatch !== undefined) console.error(`peer ${peerName(this.group, this.id)} refuses to start:\n${mismatch}`);
    return mismatch;
  }

  /** Why this peer cannot serve: crashed (down) or refusing a configuration that disagrees with its data. */
  private down(): PeerReply<never> {
    if (this.misconfigured !== undefined) return { ok: false, error: "misconfigured", detail: this.misconfigured };
    return { ok: false, error: "down" };
  }

  private identify(name: string): void {
    if (this.id !== 0) return;
    const m = /^g(\d+)-p(\d+)$/.exec(name);
    if (m === null) throw new Error(`bad peer name ${name}`);
    this.group = Number(m[1]);
    this.id = Number(m[2]);
    this.setMeta("name", name);
  }

  /** One alarm for every timer: the next Raft tick that matters, or the next lock deadline. */
  private arm(core: Core): void {
    const now = this.now();
    // A deadline already past is being handled (an expire is in flight): look again next tick.
    let deadline = core.nextWakeup() ?? Number.POSITIVE_INFINITY;
    if (deadline <= now) deadline = now + this.tickMs;
    // Never at or before now: an alarm set to the time of the one running is dropped when it ends.
    const next = Math.max(now + 1, Math.min(core.replica.nextWakeup(), deadline));
    if (next === Number.POSITIVE_INFINITY) {
      // Quiesced with nothing due: no alarm at all.
      if (this.alarmAt !== null) {
        this.alarmAt = null;
        void this.ctx.storage.deleteAlarm();
      }
      return;
    }
    // While quiesced, exactly the deadline's alarm: one left from before quiescing would only wake it for nothing.
    if (this.alarmAt !== null && this.alarmAt <= next && !core.replica.isQuiesced()) return;
    if (this.alarmAt === next) return;
    this.alarmAt = next;
    // Times here are on this peer's clock; the platform's alarm is on real time.
    void this.ctx.storage.setAlarm(next - this.clockOffset);
  }

  /** Runs `work`, answering "timeout" after `timeoutMs`; then `work` is told to give up (`signal`). */
  private async guard<T>(
    core: Core,
    work: (signal: AbortSignal) => Promise<T>,
    timeoutMs: number,
  ): Promise<PeerReply<T>> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new AbortController();
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => {
        gaveUp.abort();
        resolve("timeout");
      }, timeoutMs);
    });
    const life = this.life.signal;
    let onCrash = () => {};
    const crashed = new Promise<"down">((resolve) => {
      onCrash = () => resolve("down");
      life.addEventListener("abort", onCrash, { once: true });
    });
    try {
      const out = await Promise.race([work(gaveUp.signal), timeout, crashed]);
      if (out === "timeout") return { ok: false, error: "timeout" };
      if (out === "down") {
        gaveUp.abort();
        return { ok: false, error: "down" };
      }
      return { ok: true, value: out };
    } catch (e) {
      const reply = replyForError(e, core.replica);
      if (reply !== undefined) return reply;
      if (this.crashed) return { ok: false, error: "down" };
      throw e;
    } finally {
      clearTimeout(timer);
      life.removeEventListener("abort", onCrash);
      // A crashed core arms nothing (a restart built a new one, which arms its own alarm).
      if (this.core === core) this.arm(core);
    }
  }

  // ---- transport ----------------------------------------------------------------------------

  private readonly stubs = new Map<NodeId, DurableObjectStub<RaftPeer>>();

  /** Peer `id` of this group: Workers RPC in one process, HTTP between nodes (workers/groups.ts). */
  private peer(id: NodeId): DurableObjectStub<RaftPeer> {
    let stub = this.stubs.get(id);
    if (stub === undefined) {
      stub = peerStub(this.env, this.group, id);
      this.stubs.set(id, stub);
    }
    return stub;
  }

  /**
   * Fire and forget: every message of one Ready for peer `to` in one call (one Workers RPC, or
   * one POST /internal/raft between nodes); the replies come back as the call's result.
   */
  private send(to: NodeId, msgs: Message[]): void {
    if (this.blocked.has(to)) return;
    this.peer(to)
      .receive(peerName(this.group, to), this.id, msgs)
      .then(
        (replies) => {
          const core = this.core;
          if (replies === null) core?.replica.raw.reportUnreachable(to);
          if (core === undefined || replies === null || this.blocked.has(to) || replies.length === 0) return;
          const back = core.replica.receive(to, replies, this.now());
          if (back.length > 0) this.send(to, back);
          this.arm(core);
        },
        () => this.core?.replica.raw.reportUnreachable(to),
      );
  }

  private meta(key: string): string | undefined {
    const row = this.ctx.storage.sql
      .exec<{ value: string }>("SELECT value FROM peer_meta WHERE key = ?", key)
      .toArray()[0];
    return row?.value;
  }

  private setMeta(key: string, value: string): void {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO peer_meta (key, value) VALUES (?, ?)", key, value);
  }
}
