/** Majority arithmetic for commit, elections and liveness checks. */
import { describe, expect, it } from "vitest";
import { committedIndex, isMajority, voteResult } from "../../shared/raft/quorum.js";

describe("committedIndex", () => {
  it.each([
    [[], {}, 0],
    [[1], { 1: 5 }, 5],
    [[1, 2], { 1: 5, 2: 3 }, 3],
    [[1, 2, 3], { 1: 5, 2: 3, 3: 1 }, 3],
    [[1, 2, 3], { 1: 5, 2: 5, 3: 0 }, 5],
    [[1, 2, 3, 4], { 1: 5, 2: 4, 3: 3, 4: 2 }, 3],
    [[1, 2, 3, 4, 5], { 1: 9, 2: 1, 3: 7, 4: 2, 5: 8 }, 7],
    [[1, 2, 3], { 1: 5 }, 0], // unknown voters count as 0
  ] as const)("voters %j with matches %j → %i", (voters, matches, want) => {
    const m = matches as Record<number, number>;
    expect(committedIndex(voters, (id) => m[id] ?? 0)).toBe(want);
  });
});

describe("voteResult", () => {
  const votes = (v: Record<number, boolean>) => new Map(Object.entries(v).map(([k, b]) => [Number(k), b]));
  it.each([
    [[], {}, "won"],
    [[1], {}, "pending"],
    [[1], { 1: true }, "won"],
    [[1], { 1: false }, "lost"],
    [[1, 2, 3], { 1: true }, "pending"],
    [[1, 2, 3], { 1: true, 2: true }, "won"],
    [[1, 2, 3], { 1: true, 2: false }, "pending"],
    [[1, 2, 3], { 1: true, 2: false, 3: false }, "lost"],
    [[1, 2, 3, 4], { 1: true, 2: true }, "pending"],
    [[1, 2, 3, 4], { 1: true, 2: true, 3: false, 4: false }, "lost"],
    [[1, 2, 3, 4], { 1: true, 2: true, 3: true }, "won"],
    [[1, 2, 3], { 1: true, 7: true, 8: true }, "pending"], // non-voters do not count
  ] as const)("voters %j, votes %j → %s", (voters, v, want) => {
    expect(voteResult(voters, votes(v))).toBe(want);
  });
});

describe("isMajority", () => {
  it.each([
    [[1, 2, 3], [1, 2], true],
    [[1, 2, 3], [1], false],
    [[1, 2, 3], [1, 4, 5], false],
    [[1, 2, 3, 4], [1, 2], false],
    [[1, 2, 3, 4], [1, 2, 3], true],
    [[1], [1], true],
  ] as const)("voters %j, ids %j → %s", (voters, ids, want) => {
    expect(isMajority(voters, new Set(ids))).toBe(want);
  });
});
