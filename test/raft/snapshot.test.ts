/** Log compaction and InstallSnapshot (Raft §7). */
import { describe, expect, it } from "vitest";
import { MemoryStorage, message, type NodeId, type Snapshot } from "../../shared/raft/index.js";
import { ids, makeStorage, Network, newRawNode, persistReady, stateImage } from "./helpers.js";

const conf3 = { voters: ids(3), learners: [] };

/** Leader 1 commits a..j while 3 is cut off, then snapshots its state machine and compacts its log. */
function laggingFollower() {
  const net = new Network(3);
  net.elect(1);
  net.isolate(3);
  const data = "abcdefghij".split("");
  for (const d of data) {
    net.raw(1).propose([d]);
    net.settle();
  }
  net.tick(1, [1, 2]);
  const leader = net.node(1);
  const applied = leader.raw.status().applied;
  expect(applied).toBe(11);
  const snap = leader.storage.createSnapshot(applied, stateImage(leader.state));
  return { net, snap, data };
}

describe("snapshots", () => {
  it("the leader's storage drops the compacted entries", () => {
    const { net, snap } = laggingFollower();
    const s = net.node(1).storage;
    expect(snap.metadata).toEqual({ index: 11, term: 1, conf: conf3 });
    expect(s.firstIndex()).toBe(12);
    expect(s.lastIndex()).toBe(11);
    expect(s.term(11)).toBe(1);
  });

  it("a lagging follower receives the snapshot, installs it and catches up", () => {
    const { net, snap, data } = laggingFollower();
    const installed: Snapshot[] = [];
    net.onPersist = (n, rd) => {
      if (n.id === 3 && rd.snapshot) installed.push(rd.snapshot);
    };
    net.heal();
    net.tick(3, [1]);
    expect(net.count("snap", (m) => m.from === 1 && m.to === 3)).toBe(1);
    expect(installed).toEqual([snap]);
    const f = net.node(3);
    expect(f.state).toEqual(data);
    expect(f.storage.snapshot().metadata.index).toBe(11);
    expect(f.storage.firstIndex()).toBe(12);
    expect(f.raw.status()).toMatchObject({ commit: 11, applied: 11, lastIndex: 11 });
    // It replicates normally afterwards.
    net.raw(1).propose(["k"]);
    net.settle();
    net.tick(1, [1]);
    expect(f.state).toEqual([...data, "k"]);
    expect(f.raw.status()).toMatchObject({ commit: 12, lastIndex: 12 });
    expect(
      net
        .raw(1)
        .status()
        .progress.find((p) => p.id === 3),
    ).toMatchObject({ match: 12, state: "replicate" });
  });

  it("entries proposed after the snapshot reach the follower right after it", () => {
    const { net, data } = laggingFollower();
    net.raw(1).propose(["k", "l"]);
    net.settle();
    net.heal();
    net.tick(3, [1]);
    expect(net.node(3).state).toEqual([...data, "k", "l"]);
    expect(net.node(3).storage.lastIndex()).toBe(13);
  });

  it("a follower restarted from an installed snapshot starts at it", () => {
    const { net } = laggingFollower();
    net.heal();
    net.tick(3, [1]);
    const n = net.restart(3);
    expect(n.raw.status()).toMatchObject({ term: 1, commit: 11, applied: 11, lastIndex: 11, conf: conf3 });
  });

  it("a learner added after compaction is sent a snapshot carrying the configuration", () => {
    const { net, data } = laggingFollower();
    net.heal();
    net.tick(3, [1]);
    net.add(4, new MemoryStorage(conf3));
    net.raw(1).proposeConfChange({ type: "addLearner", node: 4 });
    net.settle();
    net.tick(3, [1]);
    expect(net.count("snap", (m) => m.to === 4)).toBe(1);
    expect(net.node(4).state).toEqual(data);
    expect(net.raw(4).status().conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(net.node(4).storage.lastIndex()).toBe(12);
  });

  it("the snapshot's configuration includes the conf changes up to its index", () => {
    const net = new Network(3);
    net.elect(1);
    net.add(4, new MemoryStorage(conf3));
    net.raw(1).proposeConfChange({ type: "addLearner", node: 4 });
    net.settle();
    net.tick(1, [1]);
    const leader = net.node(1);
    const snap = leader.storage.createSnapshot(leader.raw.status().applied, stateImage(leader.state));
    expect(snap.metadata).toMatchObject({ index: 2, conf: { voters: [1, 2, 3], learners: [4] } });
  });

  it("a follower that already has the snapshot's last entry only moves its commit index", () => {
    const storage = makeStorage(conf3, [1, 1, 1], { term: 1, vote: 0, commit: 0 });
    const raw = newRawNode(1, storage);
    const snap: Snapshot = { metadata: { index: 2, term: 1, conf: conf3 }, data: "x" };
    raw.step(message({ type: "snap", from: 2, to: 1, term: 1, snapshot: snap }));
    const rd = persistReady(raw, storage);
    expect(rd.snapshot).toBeUndefined();
    expect(raw.status()).toMatchObject({ commit: 2, lastIndex: 3 });
    expect(rd.messages.map((m) => [m.type, m.index])).toEqual([["appResp", 2]]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
  });

  it("a snapshot older than the commit index is ignored", () => {
    const storage = makeStorage(conf3, [1, 1, 1], { term: 1, vote: 0, commit: 3 });
    const raw = newRawNode(1, storage);
    const snap: Snapshot = { metadata: { index: 2, term: 1, conf: conf3 }, data: "x" };
    raw.step(message({ type: "snap", from: 2, to: 1, term: 1, snapshot: snap }));
    const rd = persistReady(raw, storage);
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages.map((m) => [m.type, m.index])).toEqual([["appResp", 3]]);
    expect(storage.firstIndex()).toBe(1);
  });

  it("a snapshot that conflicts with the follower's log replaces it", () => {
    const storage = makeStorage(conf3, [1, 1, 2, 2], { term: 3, vote: 0, commit: 1 });
    const raw = newRawNode(1, storage);
    const conf: { voters: NodeId[]; learners: NodeId[] } = { voters: [1, 2, 3], learners: [] };
    const snap: Snapshot = { metadata: { index: 5, term: 3, conf }, data: "img" };
    raw.step(message({ type: "snap", from: 2, to: 1, term: 3, snapshot: snap }));
    const rd = persistReady(raw, storage);
    expect(rd.snapshot).toEqual(snap);
    expect(rd.hardState).toMatchObject({ commit: 5 });
    expect(rd.messages.map((m) => [m.type, m.index, m.reject])).toEqual([["appResp", 5, false]]);
    expect(raw.status()).toMatchObject({ commit: 5, applied: 5, lastIndex: 5 });
    expect(storage.firstIndex()).toBe(6);
    expect(storage.term(5)).toBe(3);
  });
});
