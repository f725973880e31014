/** Wait-for graphs and the cross-group deadlock detector's cycle search. */
import { describe, expect, it } from "vitest";
import {
  chooseVictim,
  confirmedVictims,
  type DeadlockVictim,
  edgeIdentity,
  findCycles,
  type GroupWaitEdge,
  WaitForGraph,
} from "../../shared/locks/index.js";
import { Rand } from "../../shared/raft/rand.js";
import { Group, START } from "./helpers.js";

const edge = (
  waiter: string,
  holder: string,
  since = 0,
  group = 0,
  resource = "r",
  holderTag = "h1",
): GroupWaitEdge => ({
  waiter,
  holder,
  holderTag,
  since,
  group,
  resource,
});

describe("WaitForGraph", () => {
  it("finds a shortest cycle through the start, listed from the start", () => {
    const g = WaitForGraph.from([edge("A", "B"), edge("B", "C"), edge("C", "A"), edge("B", "A"), edge("C", "D")]);
    expect(g.findCycleThrough("A")).toEqual(["A", "B"]);
    expect(g.findCycleThrough("C")).toEqual(["C", "A", "B"]);
    expect(g.findCycleThrough("D")).toBeUndefined();
  });

  it("finds no cycle through a start that only reaches another cycle", () => {
    const g = WaitForGraph.from([edge("S", "A"), edge("A", "B"), edge("B", "A")]);
    expect(g.findCycleThrough("S")).toBeUndefined();
    expect(g.findCycleThrough("B")).toEqual(["B", "A"]);
  });

  it("keeps each edge once", () => {
    const g = WaitForGraph.from([edge("A", "B"), edge("A", "B", 5, 1, "s"), edge("A", "C")]);
    expect(g.successors("A")).toEqual(["B", "C"]);
    expect(g.successors("B")).toEqual([]);
  });
});

describe("findCycles (cross-group detector)", () => {
  it("finds a cycle no single group sees and cancels the newest wait in it", () => {
    const g0 = new Group();
    const g1 = new Group();
    g0.acquire("r1", "A");
    g1.acquire("r2", "B");
    g1.now += 5;
    expect(g1.acquire("r2", "A", { waitMs: 10_000 }).result.type).toBe("waiting");
    g0.now += 9;
    // Locally, group 0 sees only B → A: no deadlock, B waits.
    expect(g0.acquire("r1", "B", { waitMs: 10_000 }).result.type).toBe("waiting");
    const edges = [
      ...g0.table.waitEdges().map((e) => ({ ...e, group: 0 })),
      ...g1.table.waitEdges().map((e) => ({ ...e, group: 1 })),
    ];
    expect(WaitForGraph.from(g0.table.waitEdges()).findCycleThrough("B")).toBeUndefined();
    expect(WaitForGraph.from(g1.table.waitEdges()).findCycleThrough("A")).toBeUndefined();

    const victims = findCycles(edges);
    expect(victims).toEqual([{ group: 0, resource: "r1", owner: "B", since: START + 9, cycle: ["B", "A"] }]);
    expect(findCycles([...edges].reverse())).toEqual(victims); // arrival order does not matter

    // The detector proposes the cancel to the victim's group: B's request is answered, A's stays.
    const v = victims[0] as (typeof victims)[0];
    const { result, events } = g0.cancel(v.resource, v.owner, v.cycle, v.since);
    expect(result.type).toBe("cancelled");
    expect(events).toMatchObject([{ type: "cancelled", owner: "B", cycle: ["B", "A"] }]);
    expect(g1.table.view("r2", g1.now).waiters).toEqual([{ owner: "A", mode: "exclusive" }]);
  });

  it("returns one victim per independent cycle, and none for an acyclic graph", () => {
    expect(findCycles([edge("A", "B"), edge("B", "C")])).toEqual([]);
    const victims = findCycles([
      edge("A", "B", 1),
      edge("B", "A", 2),
      edge("C", "D", 4, 1, "s"),
      edge("D", "C", 3, 1, "t"),
    ]);
    expect(victims.map((v) => [v.owner, v.cycle])).toEqual([
      ["B", ["B", "A"]],
      ["C", ["C", "D"]],
    ]);
  });

  it("cancelling a wait removes all its edges, so one victim can break overlapping cycles", () => {
    // C waits on r for both A and B; A and B each wait for C: two cycles, C's wait is the newest.
    const victims = findCycles([edge("A", "C", 1), edge("B", "C", 2), edge("C", "A", 9), edge("C", "B", 9)]);
    expect(victims).toEqual([{ group: 0, resource: "r", owner: "C", since: 9, cycle: ["C", "A"] }]);
  });

  it("an owner waiting on several resources can need more than one victim", () => {
    // A → B through two different waits; cancelling the newer one leaves the other cycle.
    const victims = findCycles([edge("A", "B", 5, 0, "x"), edge("A", "B", 6, 1, "y"), edge("B", "A", 1)]);
    expect(victims.map((v) => [v.owner, v.resource, v.group])).toEqual([
      ["A", "y", 1],
      ["A", "x", 0],
    ]);
  });

  it("breaks ties between equally new waits by the smallest waiter, group, then resource", () => {
    const cycle = ["A", "B", "C"];
    expect(chooseVictim(cycle, [edge("A", "B", 3), edge("B", "C", 3), edge("C", "A", 3)]).waiter).toBe("A");
    expect(chooseVictim(cycle, [edge("C", "A", 3), edge("B", "C", 3, 1), edge("B", "C", 3, 0, "z")])).toMatchObject({
      waiter: "B",
      group: 0,
    });
    expect(() => chooseVictim(["X", "Y"], [edge("A", "B")])).toThrow(/no edges/);
  });
});

