/** Wait-for graphs and the cross-group deadlock detector's cycle search. */
import { describe, expect, it } from "vitest";
import {
  chooseVictim,
  confirmedVictims,
  findCycles,
  type GroupWaitEdge,
  WaitForGraph,
} from "../../shared/locks/index.js";
import { Group, START } from "./helpers.js";

const edge = (waiter: string, holder: string, since = 0, group = 0, resource = "r"): GroupWaitEdge => ({
  waiter,
  holder,
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
});
