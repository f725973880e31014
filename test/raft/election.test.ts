/** Leader election (Raft §5.2, §5.4.1), pre-vote and check-quorum (dissertation §9.6). */
import { describe, expect, it } from "vitest";
import { MemoryStorage, type Message, message, type NodeId, type RawNode } from "../../shared/raft/index.js";
import { ELECTION_TICK, ids, Network, newRawNode, persistReady, standalone } from "./helpers.js";

/** Ticks until the node stops being a follower; returns the number of ticks taken. */
function ticksUntilCampaign(raw: RawNode, max = 100): number {
  for (let i = 1; i <= max; i++) {
    raw.tick();
    if (raw.status().role !== "follower") return i;
  }
  throw new Error("never campaigned");
}

const summary = (ms: Message[]) => ms.map((m) => ({ type: m.type, to: m.to, term: m.term, reject: m.reject }));

describe("election (§5.2)", () => {
  it("a follower that hears nothing for an election timeout starts a pre-vote without changing its term", () => {
    const { raw, storage } = standalone(1, 3);
    ticksUntilCampaign(raw);
    expect(raw.status()).toMatchObject({ role: "preCandidate", term: 0, vote: 0 });
    const rd = persistReady(raw, storage);
    expect(summary(rd.messages)).toEqual([
      { type: "preVote", to: 2, term: 1, reject: false },
      { type: "preVote", to: 3, term: 1, reject: false },
    ]);
    // Nothing durable changed: a pre-vote is free.
    expect(rd.mustSync).toBe(false);
    expect(storage.hardState).toEqual({ term: 0, vote: 0, commit: 0 });
  });

  it("after a pre-vote quorum it increments its term, votes for itself and requests votes", () => {
    const { raw, storage } = standalone(1, 3);
    ticksUntilCampaign(raw);
    persistReady(raw, storage);
    raw.step(message({ type: "preVoteResp", from: 2, to: 1, term: 1 }));
    expect(raw.status()).toMatchObject({ role: "candidate", term: 1, vote: 1 });
    const rd = persistReady(raw, storage);
    expect(rd.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(summary(rd.messages)).toEqual([
      { type: "vote", to: 2, term: 1, reject: false },
      { type: "vote", to: 3, term: 1, reject: false },
    ]);
  });

  it.each([
    // [voters, granted votes besides its own, rejected, expected role]
    [1, [], [], "leader"],
    [3, [2], [], "leader"],
    [3, [2, 3], [], "leader"],
    [3, [], [], "candidate"],
    [3, [], [2], "candidate"],
    [3, [], [2, 3], "follower"],
    [5, [2], [], "candidate"],
    [5, [2, 3], [], "leader"],
    [5, [2, 3, 4, 5], [], "leader"],
    [5, [2], [3, 4], "candidate"], // 5 has not answered: 3 of 5 still possible
    [5, [2], [3, 4, 5], "follower"],
    [5, [], [2, 3], "candidate"],
  ] as const)("a candidate of a %i-voter group with grants %j and rejects %j ends %s", (n, grants, rejects, role) => {
    const { raw } = standalone(1, n);
    raw.raft.step(message({ type: "hup" }));
    // Pre-vote first (a single voter goes straight to leader).
    if (n > 1) for (const id of ids(n).slice(1)) raw.step(message({ type: "preVoteResp", from: id, to: 1, term: 1 }));
    expect(raw.status().term).toBe(1);
    for (const id of grants) raw.step(message({ type: "voteResp", from: id, to: 1, term: 1 }));
    for (const id of rejects) raw.step(message({ type: "voteResp", from: id, to: 1, term: 1, reject: true }));
    expect(raw.status().role).toBe(role);
    expect(raw.status().term).toBe(1);
  });

  it("a new leader appends an empty entry of its term and sends it to every peer", () => {
    const { raw, storage } = standalone(1, 3);
    raw.step(message({ type: "hup" })); // ignored: local-only types cannot come from the network
    expect(raw.status().role).toBe("follower");
    raw.campaign();
    raw.step(message({ type: "preVoteResp", from: 2, to: 1, term: 1 }));
    raw.step(message({ type: "voteResp", from: 2, to: 1, term: 1 }));
    expect(raw.status()).toMatchObject({ role: "leader", lead: 1, term: 1 });
    const rd = persistReady(raw, storage);
    expect(rd.entries).toEqual([{ term: 1, index: 1, type: "normal", data: "" }]);
    const apps = rd.messages.filter((m) => m.type === "app");
    expect(apps.map((m) => [m.to, m.index, m.logTerm, m.entries.length])).toEqual([
      [2, 0, 0, 1],
      [3, 0, 0, 1],
    ]);
  });

  it("a candidate steps down when it hears from a leader of its own term", () => {
    const { raw } = standalone(1, 3);
    raw.campaign();
    raw.step(message({ type: "preVoteResp", from: 2, to: 1, term: 1 }));
    expect(raw.status()).toMatchObject({ role: "candidate", term: 1 });
    raw.step(message({ type: "heartbeat", from: 3, to: 1, term: 1 }));
    expect(raw.status()).toMatchObject({ role: "follower", term: 1, lead: 3, vote: 1 });
  });

  it.each(["follower", "candidate", "leader"] as const)("a %s adopts a higher term and becomes follower", (role) => {
    const { raw } = standalone(1, 3, [], 1);
    if (role !== "follower") {
      raw.campaign();
      raw.step(message({ type: "preVoteResp", from: 2, to: 1, term: 2 }));
      if (role === "leader") raw.step(message({ type: "voteResp", from: 2, to: 1, term: 2 }));
    }
    expect(raw.status()).toMatchObject({ role, term: role === "follower" ? 1 : 2 });
    raw.step(message({ type: "app", from: 3, to: 1, term: 5, index: 0, logTerm: 0 }));
    expect(raw.status()).toMatchObject({ role: "follower", term: 5, lead: 3, vote: 0 });
  });

  it("a node answers a stale-term append with its own term, so a deposed leader learns it", () => {
    const { raw, storage } = standalone(1, 3, [], 3);
    raw.step(message({ type: "heartbeat", from: 2, to: 1, term: 2 }));
    expect(raw.status()).toMatchObject({ term: 3, lead: 0 });
    const rd = persistReady(raw, storage);
    expect(summary(rd.messages)).toEqual([{ type: "appResp", to: 2, term: 3, reject: false }]);
  });

  it("votes at most once per term, first come first served; a repeated request is granted again", () => {
    const { raw, storage } = standalone(1, 3);
    raw.step(message({ type: "vote", from: 2, to: 1, term: 1 }));
    raw.step(message({ type: "vote", from: 3, to: 1, term: 1 }));
    raw.step(message({ type: "vote", from: 2, to: 1, term: 1 }));
    const rd = persistReady(raw, storage);
    expect(summary(rd.messages)).toEqual([
      { type: "voteResp", to: 2, term: 1, reject: false },
      { type: "voteResp", to: 3, term: 1, reject: true },
      { type: "voteResp", to: 2, term: 1, reject: false },
    ]);
    expect(storage.hardState).toEqual({ term: 1, vote: 2, commit: 0 });
  });

  it("persists the vote in the same Ready that carries the grant", () => {
    const { raw } = standalone(1, 3);
    raw.step(message({ type: "vote", from: 2, to: 1, term: 4 }));
    const rd = raw.ready();
    expect(rd.hardState).toEqual({ term: 4, vote: 2, commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(summary(rd.messages)).toEqual([{ type: "voteResp", to: 2, term: 4, reject: false }]);
  });

  it("a node that granted a vote and crashed does not vote for someone else in that term", () => {
    const storage = new MemoryStorage({ voters: ids(3), learners: [] });
    const raw = newRawNode(1, storage);
    raw.step(message({ type: "vote", from: 2, to: 1, term: 1 }));
    persistReady(raw, storage);
    const restarted = newRawNode(1, storage, {}, 42);
    expect(restarted.status()).toMatchObject({ term: 1, vote: 2 });
    restarted.step(message({ type: "vote", from: 3, to: 1, term: 1 }));
    expect(summary(persistReady(restarted, storage).messages)).toEqual([
      { type: "voteResp", to: 3, term: 1, reject: true },
    ]);
  });

  it.each([
    // Voter's log: entry 1 of term 1, entry 2 of term 2. [candidate last index, last term, granted]
    [1, 1, false],
    [2, 1, false],
    [3, 1, false],
    [1, 2, false],
    [2, 2, true],
    [3, 2, true],
    [1, 3, true],
    [0, 0, false],
  ])("§5.4.1: a candidate whose log ends at (%i, term %i) gets the vote: %s", (index, logTerm, granted) => {
    const { raw, storage } = standalone(1, 3, [1, 2], 2);
    raw.step(message({ type: "vote", from: 2, to: 1, term: 3, index, logTerm }));
    const rd = persistReady(raw, storage);
    expect(summary(rd.messages)).toEqual([{ type: "voteResp", to: 2, term: 3, reject: !granted }]);
    expect(storage.hardState.vote).toBe(granted ? 2 : 0);
  });

  it("the election timeout is randomised in [electionTick, 2 * electionTick)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const { raw } = standalone(1, 3, [], 0, seed);
      const t = ticksUntilCampaign(raw);
      expect(t).toBeGreaterThanOrEqual(ELECTION_TICK);
      expect(t).toBeLessThan(2 * ELECTION_TICK);
      seen.add(t);
    }
    // Spread over (almost) the whole range, so split votes are rare.
    expect(seen.size).toBeGreaterThanOrEqual(8);
  });

  it("the same seed gives the same timeout", () => {
    const a = ticksUntilCampaign(standalone(1, 3, [], 0, 7).raw);
    const b = ticksUntilCampaign(standalone(1, 3, [], 0, 7).raw);
    expect(a).toBe(b);
  });

  it("a follower that keeps hearing heartbeats never campaigns", () => {
    const { raw } = standalone(1, 3, [], 1);
    for (let i = 0; i < 100; i++) {
      raw.tick();
      if (i % 5 === 0) raw.step(message({ type: "heartbeat", from: 2, to: 1, term: 1 }));
    }
    expect(raw.status()).toMatchObject({ role: "follower", term: 1, lead: 2 });
  });

  it("a three-node network elects exactly one leader that everyone follows", () => {
    const net = new Network(3);
    net.tick(2 * ELECTION_TICK);
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    const lead = leaders[0];
    for (const id of ids(3)) expect(net.raw(id).status()).toMatchObject({ term: 1, lead });
    // The leader's no-op is committed everywhere.
    for (const id of ids(3)) expect(net.raw(id).status().commit).toBe(1);
  });

  it("a five-node network elects a leader even with two nodes down", () => {
    const net = new Network(5);
    net.isolate(4);
    net.isolate(5);
    net.tick(4 * ELECTION_TICK, [1, 2, 3]);
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    expect([1, 2, 3]).toContain(leaders[0]);
  });
});

describe("pre-vote", () => {
  it("a partitioned node that keeps timing out does not increase its term", () => {
    const net = new Network(3);
    net.elect(1);
    expect(net.raw(3).status().term).toBe(1);
    net.isolate(3);
    net.tick(20 * ELECTION_TICK);
    expect(net.raw(3).status()).toMatchObject({ term: 1, role: "preCandidate" });
    // It did try: pre-votes were sent (and lost).
    expect(net.count("preVote", (m) => m.from === 3)).toBeGreaterThan(10);
    expect(net.count("vote", (m) => m.from === 3)).toBe(0);
  });

  it("without pre-vote the same partitioned node inflates its term", () => {
    const net = new Network(3, { preVote: false });
    net.elect(1);
    net.isolate(3);
    net.tick(20 * ELECTION_TICK);
    expect(net.raw(3).status().term).toBeGreaterThan(5);
  });

  it("a partitioned node that rejoins does not disrupt the leader", () => {
    const net = new Network(3);
    net.elect(1);
    net.raw(1).propose(["a"]);
    net.settle();
    net.isolate(3);
    net.tick(5 * ELECTION_TICK);
    net.heal();
    net.tick(5 * ELECTION_TICK);
    for (const id of ids(3)) expect(net.raw(id).status()).toMatchObject({ term: 1, lead: 1 });
    expect(net.raw(1).status().role).toBe("leader");
    expect(net.node(3).state).toEqual(["a"]);
  });

  it("pre-votes are granted for a future term without changing the voter's term or vote", () => {
    const { raw, storage } = standalone(1, 3, [], 2);
    raw.step(message({ type: "preVote", from: 2, to: 1, term: 3 }));
    const rd = persistReady(raw, storage);
    expect(summary(rd.messages)).toEqual([{ type: "preVoteResp", to: 2, term: 3, reject: false }]);
    expect(raw.status()).toMatchObject({ term: 2, vote: 0 });
    expect(rd.hardState).toBeUndefined();
  });
});

describe("check-quorum", () => {
  it("a leader isolated from the majority steps down after (at most two) election timeouts", () => {
    const net = new Network(3);
    net.elect(1);
    net.isolate(1);
    net.tick(ELECTION_TICK, [1]);
    // The first round still counts the followers heard from before the partition.
    expect(net.raw(1).status().role).toBe("leader");
    net.tick(ELECTION_TICK, [1]);
    expect(net.raw(1).status()).toMatchObject({ role: "follower", lead: 0, term: 1 });
  });

  it("a leader that hears from a majority stays leader", () => {
    const net = new Network(3);
    net.elect(1);
    net.isolate(3);
    net.tick(10 * ELECTION_TICK, [1, 2]);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", term: 1 });
  });

  it("the majority side elects a new leader while the old one is cut off", () => {
    const net = new Network(3);
    net.elect(1);
    net.isolate(1);
    net.tick(4 * ELECTION_TICK);
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe(1);
    expect(net.raw(leaders[0] as NodeId).status().term).toBe(2);
    // Back together, the old leader follows the new one.
    net.heal();
    net.tick(2);
    expect(net.raw(1).status()).toMatchObject({ role: "follower", term: 2, lead: leaders[0] });
  });

  it.each(["vote", "preVote"] as const)("a follower in its lease ignores a %s request of a higher term", (type) => {
    const net = new Network(3);
    net.elect(1);
    const from = net.sent.length;
    net.raw(2).step(message({ type, from: 3, to: 2, term: 7, index: 5, logTerm: 5 }));
    net.settle();
    expect(net.raw(2).status()).toMatchObject({ term: 1, lead: 1, vote: 1 });
    expect(net.count(type === "vote" ? "voteResp" : "preVoteResp", () => true, from)).toBe(0);
  });

  it("a follower in its lease still grants a vote forced by leadership transfer", () => {
    const net = new Network(3);
    net.elect(1);
    const from = net.sent.length;
    net.raw(2).step(message({ type: "vote", from: 3, to: 2, term: 7, index: 5, logTerm: 5, context: "transfer" }));
    net.settle();
    expect(net.raw(2).status()).toMatchObject({ term: 7, vote: 3 });
    expect(net.count("voteResp", (m) => m.from === 2 && m.to === 3 && !m.reject && m.term === 7, from)).toBe(1);
  });

  it("after an election timeout without a leader, the lease is over and a higher-term vote is granted", () => {
    const net = new Network(3);
    net.elect(1);
    net.isolate(1);
    net.isolate(3);
    net.tick(ELECTION_TICK, [2]); // 2 hears nothing for an election timeout (it may pre-campaign meanwhile)
    net.heal();
    const from = net.sent.length;
    net.raw(2).step(message({ type: "vote", from: 3, to: 2, term: 7, index: 5, logTerm: 5 }));
    net.drop(() => true);
    net.settle();
    expect(net.raw(2).status()).toMatchObject({ term: 7, vote: 3 });
    expect(net.count("voteResp", (m) => m.from === 2 && !m.reject, from)).toBe(1);
  });
});
