/**
 * A small deterministic cluster of real group cores (shared/group/core.ts) for the fault tests
 * of the host loop: an in-memory durable log per peer, a hand-driven network, per-peer clock
 * offsets, pauses and crashes. Time moves only when a test says so.
 */
import type { CacheNodes } from "../../shared/cache/directory-service.js";
import { createGroupCore, type GroupCore } from "../../shared/group/core.js";
import {
  type Entry,
  type HardState,
  MemoryStorage,
  type Message,
  type NodeId,
  Rand,
  type Snapshot,
} from "../../shared/raft/index.js";
import type { DurableLog } from "../../shared/replica/replica.js";

/** MemoryStorage as a durable log: what a crash keeps. */
export class MemoryLog extends MemoryStorage implements DurableLog {
  persist(rd: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot }): boolean {
    if (rd.snapshot !== undefined) this.applySnapshot(rd.snapshot);
    this.append(rd.entries);
    if (rd.hardState !== undefined) this.setHardState(rd.hardState);
    return true;
  }
}

interface Peer {
  id: NodeId;
  log: MemoryLog;
  core: GroupCore | undefined;
  offsetMs: number;
  paused: boolean;
  /** Messages this peer has sent, counted at the transport. */
  sent: number;
}

export const TICK_MS = 10;

export class TestCluster {
  /** Real time, ms. */
  now = 1_700_000_000_000;
  readonly peers = new Map<NodeId, Peer>();
  private tasks: (() => void)[] = [];
  private net: { from: NodeId; to: NodeId; msgs: Message[] }[] = [];
  private timers: { at: number; fire: () => void }[] = [];
  /** Links cut: "a>b" drops what a sends to b. */
  readonly cut = new Set<string>();
  readonly errors: unknown[] = [];

  constructor(
    size: number,
    private readonly opts: {
      compactEvery?: number;
      offsets?: number[];
      cacheNodes?: CacheNodes;
      quiesce?: boolean;
    } = {},
  ) {
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    for (const id of voters) {
      const peer: Peer = {
        id,
        log: new MemoryLog({ voters, learners: [] }),
        core: undefined,
        offsetMs: opts.offsets?.[id - 1] ?? 0,
        paused: false,
        sent: 0,
      };
      this.peers.set(id, peer);
      this.start(id);
    }
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (p === undefined) throw new Error(`no peer ${id}`);
    return p;
  }

  core(id: NodeId): GroupCore {
    const c = this.peer(id).core;
    if (c === undefined) throw new Error(`peer ${id} is down`);
    return c;
  }

  clock(id: NodeId): number {
    return this.now + this.peer(id).offsetMs;
  }

  start(id: NodeId): void {
    const p = this.peer(id);
    p.core = createGroupCore({
      id,
      storage: p.log,
      transport: {
        send: (to, msgs) => {
          p.sent += msgs.length;
          this.net.push({ from: id, to, msgs });
        },
      },
      rand: new Rand(id * 7919),
      tickMs: TICK_MS,
      compactEvery: this.opts.compactEvery ?? 1000,
      clock: () => this.clock(id),
      sleep: (ms) => new Promise<void>((resolve) => this.timers.push({ at: this.now + ms, fire: resolve })),
      defer: (fn) => this.tasks.push(fn),
      cacheNodes: this.opts.cacheNodes,
      quiesce: this.opts.quiesce,
    });
  }

  /** A crash: the core stops for good and memory is lost; the log stays. */
  crash(id: NodeId): void {
    this.peer(id).core?.replica.stop(new Error("crashed"));
    this.peer(id).core = undefined;
  }

  leader(): NodeId | undefined {
    for (const p of this.peers.values()) if (p.core?.replica.isLeader() && !p.paused) return p.id;
    return undefined;
  }

  /** Runs deferred work, delivers messages (replies ride back) and settles promises until quiet. */
  async settle(until?: () => boolean): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      if (until?.()) return;
      await flushMicrotasks();
      const tasks = this.tasks;
      this.tasks = [];
      for (const t of tasks) this.guard(t);
      // Messages to peers that do not exist (a learner being added) are lost.
      this.net = this.net.filter((m) => this.peers.has(m.to));
      const ready = this.net.filter((m) => !this.peer(m.to).paused);
      this.net = this.net.filter((m) => this.peer(m.to).paused);
      for (const m of ready) {
        if (until?.()) {
          this.net.push(m);
          continue;
        }
        const to = this.peer(m.to).core;
        if (to === undefined || this.cut.has(`${m.from}>${m.to}`)) continue;
        const replies = to.replica.receive(m.from, m.msgs, this.clock(m.to));
        if (replies.length > 0 && !this.cut.has(`${m.to}>${m.from}`))
          this.net.push({ from: m.to, to: m.from, msgs: replies });
      }
      await flushMicrotasks();
      if (tasks.length === 0 && ready.length === 0 && this.tasks.length === 0) return;
    }
    throw new Error("cluster did not settle");
  }

  /** Lets `ms` of real time pass in ticks: alarms (tick + housekeeping) on every running peer. */
  async advance(ms: number, until?: () => boolean): Promise<void> {
    for (let t = 0; t < ms; t += TICK_MS) {
      this.now += TICK_MS;
      for (const p of this.peers.values()) {
        if (p.core === undefined || p.paused) continue;
        p.core.replica.tick(this.clock(p.id));
        p.core.housekeeping();
      }
      const due = this.timers.filter((x) => x.at <= this.now);
      this.timers = this.timers.filter((x) => x.at > this.now);
      for (const x of due) x.fire();
      await this.settle(until);
      if (until?.()) return;
    }
  }

  /** Advances until a peer leads and serves (its term's first entry applied). */
  async elect(): Promise<NodeId> {
    await this.advance(5000, () => this.serving() !== undefined);
    const id = this.serving();
    if (id === undefined) throw new Error("no leader elected");
    return id;
  }

  serving(): NodeId | undefined {
    for (const p of this.peers.values()) if (p.core?.replica.servesReads() && !p.paused) return p.id;
    return undefined;
  }

  /** Awaits `p` while the cluster runs, up to `ms` of real time. */
  async run<T>(p: Promise<T>, ms = 5000): Promise<{ done: true; value: T } | { done: false; error?: unknown }> {
    let out: { done: true; value: T } | { done: false; error?: unknown } | undefined;
    p.then(
      (value) => {
        out = { done: true, value };
      },
      (error) => {
        out = { done: false, error };
      },
    );
    await this.advance(ms, () => out !== undefined);
    return out ?? { done: false };
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.errors.push(e);
    }
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
