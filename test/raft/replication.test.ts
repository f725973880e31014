/** Log replication (Raft §5.3, §5.4.2), flow control and the persistence contract. */
import { describe, expect, it } from "vitest";
import { type MemoryStorage, message, type NodeId, ProposalDroppedError, Rand } from "../../shared/raft/index.js";
import {
  datas,
  ELECTION_TICK,
  ids,
  makeStorage,
  Network,
  newRawNode,
  persistReady,
  standalone,
  standaloneLeader,
} from "./helpers.js";

const conf3 = { voters: ids(3), learners: [] };
const conf5 = { voters: ids(5), learners: [] };

/** The terms of the entries [first, last] of a storage. */
function storedTerms(s: MemoryStorage): number[] {
  return s.entries(s.firstIndex(), s.lastIndex() + 1).map((e) => e.term);
}

describe("log replication (§5.3)", () => {
  /** A leader of 3 whose followers acknowledged its no-op (so they are in replicate state). */
  function replicatingLeader() {
    const { raw, storage } = standaloneLeader(3);
    raw.step(message({ type: "appResp", from: 2, to: 1, term: 1, index: 1 }));
    raw.step(message({ type: "appResp", from: 3, to: 1, term: 1, index: 1 }));
    persistReady(raw, storage);
    return { raw, storage };
  }

  it("the leader appends a proposal to its log and sends it to every follower", () => {
    const { raw, storage } = replicatingLeader();
    expect(raw.propose(["x"])).toEqual({ index: 2, term: 1 });
    const rd = persistReady(raw, storage);
    expect(rd.entries).toEqual([{ term: 1, index: 2, type: "normal", data: "x" }]);
    const apps = rd.messages.filter((m) => m.type === "app");
    expect(apps.map((m) => [m.to, m.index, m.logTerm, datas(m.entries), m.commit])).toEqual([
      [2, 1, 1, ["x"], 1],
      [3, 1, 1, ["x"], 1],
    ]);
    expect(storage.lastIndex()).toBe(2);
    expect(rd.committedEntries).toEqual([]);
  });

  it("a probed follower that has not answered is not sent new entries", () => {
    const { raw, storage } = standaloneLeader(3);
    raw.propose(["x"]);
    const rd = persistReady(raw, storage);
    expect(rd.messages.filter((m) => m.type === "app")).toEqual([]);
  });

  it("an entry commits once a majority stored it, and the leader tells the followers", () => {
    const { raw, storage } = replicatingLeader();
    raw.propose(["x"]);
    persistReady(raw, storage);
    raw.step(message({ type: "appResp", from: 2, to: 1, term: 1, index: 2 }));
    expect(raw.status().commit).toBe(2);
    const rd = persistReady(raw, storage);
    expect(rd.committedEntries.map((e) => [e.index, e.data])).toEqual([[2, "x"]]);
    // The new commit index travels with the next append to each follower.
    const apps = rd.messages.filter((m) => m.type === "app");
    expect(apps.map((m) => [m.to, m.commit, m.entries.length])).toEqual([
      [2, 2, 0],
      [3, 2, 0],
    ]);
  });

  it("a minority acknowledgement does not commit", () => {
    const { raw } = standaloneLeader(5);
    raw.propose(["x"]);
    raw.step(message({ type: "appResp", from: 2, to: 1, term: 1, index: 2 }));
    expect(raw.status().commit).toBe(0);
    raw.step(message({ type: "appResp", from: 3, to: 1, term: 1, index: 2 }));
    expect(raw.status().commit).toBe(2);
  });

  it("followers apply the committed entries in log order", () => {
    const net = new Network(3);
    net.elect(1);
    net.raw(1).propose(["a", "b"]);
    net.settle();
    net.raw(1).propose(["c"]);
    net.settle();
    net.tick(1); // heartbeat: followers learn the last commit index
    for (const id of ids(3)) {
      expect(net.node(id).state).toEqual(["a", "b", "c"]);
      expect(net.node(id).applied.map((e) => e.index)).toEqual([1, 2, 3, 4]);
      expect(net.raw(id).status()).toMatchObject({ commit: 4, applied: 4, lastIndex: 4 });
    }
  });

  it("a follower that missed entries catches up after rejoining", () => {
    const net = new Network(3);
    net.elect(1);
    net.isolate(3);
    for (const d of ["a", "b", "c"]) {
      net.raw(1).propose([d]);
      net.settle();
    }
    expect(net.raw(1).status().commit).toBe(4);
    expect(net.node(3).state).toEqual([]);
    net.heal();
    net.tick(2, [1]);
    expect(net.node(3).state).toEqual(["a", "b", "c"]);
    expect(storedTerms(net.node(3).storage)).toEqual([1, 1, 1, 1]);
  });

  it("proposals to a follower are dropped with a hint of the leader", () => {
    const net = new Network(3);
    net.elect(1);
    let err: unknown;
    try {
      net.raw(2).propose(["x"]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as ProposalDroppedError).leader).toBe(1);
    expect(net.raw(2).status().lastIndex).toBe(1);
  });

  it("proposals without a leader are dropped", () => {
    const { raw } = standalone(1, 3);
    expect(() => raw.propose(["x"])).toThrow(ProposalDroppedError);
  });

  // Follower's log: 1@1, 2@2; commit 1.
  it.each([
    // [prev term, prev index, accepted, response index, reject hint, hint term]
    [0, 0, true, 1, 0, 0], // below commit: answered with the commit index
    [1, 1, true, 1, 0, 0],
    [2, 2, true, 2, 0, 0],
    [1, 2, false, 2, 1, 1], // mismatch at 2: hint to 1, the last entry of term ≤ 1
    [3, 3, false, 3, 2, 2], // past the end: hint to its last entry
  ])(
    "consistency check: an append after (term %i, index %i) is accepted: %s",
    (logTerm, index, ok, respIndex, hint, hintTerm) => {
      const storage = makeStorage(conf3, [1, 2], { term: 2, vote: 0, commit: 1 });
      const follower = newFollower(storage);
      follower.step(message({ type: "app", from: 2, to: 1, term: 2, logTerm, index, commit: 1 }));
      const rd = persistReady(follower, storage);
      expect(rd.messages.map((m) => [m.type, m.reject, m.index, m.rejectHint, m.logTerm])).toEqual([
        ["appResp", !ok, respIndex, ok ? 0 : hint, ok ? 0 : hintTerm],
      ]);
    },
  );

  // Follower's log: 1@1, 2@2.
  it.each([
    [2, 2, [[3, 3]], [1, 2, 3]],
    [
      1,
      1,
      [
        [2, 3],
        [3, 4],
      ],
      [1, 3, 4],
    ],
    [0, 0, [[1, 1]], [1, 2]],
    [0, 0, [[1, 3]], [3]],
  ])("a follower appending after (%i, %i) truncates only a conflicting suffix", (index, logTerm, ents, want) => {
    const storage = makeStorage(conf3, [1, 2], { term: 2, vote: 0, commit: 0 });
    const follower = newFollower(storage);
    const entries = ents.map(([i, t]) => ({
      index: i as number,
      term: t as number,
      type: "normal" as const,
      data: "",
    }));
    follower.step(message({ type: "app", from: 2, to: 1, term: 4, logTerm, index, entries }));
    const rd = persistReady(follower, storage);
    expect(rd.messages[0]).toMatchObject({ type: "appResp", reject: false, index: index + entries.length });
    expect(storedTerms(storage)).toEqual(want);
  });

  it.each([
    ["shorter", [1, 1, 1, 4, 4, 5, 5, 6, 6]],
    ["much shorter", [1, 1, 1, 4]],
    ["longer, same terms", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]],
    ["longer, newer uncommitted term", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]],
    ["divergent from index 6", [1, 1, 1, 4, 4, 4, 4]],
    ["divergent from index 4", [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]],
  ])("the leader brings a follower whose log is %s to its own log", (_, followerLog) => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const hs = { term: 7, vote: 0, commit: 0 };
    const storages = new Map<NodeId, MemoryStorage>([
      [1, makeStorage(conf3, leaderLog, hs)],
      [2, makeStorage(conf3, followerLog, hs)],
      [3, makeStorage(conf3, leaderLog, hs)],
    ]);
    const net = new Network(3, {}, storages);
    net.elect(1);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", term: 8 });
    const want = [...leaderLog, 8];
    for (const id of ids(3)) expect(storedTerms(net.node(id).storage)).toEqual(want);
    expect(net.raw(1).status().commit).toBe(11);
  });

  it("fast backtracking: a long divergent suffix of an old term is skipped in one round trip", () => {
    // Node 3 was leader of term 2 and appended 50 entries nobody else got; nodes 1 and 2 then had
    // 30 entries of term 3. Naive backtracking would probe 30 indexes one at a time.
    const common = Array<number>(10).fill(1);
    const leaderLog = [...common, ...Array<number>(30).fill(3)];
    const staleLog = [...common, ...Array<number>(50).fill(2)];
    const hs = { term: 3, vote: 0, commit: 10 };
    const storages = new Map<NodeId, MemoryStorage>([
      [1, makeStorage(conf3, leaderLog, hs)],
      [2, makeStorage(conf3, leaderLog, hs)],
      [3, makeStorage(conf3, staleLog, hs)],
    ]);
    const net = new Network(3, {}, storages);
    net.elect(1);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", term: 4 });
    expect(storedTerms(net.node(3).storage)).toEqual([...leaderLog, 4]);
    // One probe rejected (hint: index 10, the last entry of a term ≤ 2), then the right append.
    const apps = net.sent.filter((m) => m.type === "app" && m.to === 3 && m.entries.length > 0);
    expect(apps.length).toBeLessThanOrEqual(2);
    expect(net.count("appResp", (m) => m.from === 3 && m.reject)).toBe(1);
  });

  it("fast backtracking: a follower missing a long suffix is sent it from its last index", () => {
    const leaderLog = Array<number>(40).fill(1);
    const hs = { term: 1, vote: 0, commit: 5 };
    const storages = new Map<NodeId, MemoryStorage>([
      [1, makeStorage(conf3, leaderLog, hs)],
      [2, makeStorage(conf3, leaderLog, hs)],
      [3, makeStorage(conf3, leaderLog.slice(0, 5), hs)],
    ]);
    const net = new Network(3, {}, storages);
    net.elect(1);
    expect(storedTerms(net.node(3).storage)).toHaveLength(41);
    expect(net.count("appResp", (m) => m.from === 3 && m.reject)).toBe(1);
    const retry = net.sent.find((m) => m.type === "app" && m.to === 3 && m.index === 5);
    expect(retry?.entries).toHaveLength(36);
  });
});

