/**
 * Quiescence of idle groups, on real group cores hosted as RaftPeer hosts them (SimPeer: one
 * alarm for every timer, none while the replica's nextWakeup() is +Infinity, a client request
 * wakes the peer). Deterministic: simulated time, no faults but the ones a test makes.
 *
 * Also the measurement for the cost model (printed): alarms per minute of an idle 3-peer group
 * with and without quiescence, and what the first request after a quiet period costs.
 */
import { describe, expect, it } from "vitest";
import type { LockReply } from "../../../shared/locks/lock-service.js";
import type { ConfState, NodeId } from "../../../shared/raft/index.js";
import { Rand } from "../../../shared/raft/rand.js";
import { PeerClock } from "./clock.js";
import { PeerNetwork } from "./net.js";
import { SimPeer } from "./peer.js";
import { World } from "./world.js";

const TICK_MS = 50;
const MINUTE = 60_000;

class Group {
  readonly world: World;
  readonly peers: SimPeer[] = [];
  readonly errors: unknown[] = [];
  readonly net: PeerNetwork;

  constructor(quiesce: boolean, size = 3, seed = 1) {
    this.world = new World((e) => this.errors.push(e));
    const rand = new Rand(seed);
    this.net = new PeerNetwork(this.world, rand.fork(), { dropPerMille: 0, dupPerMille: 0, minDelay: 1, maxDelay: 1 });
    this.net.faulty = false;
    const genesis: ConfState = { voters: Array.from({ length: size }, (_, i) => i + 1), learners: [] };
    for (let id = 1; id <= size; id++) {
      this.peers.push(
        new SimPeer(0, id, new PeerClock(0, 0), rand.fork(), {
          world: this.world,
          net: this.net,
          peer: (to) => this.peers[to - 1] as SimPeer,
          genesis,
          tickMs: TICK_MS,
          compactEvery: 1000,
          chunking: { units: 64, naive: false },
          diskMs: 1,
          maxDriftPpm: 0,
          cacheNodes: () => ({ order: () => Promise.reject(new Error("no cache nodes")) }),
          cacheLeaseMs: 1000,
          quiesce,
          bug: undefined,
          crashAfterAnswer: () => false,
          onStart: () => {},
          onError: (_p, e) => this.errors.push(e),
          log: () => {},
        }),
      );
    }
  }

  peer(id: NodeId): SimPeer {
    return this.peers[id - 1] as SimPeer;
  }

  leader(): SimPeer | undefined {
    return this.peers.find((p) => p.core?.replica.servesReads() || p.core?.replica.anchored());
  }

  quiet(): boolean {
    return this.peers.every((p) => p.core === undefined || p.core.replica.isQuiesced());
  }

  alarms(): number {
    return this.peers.reduce((n, p) => n + p.alarms, 0);
  }

  sends(): number {
    return this.peers.reduce((n, p) => n + p.sends, 0);
  }

  async run(ms: number, stop?: () => boolean): Promise<void> {
    await this.world.run(this.world.now + ms, stop);
  }

  /** Runs until `p` settles (at most `ms`); its value, or undefined. */
  async until<T>(p: Promise<T>, ms = 10_000): Promise<T | undefined> {
    let out: { v: T } | undefined;
    void p.then((v) => {
      out = { v };
    });
    await this.run(ms, () => out !== undefined);
    return out?.v;
  }

  /** A lock request sent to peer `id` as the Worker would (retrying at the leader it names, or the next peer). */
  async request(id: NodeId, req: Parameters<SimPeer["lock"]>[0], requestId: string): Promise<LockReply> {
    let next = id;
    for (let attempt = 0; attempt < 200; attempt++) {
      const reply = await this.peer(next).lock(req, `${requestId}.${attempt}`);
      if (reply.ok) return reply.value;
      const hint = reply.error === "not-leader" ? reply.leader : 0;
      next = hint !== 0 && this.peer(hint).up ? hint : (next % this.peers.length) + 1;
      await this.world.sleep(50);
    }
    throw new Error("never served");
  }

  async elected(): Promise<SimPeer> {
    await this.run(10_000, () => this.leader() !== undefined);
    const l = this.leader();
    if (l === undefined) throw new Error("no leader");
    return l;
  }
}

