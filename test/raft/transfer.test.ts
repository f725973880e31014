/** Leadership transfer (dissertation §3.10). */
import { describe, expect, it } from "vitest";
import { MemoryStorage, ProposalDroppedError } from "../../shared/raft/index.js";
import { cluster, ELECTION_TICK, ids } from "./helpers.js";

describe("leadership transfer", () => {
  it("a caught-up target is told to campaign at once and wins the next term, skipping pre-vote", () => {
    const net = cluster();
    const from = net.sent.length;
    net.raw(1).transferLeader(2);
    net.settle();
    expect(net.leaders()).toEqual([2]);
    for (const id of ids(3)) expect(net.raw(id).status()).toMatchObject({ term: 2, lead: 2 });
    expect(net.count("timeoutNow", (m) => m.from === 1 && m.to === 2, from)).toBe(1);
    expect(net.count("preVote", () => true, from)).toBe(0);
    expect(net.count("vote", (m) => m.from === 2 && m.context === "transfer", from)).toBe(2);
    // The new leader works.
    net.raw(2).propose(["b"]);
    net.settle();
    net.tick(1, [2]);
    for (const id of ids(3)) expect(net.node(id).state).toEqual(["a", "b"]);
  });

  it("a transfer requested on a follower is forwarded to the leader", () => {
    const net = cluster();
    net.raw(3).transferLeader(3);
    net.settle();
    expect(net.leaders()).toEqual([3]);
    expect(net.raw(1).status()).toMatchObject({ role: "follower", term: 2, lead: 3 });
  });

  it("a lagging target is caught up first; proposals are dropped meanwhile", () => {
    const net = cluster();
    net.isolate(3);
    for (const d of ["b", "c", "d"]) {
      net.raw(1).propose([d]);
      net.settle();
    }
    net.heal();
    const from = net.sent.length;
    net.raw(1).transferLeader(3);
    expect(net.raw(1).status().leadTransferee).toBe(3);
    expect(() => net.raw(1).propose(["x"])).toThrow(ProposalDroppedError);
    net.settle();
    expect(net.leaders()).toEqual([3]);
    expect(net.raw(3).status().term).toBe(2);
    // Entries first, then the order to campaign.
    const toThree = net.sent.slice(from).filter((m) => m.from === 1 && m.to === 3);
    const lastApp = toThree.map((m) => m.type).lastIndexOf("app");
    const timeoutNow = toThree.findIndex((m) => m.type === "timeoutNow");
    expect(toThree.some((m) => m.type === "app" && m.entries.length === 3)).toBe(true);
    expect(timeoutNow).toBeGreaterThan(lastApp);
    net.tick(1, [3]);
    for (const id of ids(3)) expect(net.node(id).state).toEqual(["a", "b", "c", "d"]);
  });

  it("a transfer to an unreachable target is abandoned after an election timeout", () => {
    const net = cluster();
    net.isolate(3);
    net.raw(1).transferLeader(3);
    net.tick(ELECTION_TICK - 1, [1, 2]);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", leadTransferee: 3 });
    expect(() => net.raw(1).propose(["x"])).toThrow(ProposalDroppedError);
    net.tick(1, [1, 2]);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", leadTransferee: 0, term: 1 });
    expect(net.raw(1).propose(["b"]).index).toBe(3);
  });

  it("a transfer to itself, to a non-member or to a learner is ignored", () => {
    const net = cluster();
    net.add(4, new MemoryStorage({ voters: ids(3), learners: [] }));
    net.raw(1).proposeConfChange({ type: "addLearner", node: 4 });
    net.settle();
    net.tick(2, [1]);
    for (const target of [1, 9, 4]) {
      net.raw(1).transferLeader(target);
      net.settle();
      expect(net.raw(1).status()).toMatchObject({ role: "leader", leadTransferee: 0, term: 1 });
    }
    expect(net.count("timeoutNow")).toBe(0);
  });

  it("a second request for another target replaces the first", () => {
    const net = cluster();
    net.isolate(3);
    net.raw(1).transferLeader(3);
    net.raw(1).transferLeader(2);
    net.settle();
    expect(net.leaders()).toEqual([2]);
  });
});