describe("commitment (§5.4.2, Figure 8)", () => {
  it("an old-term entry on a majority is not committed by counting, only with a current-term entry", () => {
    // Figure 8 (c): S1 (term 2) replicated entry 2 to S2 only; S5 (term 3) wrote its own entry 2
    // and crashed. S1 comes back and is elected in term 4 with the votes of S2, S3, S4.
    const stores = new Map<NodeId, MemoryStorage>([
      [1, makeStorage(conf5, [1, 2], { term: 3, vote: 0, commit: 1 })],
      [2, makeStorage(conf5, [1, 2], { term: 3, vote: 0, commit: 1 })],
      [3, makeStorage(conf5, [1], { term: 3, vote: 5, commit: 1 })],
      [4, makeStorage(conf5, [1], { term: 3, vote: 5, commit: 1 })],
      [5, makeStorage(conf5, [1, 3], { term: 3, vote: 5, commit: 1 })],
    ]);
    // One entry per append, and every acknowledgement of the term-4 entry (index 3) is lost:
    // the followers' entry 2 is acknowledged, their entry 3 is not.
    const net = new Network(5, { maxEntriesPerMsg: 1 }, stores);
    const commits: number[] = [];
    net.onPersist = (n, rd) => {
      if (n.id === 1 && rd.hardState) commits.push(rd.hardState.commit);
    };
    net.drop((m) => m.type === "appResp" && !m.reject && m.index >= 3);
    net.elect(1);
    expect(net.raw(1).status()).toMatchObject({ role: "leader", term: 4, lastIndex: 3 });
    // Entry 2 of term 2 is now stored on every server, and acknowledged by S3, S4, S5...
    for (const id of ids(5)) expect(net.node(id).storage.term(2)).toBe(2);
    const match = new Map(
      net
        .raw(1)
        .status()
        .progress.map((p) => [p.id, p.match]),
    );
    expect([match.get(3), match.get(4), match.get(5)]).toEqual([2, 2, 2]);
    // ...but counting replicas does not commit it: it is not of the leader's term.
    expect(net.raw(1).status().commit).toBe(1);

    // Once the term-4 entry is acknowledged by a majority, both commit together.
    net.heal();
    net.tick(2, [1]);
    expect(net.raw(1).status().commit).toBe(3);
    expect(commits).not.toContain(2);
    expect(net.node(1).applied.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 4],
    ]);
    for (const id of ids(5)) {
      expect(net.raw(id).status().commit).toBe(3);
      expect(storedTerms(net.node(id).storage)).toEqual([1, 2, 4]);
    }
  });

  it("a leader commits the entries of earlier terms by committing its no-op", () => {
    const hs = { term: 2, vote: 0, commit: 0 };
    const storages = new Map<NodeId, MemoryStorage>(ids(3).map((id) => [id, makeStorage(conf3, [1, 2, 2], hs)]));
    const net = new Network(3, {}, storages);
    net.elect(2);
    expect(net.raw(2).status()).toMatchObject({ role: "leader", term: 3, commit: 4 });
    expect(net.node(2).applied.map((e) => e.term)).toEqual([1, 2, 2, 3]);
  });
});