/** Alarms per simulated minute of an idle group, after `warmMs` to settle. */
async function idleAlarmsPerMinute(quiesce: boolean): Promise<{ alarms: number; sends: number; quiet: boolean }> {
  const g = new Group(quiesce);
  await g.elected();
  await g.run(10_000);
  const a = g.alarms();
  const s = g.sends();
  await g.run(MINUTE);
  expect(g.errors).toEqual([]);
  return { alarms: g.alarms() - a, sends: g.sends() - s, quiet: g.quiet() };
}

describe("quiescence of an idle group (hosted as RaftPeer)", () => {
  it("cuts the alarms of an idle minute to zero (measured: printed for the cost model)", async () => {
    const before = await idleAlarmsPerMinute(false);
    const after = await idleAlarmsPerMinute(true);
    console.log(
      `idle 3-peer group, 50 ms ticks: ${before.alarms} alarms and ${before.sends} Raft sends per minute without quiescence; ${after.alarms} alarms and ${after.sends} sends with it`,
    );
    expect(before.alarms).toBeGreaterThan(600); // the leader's heartbeats alone: 10 a second
    expect(after).toEqual({ alarms: 0, sends: 0, quiet: true });
  });

  it("quiesces within a few heartbeats of the last request, and the first request after quiet is served at once", async () => {
    const g = new Group(true);
    const leader = await g.elected();
    await g.run(2_000, () => g.quiet());
    expect(g.quiet()).toBe(true);
    await g.run(MINUTE);
    const t0 = g.world.now;
    const s0 = g.sends();
    const a0 = g.alarms();
    const reply = await g.until(g.request(leader.id, { op: "view", resource: "r" }, "first"));
    expect(reply?.type).toBe("view");
    const servedMs = g.world.now - t0;
    console.log(
      `first request after a quiet minute, at the leader: served in ${servedMs} ms (1 ms network hops), ${g.sends() - s0} Raft sends, ${g.alarms() - a0} alarms`,
    );
    expect(servedMs).toBeLessThanOrEqual(20);
    // And it goes quiet again.
    const q0 = g.world.now;
    await g.run(5_000, () => g.quiet());
    console.log(`quiet again ${g.world.now - q0} ms after serving it`);
    expect(g.quiet()).toBe(true);
  });

  it("a request to a follower of a quiet group is forwarded and served; the follower wakes", async () => {
    const g = new Group(true);
    const leader = await g.elected();
    await g.run(MINUTE);
    expect(g.quiet()).toBe(true);
    const follower = g.peers.find((p) => p !== leader) as SimPeer;
    const t0 = g.world.now;
    const reply = await g.until(
      g.request(follower.id, { op: "acquire", resource: "r", owner: "a", mode: "exclusive", ttlMs: 0, waitMs: 0 }, "f"),
    );
    expect(reply?.type).toBe("granted");
    expect(g.world.now - t0).toBeLessThanOrEqual(50);
    expect(g.leader()).toBe(leader);
  });

  it("a leader that crashes while quiet: a request to a follower gets a new leader elected and is served", async () => {
    const g = new Group(true);
    const old = await g.elected();
    const term = old.core?.replica.raw.raft.term ?? 0;
    await g.run(MINUTE);
    expect(g.quiet()).toBe(true);
    old.crash("while quiet");
    // Nobody notices while nothing happens: no alarms at all.
    const a0 = g.alarms();
    await g.run(MINUTE);
    expect(g.alarms()).toBe(a0);
    const follower = g.peers.find((p) => p !== old) as SimPeer;
    const t0 = g.world.now;
    const s0 = g.sends();
    const reply = await g.until(
      g.request(follower.id, { op: "acquire", resource: "r", owner: "a", mode: "exclusive", ttlMs: 0, waitMs: 0 }, "x"),
    );
    expect(reply?.type).toBe("granted");
    const ms = g.world.now - t0;
    console.log(
      `leader crashed while quiet: a request to a follower served after ${ms} ms (${ms / TICK_MS} ticks), ${g.sends() - s0} Raft sends`,
    );
    // One election timeout (10–20 ticks) to notice, at most one more for the other follower's lease.
    expect(ms).toBeLessThanOrEqual(4 * 10 * TICK_MS);
    const now = g.leader();
    expect(now).not.toBe(old);
    expect(now?.core?.replica.raw.raft.term).toBeGreaterThan(term);
  });

  it("a follower cut off when the quiesce heartbeat went out campaigns in vain; healed, the group is quiet with the same leader", async () => {
    const g = new Group(true);
    const leader = await g.elected();
    // Cut off just before the leader quiesces: it misses the quiesce heartbeat.
    await g.run(2_000, () => leader.core?.replica.raw.raft.canQuiesce() === true);
    const cut = g.peers.find((p) => p !== leader) as SimPeer;
    const others = g.peers.filter((p) => p !== cut).map((p) => p.id);
    g.net.partition([[cut.id], others], false);
    const term = leader.core?.replica.raw.raft.term;
    await g.run(30_000);
    expect(leader.core?.replica.isQuiesced()).toBe(true);
    expect(cut.core?.replica.isQuiesced()).toBe(false); // it keeps its election timer
    g.net.heal();
    await g.run(10_000, () => g.quiet());
    expect(g.quiet()).toBe(true);
    expect(g.leader()).toBe(leader);
    expect(leader.core?.replica.raw.raft.term).toBe(term);
  });

  it("a lock whose TTL runs out while the group is quiet expires on time: the waiter behind it is granted", async () => {
    const g = new Group(true);
    const leader = await g.elected();
    const granted = await g.until(
      g.request(
        leader.id,
        { op: "acquire", resource: "r", owner: "a", mode: "exclusive", ttlMs: 20_000, waitMs: 0 },
        "a",
      ),
    );
    expect(granted?.type).toBe("granted");
    const grantedAt = g.world.now;
    // A waiter (held open at the leader) behind the lease.
    let waiterAt: number | undefined;
    void g
      .request(
        leader.id,
        { op: "acquire", resource: "r", owner: "b", mode: "exclusive", ttlMs: 1000, waitMs: 60_000 },
        "b",
      )
      .then((r) => {
        if (r.type === "granted") waiterAt = g.world.now;
      });
    // Quiet in between: the leader's only alarms are the time stamps and the deadline.
    let quietSeen = 0;
    const poll = () => {
      if (g.quiet()) quietSeen++;
      if (waiterAt === undefined) g.world.after(100, poll);
    };
    poll();
    const a0 = g.alarms();
    const s0 = g.sends();
    const t0 = g.world.now;
    await g.run(30_000, () => waiterAt !== undefined);
    expect(waiterAt).toBeDefined();
    const late = (waiterAt as number) - (grantedAt + 20_000);
    console.log(
      `lock TTL 20 s ending while quiet: waiter granted ${late} ms after the lease's end; ${g.alarms() - a0} alarms and ${g.sends() - s0} Raft sends in ${g.world.now - t0} ms meanwhile, quiet in ${quietSeen} of ${Math.round((g.world.now - grantedAt) / 100)} samples`,
    );
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThanOrEqual(250);
    expect(quietSeen).toBeGreaterThan(50);
  });

  it("a leader that crashes while quiet with a lease pending: the followers wake by themselves and expire it", async () => {
    const g = new Group(true);
    const old = await g.elected();
    const granted = await g.until(
      g.request(old.id, { op: "acquire", resource: "r", owner: "a", mode: "exclusive", ttlMs: 3_000, waitMs: 0 }, "a"),
    );
    expect(granted?.type).toBe("granted");
    const grantedAt = g.world.now;
    await g.run(600, () => g.quiet());
    expect(g.quiet()).toBe(true);
    old.crash("while quiet, lease pending");
    // No request comes; the followers' bounded quiet ends, they elect, the new leader expires the lease.
    await g.run(20_000, () => g.peers.some((p) => p !== old && p.core?.replica.servesReads() === true));
    const now = g.leader();
    expect(now).toBeDefined();
    expect(now).not.toBe(old);
    await g.run(10_000, () => now?.core?.state.locks.nextDeadline() === undefined);
    expect(now?.core?.state.locks.nextDeadline()).toBeUndefined();
    console.log(
      `leader crashed while quiet with a 3 s lease: expired by a new leader ${g.world.now - grantedAt} ms after the grant`,
    );
  });
});
