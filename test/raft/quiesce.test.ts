/**
 * Quiescence (CockroachDB's): an idle leader's last heartbeat tells followers to stop their
 * election timers; then nobody ticks until something wakes the group. These tests try to break
 * it: leaders that die or are cut off while quiet, followers that miss the quiesce heartbeat,
 * check-quorum and pre-vote across a quiet period, and stale quiesce heartbeats.
 */
import { describe, expect, it } from "vitest";
import { message, type NodeId, QUIESCE, quiesceContext, quietTicksOf } from "../../shared/raft/index.js";
import { cluster, ELECTION_TICK, Network } from "./helpers.js";

const isQuiesceBeat = (m: { type: string; context: string }) =>
  m.type === "heartbeat" && quietTicksOf(m.context) !== undefined;

/** Ticks every live node once (settling after), asking the leader to quiesce after its tick, as Replica does. */
function tickAll(net: Network, which: NodeId[] = [...net.nodes.keys()], quietTicks = Number.POSITIVE_INFINITY): void {
  for (const id of which) {
    const raw = net.raw(id);
    raw.tick();
    if (raw.status().role === "leader") raw.quiesce(quietTicks);
  }
  net.settle();
}

/** Ticks until every node in `which` is quiesced; returns the ticks taken. */
function untilQuiet(net: Network, which: NodeId[] = [...net.nodes.keys()], max = 50): number {
  for (let i = 1; i <= max; i++) {
    tickAll(net, which);
    if (which.every((id) => net.raw(id).raft.quiesced)) return i;
  }
  throw new Error("never quiesced");
}

/** Ticks `which` until one of them leads (in a term above `term`); returns the ticks taken. */
function untilLeader(net: Network, which: NodeId[], term: number, max = 200): number {
  for (let i = 1; i <= max; i++) {
    tickAll(net, which);
    if (which.some((id) => net.raw(id).status().role === "leader" && net.raw(id).status().term > term)) return i;
  }
  throw new Error("no new leader");
}