/** A group's edges as the detector tags them. */
const scanOf = (group: number, g: Group): GroupWaitEdge[] => g.table.waitEdges().map((e) => ({ ...e, group }));

describe("confirmedVictims (the detector's decision over consecutive scans)", () => {
  it("a stale edge of one group and a live edge of another form a phantom cycle: nothing is cancelled", () => {
    const g0 = new Group();
    const g1 = new Group();
    g0.acquire("r1", "B");
    g1.acquire("r2", "A");
    g0.now += 5;
    g1.now += 5;
    expect(g0.acquire("r1", "A", { waitMs: 10_000 }).result.type).toBe("waiting"); // A → B on g0
    // Scan 1 reads group 0 first: A waits for B.
    const scan1g0 = scanOf(0, g0);
    // Then B releases r1 (A gets it) and waits for A on r2: a chain, never a cycle.
    g0.now += 5;
    g1.now += 5;
    expect(g0.release("r1", "B").events).toMatchObject([{ type: "granted", owner: "A" }]);
    expect(g1.acquire("r2", "B", { waitMs: 10_000 }).result.type).toBe("waiting"); // B → A on g1
    // ... and reads group 1 only now.
    const scan1 = [...scan1g0, ...scanOf(1, g1)];
    expect(findCycles(scan1).map((v) => v.owner)).toEqual(["B"]); // what one scan alone would cancel

    expect(confirmedVictims(undefined, scan1)).toEqual([]);
    const scan2 = [...scanOf(0, g0), ...scanOf(1, g1)];
    expect(confirmedVictims(scan1, scan2)).toEqual([]);
    expect(confirmedVictims(scan2, [...scanOf(0, g0), ...scanOf(1, g1)])).toEqual([]);
  });

  it("a real cross-group cycle is cancelled on the second scan that sees it", () => {
    const g0 = new Group();
    const g1 = new Group();
    g0.acquire("r1", "A");
    g1.acquire("r2", "B");
    g1.now += 5;
    g1.acquire("r2", "A", { waitMs: 10_000 });
    g0.now += 9;
    g0.acquire("r1", "B", { waitMs: 10_000 });
    const scan1 = [...scanOf(0, g0), ...scanOf(1, g1)];
    expect(confirmedVictims(undefined, scan1)).toEqual([]);
    const scan2 = [...scanOf(1, g1), ...scanOf(0, g0)];
    expect(confirmedVictims(scan1, scan2)).toEqual([
      { group: 0, resource: "r1", owner: "B", since: START + 9, cycle: ["B", "A"] },
    ]);
  });

  it("an edge to a holder that released and re-acquired between the scans is a new edge", () => {
    // Group 0's clock stands still (a new leader with a slower clock), so A's new wait has the
    // same `since` as its old one: only the holder's new token tells the two edges apart.
    const g0 = new Group();
    const g1 = new Group();
    g0.acquire("r1", "B");
    g1.acquire("r2", "A");
    g0.acquire("r1", "A", { waitMs: 10_000 }); // A → B (B's first holding)
    const scan1g0 = scanOf(0, g0);
    // A's wait is cancelled, B lets go and takes r1 again, A waits again: a gap in A → B.
    g0.cancel("r1", "A", ["A"]);
    g0.release("r1", "B");
    g0.acquire("r1", "B");
    g0.acquire("r1", "A", { waitMs: 10_000 });
    g1.now += 1;
    g1.acquire("r2", "B", { waitMs: 10_000 }); // B → A: began in the gap
    const scan1 = [...scan1g0, ...scanOf(1, g1)];
    const scan2 = [...scanOf(0, g0), ...scanOf(1, g1)];
    // The same edge but for the holder's tag.
    const strip = (e: GroupWaitEdge) => ({ ...e, holderTag: "" });
    expect(scan1.map(strip)).toEqual(scan2.map(strip));
    expect(scan1[0]?.holderTag).not.toBe(scan2[0]?.holderTag);
    expect(confirmedVictims(scan1, scan2)).toEqual([]);
    // Now the cycle is real, and the next scan confirms it.
    const scan3 = [...scanOf(0, g0), ...scanOf(1, g1)];
    expect(confirmedVictims(scan2, scan3).map((v) => [v.owner, v.cycle])).toEqual([["B", ["B", "A"]]]);
  });

  it("a wait that ended and began again (a new since) is a new edge", () => {
    const scan1 = [edge("A", "B", 1, 0, "x"), edge("B", "A", 2, 1, "y")];
    expect(confirmedVictims(scan1, [edge("A", "B", 3, 0, "x"), edge("B", "A", 2, 1, "y")])).toEqual([]);
    expect(confirmedVictims(scan1, [edge("A", "B", 1, 0, "x", "h2"), edge("B", "A", 2, 1, "y")])).toEqual([]);
    expect(confirmedVictims(scan1, [edge("A", "B", 1, 0, "x"), edge("B", "A", 2, 1, "y")])).toHaveLength(1);
  });
});