describe("flow control", () => {
  it("with maxInflight 2 the leader stops sending to a follower that does not ack, until a heartbeat response", () => {
    const net = new Network(3, { maxInflight: 2 });
    net.elect(1);
    net.drop((m) => m.type === "appResp" && m.from === 2);
    const from = net.sent.length;
    for (const d of ["a", "b", "c", "d", "e"]) {
      net.raw(1).propose([d]);
      net.settle();
    }
    const appsTo = (id: NodeId, since = from) =>
      net.sent.slice(since).filter((m) => m.type === "app" && m.to === id && m.entries.length > 0);
    expect(appsTo(2).map((m) => datas(m.entries))).toEqual([["a"], ["b"]]);
    expect(appsTo(3)).toHaveLength(5);
    // Node 3's acks commit everything meanwhile.
    expect(net.raw(1).status().commit).toBe(6);

    // A heartbeat response frees one slot: the rest goes out in one append.
    const beat = net.sent.length;
    net.tick(1, [1]);
    expect(appsTo(2, beat).map((m) => datas(m.entries))).toEqual([["c", "d", "e"]]);

    // With acks flowing again, the follower is fully acknowledged.
    net.heal();
    net.tick(2, [1]);
    const pr2 = net
      .raw(1)
      .status()
      .progress.find((p) => p.id === 2);
    expect(pr2).toMatchObject({ match: 6, next: 7, state: "replicate" });
    expect(net.node(2).state).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("a probed follower gets one append per heartbeat until it answers", () => {
    const net = new Network(3);
    net.isolate(3);
    net.elect(1);
    const from = net.sent.length;
    for (const d of ["a", "b", "c"]) {
      net.raw(1).propose([d]);
      net.settle();
    }
    // Node 3 never answered the first probe: no further appends without a heartbeat response.
    expect(net.count("app", (m) => m.to === 3, from)).toBe(0);
    expect(
      net
        .raw(1)
        .status()
        .progress.find((p) => p.id === 3),
    ).toMatchObject({ state: "probe", match: 0 });
  });

  it("maxEntriesPerMsg bounds the entries per append", () => {
    const net = new Network(3, { maxEntriesPerMsg: 2 });
    net.elect(1);
    net.isolate(3);
    for (const d of ["a", "b", "c", "d", "e"]) {
      net.raw(1).propose([d]);
      net.settle();
    }
    net.heal();
    const from = net.sent.length;
    net.tick(3, [1]);
    const sizes = net.sent
      .slice(from)
      .filter((m) => m.type === "app" && m.to === 3)
      .map((m) => m.entries.length);
    expect(Math.max(...sizes)).toBe(2);
    expect(net.node(3).state).toEqual(["a", "b", "c", "d", "e"]);
  });
});

describe("persistence contract", () => {
  it("an append acknowledgement leaves in the same Ready as the entries it acknowledges", () => {
    const storage = makeStorage(conf3, [], { term: 1, vote: 0, commit: 0 });
    const follower = newFollower(storage);
    const entries = [1, 2].map((i) => ({ index: i, term: 1, type: "normal" as const, data: `e${i}` }));
    follower.step(message({ type: "app", from: 2, to: 1, term: 1, index: 0, logTerm: 0, entries, commit: 0 }));
    const rd = follower.ready();
    expect(rd.entries).toEqual(entries);
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toHaveLength(1);
    expect(rd.messages[0]).toMatchObject({ type: "appResp", index: 2, reject: false });
  });

  it("across a chaotic run, every grant and ack was durable before it was sent, and logs agree", () => {
    const net = new Network(5);
    const rand = new Rand(2024);
    let grants = 0;
    let acks = 0;
    const violations: string[] = [];
    net.onPersist = (n, rd) => {
      for (const m of rd.messages) {
        if (m.type === "voteResp" && !m.reject) {
          grants++;
          const hs = n.storage.hardState;
          if (hs.term !== m.term || hs.vote !== m.to)
            violations.push(`${n.id} granted ${m.to}@${m.term}: ${hs.term}/${hs.vote}`);
        }
        if (m.type === "appResp" && !m.reject && m.index > 0) {
          acks++;
          const inMemory = n.raw.raft.log.term(m.index);
          let onDisk: number | undefined;
          try {
            onDisk = n.storage.term(m.index);
          } catch {
            onDisk = undefined;
          }
          if (onDisk !== inMemory) violations.push(`${n.id} acked ${m.index}: disk ${onDisk} vs log ${inMemory}`);
        }
      }
    };
    net.drop(() => rand.chance(1, 10));
    for (let step = 0; step < 400; step++) {
      const action = rand.int(10);
      const id = 1 + rand.int(5);
      if (action < 5) net.tick(1);
      else if (action < 7) {
        const lead = net.leaders()[0];
        if (lead !== undefined) net.raw(lead).propose([`p${step}`]);
        net.settle();
      } else if (action === 7) net.isolate(id);
      else if (action === 8) net.restart(id, 1000 + step);
      else {
        // heal keeps the random loss
        net.heal();
        net.drop(() => rand.chance(1, 10));
      }
    }
    net.heal();
    net.tick(5 * ELECTION_TICK);
    expect(violations).toEqual([]);
    expect(grants).toBeGreaterThan(5);
    expect(acks).toBeGreaterThan(50);
    // State machine safety: every replica applied the same sequence.
    const lead = net.leaders()[0] as NodeId;
    expect(lead).toBeDefined();
    const want = net.node(lead).state;
    expect(want.length).toBeGreaterThan(10);
    for (const id of ids(5)) expect(net.node(id).state).toEqual(want);
  });

  it("a restarted node keeps its term, vote and log, and catches up", () => {
    const net = new Network(3);
    net.elect(1);
    net.raw(1).propose(["a", "b"]);
    net.settle();
    net.tick(1);
    const before = net.raw(2).status();
    expect(before).toMatchObject({ term: 1, vote: 1, lastIndex: 3, commit: 3 });
    net.restart(2);
    expect(net.raw(2).status()).toMatchObject({
      term: 1,
      vote: 1,
      lastIndex: 3,
      commit: 3,
      applied: 0,
      role: "follower",
    });
    net.settle();
    // Committed entries are handed out again to rebuild the (volatile) state machine.
    expect(net.node(2).state).toEqual(["a", "b"]);
    net.raw(1).propose(["c"]);
    net.settle();
    net.tick(1);
    expect(net.node(2).state).toEqual(["a", "b", "c"]);
  });

  it("a restarted leader comes back as a follower of its term and the cluster continues", () => {
    const net = new Network(3);
    net.elect(1);
    net.raw(1).propose(["a"]);
    net.settle();
    net.restart(1);
    expect(net.raw(1).status()).toMatchObject({ role: "follower", term: 1, vote: 1, lastIndex: 2 });
    net.tick(4 * ELECTION_TICK);
    const lead = net.leaders()[0] as NodeId;
    expect(net.raw(lead).status().term).toBeGreaterThanOrEqual(2);
    net.raw(lead).propose(["b"]);
    net.settle();
    net.tick(1);
    for (const id of ids(3)) expect(net.node(id).state).toEqual(["a", "b"]);
  });
});

/** Node 1 of a 3-voter group on `storage`, as a follower. */
function newFollower(storage: MemoryStorage) {
  return newRawNode(1, storage);
}