describe("quiescence", () => {
  it("an idle group quiesces, then sends nothing and elects nobody however long it stays idle", () => {
    const net = cluster();
    untilQuiet(net);
    const term = net.raw(1).status().term;
    for (const id of [1, 2, 3]) expect(net.raw(id).raft.ticksUntilTimeout()).toBe(Number.POSITIVE_INFINITY);
    const sent = net.sent.length;
    tickAll(net, [1, 2, 3]);
    net.tick(1000); // ten minutes of 50 ms ticks... and more
    expect(net.sent.length).toBe(sent);
    expect(net.leaders()).toEqual([1]);
    for (const id of [1, 2, 3]) expect(net.raw(id).status()).toMatchObject({ term, quiesced: true, commit: 2 });
  });

  it("the quiesce heartbeat carries the commit index: followers apply everything before going quiet", () => {
    const net = cluster();
    net.raw(1).propose(["b"]);
    net.settle(); // appended and committed on the leader; followers learn the commit later
    untilQuiet(net);
    for (const id of [2, 3]) expect(net.node(id).state).toEqual(["a", "b"]);
    for (const id of [2, 3]) expect(net.raw(id).status().commit).toBe(3);
  });

  it("does not quiesce while an entry is unacknowledged, a read is pending, or a transfer runs", () => {
    const net = cluster();
    net.drop((m) => m.type === "app" && m.to === 3);
    net.raw(1).propose(["b"]);
    net.settle();
    for (let i = 0; i < 5; i++) tickAll(net, [1]);
    expect(net.raw(1).raft.quiesced).toBe(false);
    net.heal();
    untilQuiet(net);

    net.raw(1).readIndex("r1"); // wakes it
    expect(net.raw(1).raft.quiesced).toBe(false);
    expect(net.raw(1).raft.canQuiesce()).toBe(false);
    net.settle();
    expect(net.node(1).readStates.map((r) => r.context)).toEqual(["r1"]);

    net.drop((m) => m.type === "appResp" || m.type === "timeoutNow");
    net.raw(1).propose(["c"]);
    net.raw(1).transferLeader(2);
    expect(net.raw(1).raft.canQuiesce()).toBe(false);
  });

  it("a proposal wakes the quiet leader, the append wakes the followers, and the group quiesces again", () => {
    const net = cluster();
    untilQuiet(net);
    net.raw(1).propose(["b"]);
    net.settle();
    expect(net.raw(1).raft.quiesced).toBe(false);
    const ticks = untilQuiet(net);
    expect(ticks).toBeLessThanOrEqual(3);
    for (const id of [1, 2, 3]) expect(net.node(id).state).toEqual(["a", "b"]);
  });

  it("a leader that dies while quiet is replaced once a request wakes a follower, and the request is served", () => {
    const net = cluster();
    untilQuiet(net);
    const term = net.raw(1).status().term;
    net.isolate(1); // dead
    // Nothing happens until a request comes: no follower campaigns while quiet.
    for (let i = 0; i < 200; i++) tickAll(net, [2, 3]);
    expect(net.raw(2).status().role).toBe("follower");
    expect(net.raw(3).status().term).toBe(term);
    // A client request reaches follower 2 (its host calls wake()).
    net.raw(2).wake();
    const ticks = untilLeader(net, [2, 3], term);
    // One election timeout to notice, at most one more for the woken peer's lease on the old leader.
    expect(ticks).toBeLessThanOrEqual(4 * ELECTION_TICK);
    const leader = [2, 3].find((id) => net.raw(id).status().role === "leader") as NodeId;
    net.raw(leader).propose(["after"]);
    net.settle();
    tickAll(net, [2, 3]);
    for (const id of [2, 3]) expect(net.node(id).state).toEqual(["a", "after"]);
  });

  it("a restarted peer starts awake; its pre-vote wakes the quiet leader, which keeps the lead and quiesces again", () => {
    const net = cluster();
    untilQuiet(net);
    const term = net.raw(1).status().term;
    net.restart(3);
    expect(net.raw(3).raft.quiesced).toBe(false);
    for (let i = 0; i < 4 * ELECTION_TICK && net.raw(1).raft.quiesced; i++) tickAll(net);
    expect(net.raw(1).raft.quiesced).toBe(false); // the pre-vote woke it
    untilQuiet(net);
    expect(net.leaders()).toEqual([1]);
    for (const id of [1, 2, 3]) expect(net.raw(id).status().term).toBe(term);
  });

  it("a follower that missed the quiesce heartbeat campaigns, wakes the leader, and rejoins without a new term", () => {
    const net = cluster();
    net.drop((m) => isQuiesceBeat(m) && m.to === 3);
    for (let i = 0; i < 5 && !net.raw(1).raft.quiesced; i++) tickAll(net);
    expect(net.raw(1).raft.quiesced).toBe(true);
    expect(net.raw(3).raft.quiesced).toBe(false);
    net.heal();
    const term = net.raw(1).status().term;
    untilQuiet(net, [1, 2, 3], 4 * ELECTION_TICK);
    expect(net.leaders()).toEqual([1]);
    for (const id of [1, 2, 3]) expect(net.raw(id).status().term).toBe(term);
  });

  it("a follower cut off while quiet keeps campaigning in vain (pre-vote: no new term) and rejoins when healed", () => {
    const net = cluster();
    net.drop((m) => isQuiesceBeat(m) && m.to === 3);
    for (let i = 0; i < 5 && !net.raw(1).raft.quiesced; i++) tickAll(net);
    net.isolate(3);
    for (let i = 0; i < 100; i++) tickAll(net);
    expect(net.raw(3).status().term).toBe(net.raw(1).status().term);
    expect(net.raw(1).raft.quiesced).toBe(true);
    net.heal();
    untilQuiet(net, [1, 2, 3], 4 * ELECTION_TICK);
    expect(net.leaders()).toEqual([1]);
  });

  it("a leader woken after a long quiet is not deposed by check-quorum for the silence; cut off, it still steps down", () => {
    const net = cluster();
    untilQuiet(net);
    for (let i = 0; i < 10 * ELECTION_TICK; i++) tickAll(net);
    net.raw(1).propose(["b"]);
    net.settle();
    for (let i = 0; i < 3 * ELECTION_TICK; i++) net.tick(1); // no quiescing here: check-quorum rounds run
    expect(net.leaders()).toEqual([1]);

    untilQuiet(net);
    net.isolate(1);
    net.raw(1).propose(["c"]);
    for (let i = 0; i < 2 * ELECTION_TICK; i++) net.tick(1, [1]);
    expect(net.raw(1).status().role).toBe("follower");
  });

  it("a woken leader is confirmed only once a majority answers; one deposed while quiet learns it and steps down", () => {
    const net = cluster();
    untilQuiet(net);
    const term = net.raw(1).status().term;
    net.isolate(1);
    net.raw(1).propose(["lost"]);
    net.settle();
    expect(net.raw(1).raft.confirmed()).toBe(false);
    for (let i = 0; i < ELECTION_TICK - 1; i++) net.tick(1, [1]);
    expect(net.raw(1).raft.confirmed()).toBe(false);

    // Meanwhile 2 and 3, woken by a request, elect a new leader.
    net.raw(2).wake();
    untilLeader(net, [2, 3], term);
    net.heal();
    net.raw(1).readIndex("stale?");
    net.settle();
    tickAll(net);
    expect(net.raw(1).status().role).toBe("follower");
    expect(net.node(1).readStates).toEqual([]);
    expect(net.node(1).state).not.toContain("lost");
  });

  it("a confirmed wake: the heartbeat round after waking is acknowledged by a majority", () => {
    const net = cluster();
    untilQuiet(net);
    net.drop((m) => m.type === "heartbeat" && m.to === 3);
    net.raw(1).wake();
    expect(net.raw(1).raft.confirmed()).toBe(false);
    net.settle();
    expect(net.raw(1).raft.confirmed()).toBe(true); // 2 answered: with the leader, a majority
  });

  it("bounded quiet: followers wake by themselves an election timeout after the leader's next deadline", () => {
    const net = cluster();
    for (let i = 0; i < 5 && !net.raw(1).raft.quiesced; i++) tickAll(net, [1, 2, 3], 7);
    expect(net.raw(1).raft.quiesced).toBe(true);
    expect(net.raw(2).raft.ticksUntilTimeout()).toBe(7 + ELECTION_TICK);
    expect(net.raw(1).raft.ticksUntilTimeout()).toBe(Number.POSITIVE_INFINITY);
    net.isolate(1); // the leader dies while quiet, its deadline never handled
    const term = net.raw(1).status().term;
    for (let i = 0; i < 7 + ELECTION_TICK - 1; i++) tickAll(net, [2, 3]);
    expect(net.raw(2).raft.quiesced).toBe(true);
    tickAll(net, [2, 3]);
    expect(net.raw(2).raft.quiesced).toBe(false);
    expect(untilLeader(net, [2, 3], term)).toBeLessThanOrEqual(3 * ELECTION_TICK);
  });

  it("tickQuiet counts a bounded quiet down in one step and reports the ticks it took", () => {
    const net = cluster();
    for (let i = 0; i < 5 && !net.raw(1).raft.quiesced; i++) tickAll(net, [1, 2, 3], 20);
    const f = net.raw(2).raft;
    expect(f.tickQuiet(25)).toBe(25);
    expect(f.ticksUntilTimeout()).toBe(5);
    expect(f.tickQuiet(100)).toBe(5);
    expect(f.quiesced).toBe(false);
    expect(f.tickQuiet(100)).toBe(0);
    expect(net.raw(1).raft.tickQuiet(1e9)).toBe(1e9); // the leader's quiet has no bound
  });

  it("a quiesce heartbeat that does not match the follower's log is answered, waking the leader", () => {
    const net = cluster();
    const f = net.raw(2);
    const { term } = f.status();
    f.step(message({ type: "heartbeat", from: 1, to: 2, term, index: 9, logTerm: term, commit: 9, context: QUIESCE }));
    expect(f.raft.quiesced).toBe(false);
    expect(f.raft.msgs.map((m) => [m.type, m.context])).toEqual([["heartbeatResp", ""]]);
    expect(f.status().commit).toBe(2);
  });

  it("a stale quiesce heartbeat from an old term neither quiesces nor wakes a follower of a newer term", () => {
    const net = cluster();
    const term = net.raw(1).status().term;
    net.isolate(1);
    untilLeader(net, [2, 3], term);
    net.heal();
    untilQuiet(net);
    const f = [2, 3].find((id) => net.raw(id).status().role === "follower") as NodeId;
    const stale = message({
      type: "heartbeat",
      from: 1,
      to: f,
      term,
      index: 2,
      logTerm: term,
      commit: 2,
      context: QUIESCE,
    });
    net.raw(f).step(stale);
    expect(net.raw(f).raft.quiesced).toBe(true);
    expect(net.raw(f).status().term).toBe(term + 1);
    expect(net.raw(f).raft.msgs.map((m) => [m.type, m.term])).toEqual([["appResp", term + 1]]);
    net.raw(f).raft.msgs = [];
    // Awake, it does not quiesce on it either (it answers the stale leader with its newer term).
    net.raw(f).wake();
    net.raw(f).step(stale);
    expect(net.raw(f).raft.quiesced).toBe(false);
    expect(net.raw(f).raft.msgs.map((m) => [m.type, m.term])).toEqual([["appResp", term + 1]]);
  });

  it("quiesce contexts round-trip and never look like ReadIndex contexts", () => {
    expect(quietTicksOf(quiesceContext(Number.POSITIVE_INFINITY))).toBe(Number.POSITIVE_INFINITY);
    expect(quietTicksOf(quiesceContext(12.2))).toBe(13);
    expect(quietTicksOf("")).toBeUndefined();
    expect(quietTicksOf("1:7")).toBeUndefined();
    expect(quietTicksOf("quiesce:x")).toBeUndefined();
  });

  it("a single-voter group quiesces and wakes confirmed at once", () => {
    const net = new Network(1);
    net.elect(1);
    net.raw(1).propose(["a"]);
    net.settle();
    untilQuiet(net, [1]);
    net.raw(1).propose(["b"]);
    expect(net.raw(1).raft.confirmed()).toBe(true);
    net.settle();
    expect(net.node(1).state).toEqual(["a", "b"]);
  });
});
