/**
 * Randomized: the LockTable against the simple reference model over thousands of random
 * commands with a clock that advances (and sometimes steps back), checking every result, every
 * event and the view of every resource after each step, plus invariants read from the table's
 * own state. Now and then the table is replaced by a copy restored from its snapshot.
 */
import { describe, expect, it } from "vitest";
import { type LockApplied, type LockCommand, LockTable } from "../../shared/locks/index.js";
import { Rand } from "../../shared/raft/rand.js";
import { type Edge, ReferenceLocks, shortestCycle } from "./reference-model.js";
import { OWNERS, RESOURCES, Workload } from "./workload.js";

const STEPS = 3000;

/** The table's state as its snapshot shows it (holders with tokens, waiters in order). */
interface Image {
  resources: [
    string,
    { holders: { owner: string; mode: string; fencingToken: number }[]; waiters: { owner: string }[] },
  ][];
}

class Checker {
  /** Per resource: the largest token granted so far, and each owner's latest token. */
  private maxToken = new Map<string, number>();
  private ownerToken = new Map<string, number>();
  counts = { granted: 0, waiting: 0, deadlock: 0, timedOut: 0, promoted: 0, cancelled: 0 };

  /**
   * A grant either reissues the owner's current token (idempotent) or exceeds every earlier one.
   * One apply can grant before its result (promotions while settling) and after it (downgrade):
   * take its grants in token order.
   */
  grants(applied: LockApplied): void {
    const grants = [applied.result, ...applied.events].flatMap((g) => (g.type === "granted" ? [g] : []));
    for (const g of grants.sort((a, b) => a.fencingToken - b.fencingToken)) {
      const key = `${g.resource}/${g.owner}`;
      const max = this.maxToken.get(g.resource) ?? 0;
      if (g.fencingToken <= max) expect(g.fencingToken, `token reissued to ${key}`).toBe(this.ownerToken.get(key));
      this.maxToken.set(g.resource, Math.max(max, g.fencingToken));
      this.ownerToken.set(key, g.fencingToken);
    }
  }

  invariants(table: LockTable): void {
    const image = JSON.parse(table.snapshot()) as Image;
    for (const [name, res] of image.resources) {
      const owners = res.holders.map((h) => h.owner);
      expect(new Set(owners).size, `${name}: an owner holds twice`).toBe(owners.length);
      if (res.holders.some((h) => h.mode === "exclusive")) expect(owners, `${name}: exclusive shared`).toHaveLength(1);
      const waiting = res.waiters.map((w) => w.owner);
      expect(new Set(waiting).size, `${name}: an owner waits twice`).toBe(waiting.length);
      expect(res.holders.length + res.waiters.length, `${name}: empty resource kept`).toBeGreaterThan(0);
    }
    // Every wait that closed a cycle was refused, so the group's own graph never has one.
    const edges = table.waitEdges();
    for (const owner of OWNERS) expect(shortestCycle(edges, owner), `cycle through ${owner}`).toBe(0);
  }

  count(applied: LockApplied): void {
    const { result, events } = applied;
    if (result.type === "granted" || result.type === "waiting" || result.type === "deadlock")
      this.counts[result.type]++;
    for (const e of events) {
      if (e.type === "granted") this.counts.promoted++;
      else this.counts[e.type]++;
    }
  }
}

/** The table's deadlock answer must list a shortest cycle of the model's graph, from the requester. */
function checkCycle(cycle: string[], owner: string, edges: Edge[], shortest: number): void {
  expect(cycle[0]).toBe(owner);
  expect(cycle).toHaveLength(shortest);
  expect(new Set(cycle).size).toBe(cycle.length);
  cycle.forEach((waiter, i) => {
    const holder = cycle[(i + 1) % cycle.length];
    expect(
      edges.some((e) => e.waiter === waiter && e.holder === holder),
      `${waiter} → ${holder}`,
    ).toBe(true);
  });
}

function compareStep(table: LockTable, model: ReferenceLocks, cmd: LockCommand, index: number, check: Checker): void {
  const actual = table.applyCommand(cmd, index);
  const expected = model.step(cmd, index);
  if (model.deadlock && actual.result.type === "deadlock") {
    checkCycle(actual.result.cycle, actual.result.owner, model.deadlock.edges, model.deadlock.shortest);
    expect({ ...actual.result, cycle: [] }).toEqual(expected.result);
    expect(actual.events).toEqual(expected.events);
  } else {
    expect(actual).toEqual(expected);
  }
  check.grants(actual);
  check.count(actual);
}

describe("LockTable against a reference model", () => {
  it.each([1, 2, 3, 4])("seed %i: same results, events, views and deadlines after every step", (seed) => {
    const rand = new Rand(seed);
    const work = new Workload(rand.fork());
    let table = new LockTable();
    const model = new ReferenceLocks();
    const check = new Checker();
    for (let index = 1; index <= STEPS; index++) {
      const cmd = work.next(model.edges());
      try {
        compareStep(table, model, cmd, index, check);
        for (const r of RESOURCES) {
          expect(table.view(r, cmd.now)).toEqual(model.view(r, cmd.now));
          expect(table.view(r, cmd.now + 50)).toEqual(model.view(r, cmd.now + 50));
        }
        expect(table.nextDeadline()).toBe(model.nextDeadline());
        expect(table.waitEdges()).toEqual(model.edges());
        expect(table.waitEdges(cmd.now + 50)).toEqual(model.edges(cmd.now + 50));
        check.invariants(table);
      } catch (err) {
        throw new Error(`seed ${seed}, step ${index}, ${JSON.stringify(cmd)}: ${(err as Error).message}`);
      }
      if (rand.chance(1, 100)) {
        const copy = new LockTable();
        copy.restore(table.snapshot());
        table = copy;
      }
    }
    // The workload must exercise every path, or the comparison proves little.
    for (const [what, n] of Object.entries(check.counts)) expect(n, what).toBeGreaterThan(10);
  });
});
