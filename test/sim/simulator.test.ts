import { describe, expect, it } from "vitest";
import type { Bug } from "./node.js";
import { simulate } from "./simulator.js";

describe("simulator", () => {
  it("replays a seed identically: same seed, same trace", () => {
    const a = simulate({ seed: 7, steps: 1500, trace: true });
    const b = simulate({ seed: 7, steps: 1500, trace: true });
    expect(a.trace.length).toBeGreaterThan(100);
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
  });

  it("different seeds give different runs", () => {
    const a = simulate({ seed: 1, steps: 800, trace: true });
    const b = simulate({ seed: 2, steps: 800, trace: true });
    expect(b.trace).not.toEqual(a.trace);
  });

  it("a healthy run elects leaders, commits, records operations and finds nothing wrong", () => {
    const res = simulate({ seed: 3, nodes: 5, steps: 3000 });
    expect(res.violations).toEqual([]);
    expect(res.stats.leaders).toBeGreaterThanOrEqual(1);
    expect(res.stats.committed).toBeGreaterThan(10);
    expect(res.stats.ops).toBeGreaterThan(10);
  });

  // The checkers must bite: with a known bug planted in the Raft core, the simulator reports it.
  it("finds votes granted without the log up-to-date check (Raft §5.4.1)", () => {
    const found = firstViolation("voteWithoutLogCheck", 1, 100);
    expect(found?.violations.join("\n")).toMatch(/leader completeness|state machine safety|linearizability/);
  });

  it("finds a host that sends acks and votes before persisting them (lost on a crash)", () => {
    const found = firstViolation("sendBeforePersist", 1, 100);
    expect(found?.violations.join("\n")).toMatch(/durability|invariant|state machine safety|election safety/);
  });
});

function firstViolation(bug: Bug, from: number, seeds: number) {
  for (let seed = from; seed < from + seeds; seed++) {
    const res = simulate({ seed, bug, steps: 3000 });
    if (res.violations.length > 0) return res;
  }
  return undefined;
}
