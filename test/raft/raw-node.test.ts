/** The RawNode surface: the Ready/advance cycle and the host's reports. */
import { describe, expect, it } from "vitest";
import { message } from "../../shared/raft/index.js";
import { ids, makeStorage, Network, newRawNode, persistReady, standaloneLeader } from "./helpers.js";

const conf3 = { voters: ids(3), learners: [] };

describe("RawNode", () => {
  it("has nothing ready once a Ready is advanced and nothing happened", () => {
    const { raw, storage } = standaloneLeader(3);
    expect(raw.hasReady()).toBe(false);
    raw.tick(); // heartbeat
    expect(raw.hasReady()).toBe(true);
    const rd = persistReady(raw, storage);
    expect(rd.messages.map((m) => m.type)).toEqual(["heartbeat", "heartbeat"]);
    expect(rd.hardState).toBeUndefined();
    expect(rd.mustSync).toBe(false);
    expect(raw.hasReady()).toBe(false);
  });

  it("reports the soft state only when it changes", () => {
    const storage = makeStorage(conf3);
    const raw = newRawNode(1, storage);
    raw.campaign();
    expect(persistReady(raw, storage).softState).toEqual({ lead: 0, role: "preCandidate" });
    raw.step(message({ type: "preVoteResp", from: 2, to: 1, term: 1 }));
    expect(persistReady(raw, storage).softState).toEqual({ lead: 0, role: "candidate" });
    raw.step(message({ type: "voteResp", from: 2, to: 1, term: 1 }));
    expect(persistReady(raw, storage).softState).toEqual({ lead: 1, role: "leader" });
    raw.tick();
    expect(persistReady(raw, storage).softState).toBeUndefined();
  });

  it("hands out at most maxCommittedPerReady committed entries per Ready", () => {
    const storage = makeStorage(conf3, [1, 1, 1, 1, 1], { term: 1, vote: 0, commit: 5 });
    const raw = newRawNode(1, storage, { maxCommittedPerReady: 2 });
    const batches: number[][] = [];
    while (raw.hasReady()) batches.push(persistReady(raw, storage).committedEntries.map((e) => e.index));
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(raw.status().applied).toBe(5);
  });

  it("a restart with the host's applied index does not hand out applied entries again", () => {
    const storage = makeStorage(conf3, [1, 1, 1, 1], { term: 1, vote: 0, commit: 4 });
    const raw = newRawNode(1, storage, { applied: 3 });
    expect(persistReady(raw, storage).committedEntries.map((e) => e.index)).toEqual([4]);
  });

  it("rejects a configuration where the heartbeat is not shorter than the election timeout", () => {
    expect(() => newRawNode(1, makeStorage(conf3), { electionTick: 2, heartbeatTick: 2 })).toThrow(/heartbeatTick/);
    expect(() => newRawNode(1, makeStorage(conf3), { heartbeatTick: 0 })).toThrow(/heartbeatTick/);
  });

  it("reportUnreachable stops optimistic streaming to that follower", () => {
    const net = new Network(3);
    net.elect(1);
    const pr = () =>
      net
        .raw(1)
        .status()
        .progress.find((p) => p.id === 2);
    expect(pr()).toMatchObject({ state: "replicate", match: 1 });
    net.raw(1).reportUnreachable(2);
    expect(pr()).toMatchObject({ state: "probe", next: 2 });
  });

  it("reportSnapshot: success resumes after the snapshot, failure after match", () => {
    for (const failed of [false, true]) {
      const net = new Network(3);
      net.elect(1);
      net.isolate(3);
      for (const d of ["a", "b", "c"]) {
        net.raw(1).propose([d]);
        net.settle();
      }
      const leader = net.node(1);
      leader.storage.createSnapshot(leader.raw.status().applied, "[]");
      net.heal();
      net.drop((m) => m.type === "snap");
      net.tick(1, [1]);
      const pr = () =>
        net
          .raw(1)
          .status()
          .progress.find((p) => p.id === 3);
      expect(pr()).toMatchObject({ state: "snapshot", match: 1 });
      net.raw(1).reportSnapshot(3, failed);
      expect(pr()).toMatchObject({ state: "probe", next: failed ? 2 : 5 });
    }
  });
});
