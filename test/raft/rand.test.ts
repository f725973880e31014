/** The seeded PRNG: the same seed replays identically. */
import { describe, expect, it } from "vitest";
import { Rand } from "../../shared/raft/index.js";

const take = (r: Rand, n: number) => Array.from({ length: n }, () => r.uint32());

describe("Rand", () => {
  it("the same seed gives the same sequence", () => {
    expect(take(new Rand(42), 50)).toEqual(take(new Rand(42), 50));
  });

  it("nearby seeds give different sequences", () => {
    const a = take(new Rand(1), 10);
    const b = take(new Rand(2), 10);
    expect(a.filter((x, i) => x === b[i])).toEqual([]);
  });

  it("uint32 stays in [0, 2^32)", () => {
    const r = new Rand(7);
    for (const x of take(r, 1000)) {
      expect(Number.isInteger(x)).toBe(true);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(2 ** 32);
    }
  });

  it.each([1, 2, 3, 10, 1000, 2 ** 31 + 1])("int(%i) stays in [0, n) and reaches both ends for small n", (n) => {
    const r = new Rand(n);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const x = r.int(n);
      expect(Number.isInteger(x)).toBe(true);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(n);
      seen.add(x);
    }
    if (n <= 10) expect(seen.size).toBe(n);
  });

  it("int is roughly uniform", () => {
    const r = new Rand(3);
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 10000; i++) {
      const k = r.int(5);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBe(10000);
    for (const c of counts) expect(c).toBeGreaterThan(1700);
  });

  it("range is inclusive; chance respects its extremes", () => {
    const r = new Rand(9);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(r.range(3, 6));
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
    for (let i = 0; i < 100; i++) {
      expect(r.chance(0, 5)).toBe(false);
      expect(r.chance(5, 5)).toBe(true);
    }
  });

  it("pick and shuffle are deterministic and keep the elements", () => {
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    const a = new Rand(5).shuffle([...items]);
    const b = new Rand(5).shuffle([...items]);
    expect(a).toEqual(b);
    expect([...a].sort()).toEqual(items);
    expect(a).not.toEqual(items);
    const r = new Rand(5);
    for (let i = 0; i < 50; i++) expect(items).toContain(r.pick(items));
    expect(() => r.pick([])).toThrow();
  });

  it("fork derives an independent, reproducible generator", () => {
    const p1 = new Rand(11);
    const p2 = new Rand(11);
    const f1 = p1.fork();
    const f2 = p2.fork();
    expect(take(f1, 20)).toEqual(take(f2, 20));
    // The parent moved on identically, and the child differs from it.
    expect(take(p1, 5)).toEqual(take(p2, 5));
    expect(take(new Rand(11).fork(), 5)).not.toEqual(take(new Rand(11), 5));
  });
});
