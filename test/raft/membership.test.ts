/** Membership changes, one server at a time (dissertation §4.1–4.2). */
import { describe, expect, it } from "vitest";
import {
  type ConfChange,
  encodeConfChange,
  MemoryStorage,
  message,
  type NodeId,
  ProposalDroppedError,
} from "../../shared/raft/index.js";
import { cluster, ELECTION_TICK, ids, makeStorage, Network } from "./helpers.js";

const conf3 = { voters: ids(3), learners: [] };

/** Adds node `id` (bootstrapped, like every node, with the group's initial configuration) as a learner. */
function addLearner(net: Network, id: NodeId): void {
  net.add(id, new MemoryStorage(conf3));
  net.raw(1).proposeConfChange({ type: "addLearner", node: id });
  net.settle();
  net.tick(2, [1]);
}

function change(net: Network, id: NodeId, cc: ConfChange): void {
  net.raw(id).proposeConfChange(cc);
  net.settle();
  net.tick(1, [1]);
}

describe("membership", () => {
  it("a new learner receives the whole log and the configuration", () => {
    const net = cluster();
    addLearner(net, 4);
    expect(net.node(4).state).toEqual(["a"]);
    for (const id of ids(4)) expect(net.raw(id).status().conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    net.raw(1).propose(["b"]);
    net.settle();
    net.tick(1, [1]);
    expect(net.node(4).state).toEqual(["a", "b"]);
  });

  it("a configuration takes effect as soon as it is appended, before it commits", () => {
    const net = cluster();
    net.isolate(2);
    net.isolate(3);
    net.raw(1).proposeConfChange({ type: "addLearner", node: 4 });
    net.settle();
    const st = net.raw(1).status();
    expect(st.conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(st.commit).toBeLessThan(st.lastIndex);
    expect(st.progress.map((p) => p.id).sort()).toEqual([1, 2, 3, 4]);
  });

  it("a learner's acknowledgement does not count toward commit", () => {
    const net = cluster();
    addLearner(net, 4);
    net.isolate(2);
    net.isolate(3);
    const commit = net.raw(1).status().commit;
    net.raw(1).propose(["b"]);
    net.settle();
    net.tick(2, [1, 4]);
    const st = net.raw(1).status();
    expect(st.progress.find((p) => p.id === 4)?.match).toBe(st.lastIndex);
    expect(st.commit).toBe(commit);
    expect(net.node(4).state).toEqual(["a"]);
  });

  it("a learner never campaigns and is never asked for its vote", () => {
    const net = cluster();
    addLearner(net, 4);
    net.isolate(4);
    net.tick(20 * ELECTION_TICK, [4]);
    expect(net.raw(4).status()).toMatchObject({ role: "follower", term: 1 });
    expect(net.count("preVote", (m) => m.from === 4)).toBe(0);
    net.heal();
    net.isolate(1); // the voters elect a new leader
    net.tick(4 * ELECTION_TICK, [2, 3, 4]);
    expect(net.leaders().filter((id) => id !== 1)).toHaveLength(1);
    expect(net.count("preVote", (m) => m.to === 4) + net.count("vote", (m) => m.to === 4)).toBe(0);
  });

  it("a promoted learner becomes a voter and counts toward the quorum of 3 out of 4", () => {
    const net = cluster();
    addLearner(net, 4);
    change(net, 1, { type: "promote", node: 4 });
    for (const id of ids(4)) expect(net.raw(id).status().conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    // 1 and 4 alone are not a majority of four...
    net.isolate(2);
    net.isolate(3);
    const commit = net.raw(1).status().commit;
    net.raw(1).propose(["b"]);
    net.settle();
    expect(net.raw(1).status().commit).toBe(commit);
    // ...1, 2 and 4 are.
    net.heal();
    net.isolate(3);
    net.tick(2, [1]);
    expect(net.raw(1).status().commit).toBe(commit + 1);
  });

  it("promoting a node that is not a learner is rejected", () => {
    const net = cluster();
    expect(() => net.raw(1).proposeConfChange({ type: "promote", node: 4 })).toThrow(ProposalDroppedError);
    expect(() => net.raw(1).proposeConfChange({ type: "promote", node: 2 })).toThrow(ProposalDroppedError);
    expect(() => net.raw(1).proposeConfChange({ type: "addLearner", node: 3 })).toThrow(ProposalDroppedError);
    expect(() => net.raw(1).proposeConfChange({ type: "remove", node: 9 })).toThrow(ProposalDroppedError);
  });

  it("the last voter cannot be removed", () => {
    const net = new Network(1);
    net.elect(1);
    expect(() => net.raw(1).proposeConfChange({ type: "remove", node: 1 })).toThrow(ProposalDroppedError);
  });

  it("a removed follower stops being replicated to and the other two commit alone", () => {
    const net = cluster();
    change(net, 1, { type: "remove", node: 3 });
    expect(net.raw(1).status().conf).toEqual({ voters: [1, 2], learners: [] });
    expect(net.raw(2).status().conf).toEqual({ voters: [1, 2], learners: [] });
    const from = net.sent.length;
    const commit = net.raw(1).status().commit;
    net.raw(1).propose(["b"]);
    net.settle();
    net.tick(3, [1]);
    expect(net.raw(1).status().commit).toBe(commit + 1);
    expect(net.count("app", (m) => m.to === 3, from) + net.count("heartbeat", (m) => m.to === 3, from)).toBe(0);
    expect(net.node(2).state).toEqual(["a", "b"]);
  });

  it("a leader that removes itself leads until the removal commits, then steps down; the rest elect a leader", () => {
    const net = cluster();
    net.raw(1).proposeConfChange({ type: "remove", node: 1 });
    expect(net.raw(1).status()).toMatchObject({ role: "leader", conf: { voters: [2, 3], learners: [] } });
    // A leader on its way out takes no new proposals.
    expect(() => net.raw(1).propose(["x"])).toThrow(ProposalDroppedError);
    net.settle();
    expect(net.raw(1).status()).toMatchObject({ role: "follower", lead: 0, term: 1 });

    const from = net.sent.length;
    net.tick(4 * ELECTION_TICK);
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    const lead = leaders[0] as NodeId;
    expect([2, 3]).toContain(lead);
    expect(net.raw(lead).status().term).toBe(2);
    expect(net.count("preVote", (m) => m.from === 1, from)).toBe(0);
    expect(net.count("preVote", (m) => m.from === lead, from)).toBeGreaterThan(0);

    net.raw(lead).propose(["b"]);
    net.settle();
    net.tick(1, [lead]);
    expect(net.node(2).state).toEqual(["a", "b"]);
    expect(net.node(3).state).toEqual(["a", "b"]);
    expect(net.node(1).state).toEqual(["a"]);
  });

  // Dissertation §4.2.2: "a server that is not part of its own latest configuration should still
  // start new elections, as it might still be needed until the Cnew entry is committed; it does not
  // count its own vote". Without that, nobody could win here: nodes 2 and 3 need node 1's vote in
  // C_old (3 of 4), but node 1's log is more up to date.
  it("a leader that removed itself and crashed before replicating the removal still campaigns while it is needed", () => {
    const net = new Network(4);
    net.elect(1);
    net.raw(1).propose(["a"]);
    net.settle();
    net.tick(1, [1]);
    // C_new = {2, 3, 4} is appended on the leader only, then the leader crashes.
    net.drop((m) => m.from === 1 && m.type === "app");
    net.raw(1).proposeConfChange({ type: "remove", node: 1 });
    net.settle();
    expect(net.node(1).storage.lastIndex()).toBe(3);
    expect(net.node(2).storage.lastIndex()).toBe(2);
    net.restart(1);
    net.heal();
    net.isolate(4); // 4 is down: {1, 2, 3} is a majority of C_old and {2, 3} one of C_new
    net.tick(50 * ELECTION_TICK, [1, 2, 3]);
    // Expected: 1 campaigns in C_new (votes of 2 and 3), commits C_new, steps down; 2 or 3 leads.
    const leaders = net.leaders().filter((id) => id !== 1);
    expect(leaders).toHaveLength(1);
    const lead = leaders[0] as NodeId;
    expect(net.raw(lead).status().conf).toEqual({ voters: [2, 3, 4], learners: [] });
    net.raw(lead).propose(["b"]);
    net.settle();
    net.tick(1, [lead]);
    expect(net.node(2).state).toEqual(["a", "b"]);
    expect(net.node(3).state).toEqual(["a", "b"]);
  });

  it("a second conf change is rejected while one is pending", () => {
    const net = cluster();
    net.add(4, new MemoryStorage(conf3));
    net.add(5, new MemoryStorage(conf3));
    net.raw(1).proposeConfChange({ type: "addLearner", node: 4 });
    expect(() => net.raw(1).proposeConfChange({ type: "addLearner", node: 5 })).toThrow(ProposalDroppedError);
    // Normal proposals are fine.
    net.raw(1).propose(["b"]);
    net.settle();
    net.tick(1, [1]);
    // Even with nothing pending, two changes in one batch are rejected, and nothing is appended.
    const two = (node: NodeId) => ({
      term: 0,
      index: 0,
      type: "conf" as const,
      data: encodeConfChange({ type: "addLearner", node }),
    });
    const last = net.raw(1).status().lastIndex;
    expect(() => net.raw(1).raft.step(message({ type: "prop", entries: [two(5), two(6)] }))).toThrow(
      "one conf change at a time",
    );
    expect(net.raw(1).status().lastIndex).toBe(last);
    // Once the first commits, the next is accepted.
    net.raw(1).proposeConfChange({ type: "addLearner", node: 5 });
    net.settle();
    net.tick(2, [1]);
    expect(net.raw(1).status().conf).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
    expect(net.node(5).state).toEqual(["a", "b"]);
  });

  it("a conf change is rejected until the new leader's no-op commits", () => {
    const net = new Network(3);
    net.drop((m) => m.type === "appResp");
    net.elect(1);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", commit: 0, lastIndex: 1 });
    expect(() => net.raw(1).proposeConfChange({ type: "addLearner", node: 4 })).toThrow(ProposalDroppedError);
    net.raw(1).propose(["a"]); // normal proposals are taken
    net.heal();
    net.tick(2, [1]);
    expect(net.raw(1).status().commit).toBe(2);
    expect(net.raw(1).proposeConfChange({ type: "addLearner", node: 4 })).toEqual({ index: 3, term: 1 });
  });

  it("a follower whose uncommitted conf entry is overwritten reverts to the previous configuration", () => {
    const conf = (node: NodeId) => ({
      index: 2,
      term: 1,
      type: "conf" as const,
      data: encodeConfChange({ type: "addLearner", node }),
    });
    const hs = { term: 2, vote: 0, commit: 1 };
    const s3 = makeStorage(conf3, [1], hs);
    s3.append([conf(4)]);
    const storages = new Map<NodeId, MemoryStorage>([
      [1, makeStorage(conf3, [1, 2], hs)],
      [2, makeStorage(conf3, [1, 2], hs)],
      [3, s3],
    ]);
    const net = new Network(3, {}, storages);
    expect(net.raw(3).status().conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    net.elect(1);
    expect(net.node(3).storage.term(2)).toBe(2);
    expect(net.raw(3).status().conf).toEqual({ voters: [1, 2, 3], learners: [] });
  });
});
