/** Linearizable reads with ReadIndex (dissertation §6.4). */
import { describe, expect, it } from "vitest";
import { message } from "../../shared/raft/index.js";
import { ReadOnly } from "../../shared/raft/read-only.js";
import { cluster, Network, persistReady, standaloneLeader } from "./helpers.js";

describe("ReadIndex", () => {
  it("on the leader: answered with the commit index once a majority acknowledged a heartbeat round", () => {
    const net = cluster();
    const from = net.sent.length;
    net.raw(1).readIndex("r1");
    net.settle();
    expect(net.node(1).readStates).toEqual([{ index: 2, context: "r1" }]);
    expect(net.count("heartbeat", (m) => m.context === "r1", from)).toBe(2);
  });

  it("on the leader: not answered before the acknowledgements arrive", () => {
    const { raw, storage } = standaloneLeader(3);
    raw.step(message({ type: "appResp", from: 2, to: 1, term: 1, index: 1 }));
    persistReady(raw, storage);
    raw.readIndex("r");
    const rd = persistReady(raw, storage);
    expect(rd.readStates).toEqual([]);
    expect(rd.messages.filter((m) => m.type === "heartbeat").map((m) => [m.to, m.context])).toEqual([
      [2, "r"],
      [3, "r"],
    ]);
    raw.step(message({ type: "heartbeatResp", from: 3, to: 1, term: 1, context: "r" }));
    expect(persistReady(raw, storage).readStates).toEqual([{ index: 1, context: "r" }]);
  });

  it("one acknowledgement of two is enough in a group of three", () => {
    const net = cluster();
    net.drop((m) => m.type === "heartbeatResp" && m.from === 3);
    net.raw(1).readIndex("r");
    net.settle();
    expect(net.node(1).readStates).toEqual([{ index: 2, context: "r" }]);
  });

  it("a leader cut off from the majority answers no read", () => {
    const net = cluster();
    net.isolate(1);
    net.raw(1).readIndex("r");
    net.tick(5, [1]);
    expect(net.raw(1).status().role).toBe("leader");
    expect(net.node(1).readStates).toEqual([]);
  });

  it("a pending read is confirmed by a later heartbeat round", () => {
    const net = cluster();
    net.drop((m) => m.type === "heartbeat");
    net.raw(1).readIndex("r");
    net.settle();
    expect(net.node(1).readStates).toEqual([]);
    net.heal();
    net.tick(1, [1]);
    expect(net.node(1).readStates).toEqual([{ index: 2, context: "r" }]);
  });

  it("reads are answered in order, each with the commit index of its request", () => {
    const net = cluster();
    net.drop((m) => m.type === "heartbeatResp");
    net.raw(1).readIndex("r1");
    net.raw(1).propose(["b"]);
    net.settle();
    net.raw(1).readIndex("r2");
    net.settle();
    expect(net.node(1).readStates).toEqual([]);
    net.heal();
    net.tick(1, [1]);
    expect(net.node(1).readStates).toEqual([
      { index: 2, context: "r1" },
      { index: 3, context: "r2" },
    ]);
  });

  it("on a follower: forwarded to the leader, and the read state arrives at the follower", () => {
    const net = cluster();
    net.raw(2).readIndex("f");
    net.settle();
    expect(net.node(2).readStates).toEqual([{ index: 2, context: "f" }]);
    expect(net.node(1).readStates).toEqual([]);
    expect(net.count("readIndex", (m) => m.from === 2 && m.to === 1)).toBe(1);
    expect(net.count("readIndexResp", (m) => m.from === 1 && m.to === 2 && m.index === 2)).toBe(1);
  });

  it("on a follower without a leader: dropped", () => {
    const net = new Network(3);
    net.raw(2).readIndex("f");
    net.settle();
    expect(net.count("readIndex")).toBe(0);
    expect(net.node(2).readStates).toEqual([]);
  });

  it("a single-node group answers at once, in the next Ready", () => {
    const net = new Network(1);
    net.elect(1);
    net.raw(1).propose(["a"]);
    net.settle();
    net.raw(1).readIndex("s");
    const rd = net.raw(1).ready();
    expect(rd.readStates).toEqual([{ index: 2, context: "s" }]);
    expect(rd.messages).toEqual([]);
    net.raw(1).advance(rd);
  });

  it("a new leader defers reads until its no-op commits, then answers with the no-op's index", () => {
    const net = cluster();
    // Node 2 takes over, but no acknowledgement of its no-op (index 3) gets through.
    net.drop((m) => m.type === "appResp" && m.to === 2);
    net.raw(1).transferLeader(2);
    net.settle();
    expect(net.raw(2).status()).toMatchObject({ role: "leader", term: 2, commit: 2, lastIndex: 3 });
    const from = net.sent.length;
    net.raw(2).readIndex("n");
    net.tick(1, [2]);
    expect(net.node(2).readStates).toEqual([]);
    expect(net.count("heartbeat", (m) => m.context === "n", from)).toBe(0);
    net.heal();
    net.tick(2, [2]);
    expect(net.raw(2).status().commit).toBe(3);
    expect(net.node(2).readStates).toEqual([{ index: 3, context: "n" }]);
  });
});

describe("ReadOnly queue", () => {
  it("an acknowledgement of a later request confirms the earlier ones", () => {
    const ro = new ReadOnly();
    ro.add("a", 5, 1);
    ro.add("b", 6, 2);
    ro.add("a", 9, 3); // duplicate context: ignored
    expect(ro.lastPendingContext()).toBe("b");
    expect([...(ro.recvAck(2, "b") ?? [])]).toEqual([2]);
    expect(ro.recvAck(2, "zz")).toBeUndefined();
    expect(ro.advance("b").map((rs) => [rs.context, rs.index, rs.from])).toEqual([
      ["a", 5, 1],
      ["b", 6, 2],
    ]);
    expect(ro.advance("b")).toEqual([]);
    expect(ro.lastPendingContext()).toBe("");
  });

  it("clear forgets everything", () => {
    const ro = new ReadOnly();
    ro.add("a", 1, 1);
    ro.clear();
    expect(ro.recvAck(1, "a")).toBeUndefined();
    expect(ro.lastPendingContext()).toBe("");
  });
});