/**
 * Randomized, against ground truth: each edge lives over [from, to) with an identity of its own;
 * scan 1 reads each group at one moment in [0, 100), scan 2 at one in [100, 200).
 */
describe("confirmedVictims, randomized over edges that appear and disappear", () => {
  interface Life {
    edge: GroupWaitEdge;
    from: number;
    to: number;
  }
  const alive = (l: Life, t: number) => l.from <= t && t < l.to;
  const sameWait = (e: GroupWaitEdge, v: DeadlockVictim) =>
    e.group === v.group && e.resource === v.resource && e.waiter === v.owner && e.since === v.since;

  /** Whether at time t the victim's wait and every hop of its cycle existed. */
  function existedAt(lives: Life[], v: DeadlockVictim, t: number): boolean {
    const now = lives.filter((l) => alive(l, t)).map((l) => l.edge);
    const hops = v.cycle.map((w, i) => [w, v.cycle[(i + 1) % v.cycle.length]] as const);
    const [, next] = hops[0] as readonly [string, string];
    return (
      now.some((e) => sameWait(e, v) && e.holder === next) &&
      hops.every(([w, h]) => now.some((e) => e.waiter === w && e.holder === h))
    );
  }

  function world(seed: number) {
    const rand = new Rand(seed);
    const pick = <T>(xs: readonly T[]) => xs[rand.int(xs.length)] as T;
    const owners = ["A", "B", "C", "D", "E"].slice(0, 2 + rand.int(4));
    const groups = 1 + rand.int(3);
    const lives: Life[] = [];
    const ids = new Set<string>();
    const add = (life: Life) => {
      // An identity names one interval (one wait, one blocker instance), and an owner waits at
      // most once per resource at a time.
      const { edge: e } = life;
      if (e.waiter === e.holder || ids.has(edgeIdentity(e))) return;
      const overlaps = (l: Life) => l.from < life.to && life.from < l.to;
      const twoWaits = (l: Life) =>
        l.edge.group === e.group &&
        l.edge.resource === e.resource &&
        l.edge.waiter === e.waiter &&
        l.edge.since !== e.since;
      if (lives.some((l) => twoWaits(l) && overlaps(l))) return;
      ids.add(edgeIdentity(life.edge));
      lives.push(life);
    };
    const randomEdge = (waiter: string, holder: string): GroupWaitEdge => ({
      group: rand.int(groups),
      resource: pick(["r", "s", "t"]),
      waiter,
      holder,
      since: rand.int(4),
      holderTag: pick(["h1", "h2", "w0"]),
    });
    for (let i = rand.int(20); i > 0; i--) {
      const from = rand.int(200);
      add({ edge: randomEdge(pick(owners), pick(owners)), from, to: from + 1 + rand.int(60) });
    }
    if (rand.chance(1, 3)) {
      // A deadlock that lasts through both scans.
      const cycle = owners.filter(() => rand.chance(2, 3));
      cycle.forEach((w, i) => {
        add({ edge: randomEdge(w, cycle[(i + 1) % cycle.length] as string), from: 0, to: 300 });
      });
    }
    const at1 = Array.from({ length: groups }, () => rand.int(100));
    const at2 = Array.from({ length: groups }, () => 100 + rand.int(100));
    const scan = (at: number[]) => lives.filter((l) => alive(l, at[l.edge.group] as number)).map((l) => l.edge);
    const lasting = lives.filter((l) => l.from <= Math.min(...at1) && l.to > Math.max(...at2)).map((l) => l.edge);
    return { lives, scan1: scan(at1), scan2: scan(at2), lasting };
  }

  it("cancels only waits of cycles present in both scans and whole at one instant; breaks every lasting cycle", () => {
    let phantoms = 0;
    let victims = 0;
    let lastingCycles = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const { lives, scan1, scan2, lasting } = world(seed);
      const both = new Set(scan1.map(edgeIdentity));
      const chosen = confirmedVictims(scan1, scan2);
      for (const v of chosen) {
        victims++;
        // Every hop of its cycle, and its own wait, present in both scans with identical identities...
        const hops = v.cycle.map((w, i) => [w, v.cycle[(i + 1) % v.cycle.length]] as const);
        for (const [w, h] of hops) {
          expect(
            scan2.some((e) => e.waiter === w && e.holder === h && both.has(edgeIdentity(e))),
            `seed ${seed}`,
          ).toBe(true);
        }
        expect(
          scan2.some((e) => sameWait(e, v) && both.has(edgeIdentity(e))),
          `seed ${seed}`,
        ).toBe(true);
        // ... so the cycle existed as a whole between the scans.
        expect(existedAt(lives, v, 100), `seed ${seed}: ${JSON.stringify(v)}`).toBe(true);
      }
      // Cancelling the chosen waits leaves no cycle among the edges that lasted through both scans.
      if (findCycles(lasting).length > 0) lastingCycles++;
      const rest = lasting.filter((e) => !chosen.some((v) => sameWait(e, v)));
      expect(findCycles(rest), `seed ${seed}`).toEqual([]);
      // A single scan (the old rule) sometimes cancels a wait of a cycle that never existed.
      for (const v of [...findCycles(scan1), ...findCycles(scan2)]) {
        if (!Array.from({ length: 300 }, (_, t) => t).some((t) => existedAt(lives, v, t))) phantoms++;
      }
    }
    // The generator does make phantoms, real victims and lasting deadlocks.
    expect(phantoms).toBeGreaterThan(20);
    expect(victims).toBeGreaterThan(100);
    expect(lastingCycles).toBeGreaterThan(100);
  });

  it("the scans' edge order does not matter", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const { scan1, scan2 } = world(seed);
      expect(confirmedVictims([...scan1].reverse(), [...scan2].reverse())).toEqual(confirmedVictims(scan1, scan2));
    }
  });
});
