/** The cache nodes' bounded LRU map: order, capacity, what `set` evicts; then against an array model. */
import { describe, expect, it } from "vitest";
import { Lru } from "../../shared/cache/lru.js";
import { Rand } from "../../shared/raft/rand.js";

const keys = <V>(lru: Lru<V>) => [...lru.entries()].map(([k]) => k);

function filled(capacity: number, ...ks: string[]): Lru<number> {
  const lru = new Lru<number>(capacity);
  ks.forEach((k, i) => {
    lru.set(k, i);
  });
  return lru;
}

describe("Lru", () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses capacity %s", (capacity) => {
    expect(() => new Lru(capacity)).toThrow(/capacity/);
  });

  it("keeps insertion order, least recently used first", () => {
    const lru = filled(5, "a", "b", "c");
    expect(keys(lru)).toEqual(["a", "b", "c"]);
    expect(lru.size).toBe(3);
    expect(lru.capacity).toBe(5);
  });

  it("get moves a key to the back and returns its value", () => {
    const lru = filled(5, "a", "b", "c");
    expect(lru.get("a")).toBe(0);
    expect(keys(lru)).toEqual(["b", "c", "a"]);
    expect(lru.get("b")).toBe(1);
    expect(keys(lru)).toEqual(["c", "a", "b"]);
  });

  it("peek returns the value and leaves the order alone", () => {
    const lru = filled(3, "a", "b", "c");
    expect(lru.peek("a")).toBe(0);
    expect(keys(lru)).toEqual(["a", "b", "c"]);
    // Since peek did not refresh "a", it is still the one to go.
    expect(lru.set("d", 3)).toEqual([["a", 0]]);
  });

  it("get of a missing key changes nothing", () => {
    const lru = filled(2, "a", "b");
    expect(lru.get("z")).toBeUndefined();
    expect(lru.peek("z")).toBeUndefined();
    expect(keys(lru)).toEqual(["a", "b"]);
  });

  it("set within capacity evicts nothing", () => {
    const lru = new Lru<number>(2);
    expect(lru.set("a", 1)).toEqual([]);
    expect(lru.set("b", 2)).toEqual([]);
    expect(lru.size).toBe(2);
  });

  it("set past capacity evicts the least recently used, with its value", () => {
    const lru = filled(2, "a", "b");
    lru.get("a"); // now b is the oldest
    expect(lru.set("c", 9)).toEqual([["b", 1]]);
    expect(keys(lru)).toEqual(["a", "c"]);
    expect(lru.peek("b")).toBeUndefined();
    expect(lru.size).toBe(2);
  });

  it("set of a key already present (at capacity) replaces it, moves it to the back and evicts nothing", () => {
    const lru = filled(2, "a", "b");
    expect(lru.set("a", 7)).toEqual([]);
    expect(keys(lru)).toEqual(["b", "a"]);
    expect(lru.peek("a")).toBe(7);
  });

  it("capacity 1: each new key evicts the previous one, never itself", () => {
    const lru = new Lru<string>(1);
    expect(lru.set("a", "A")).toEqual([]);
    expect(lru.set("a", "A2")).toEqual([]);
    expect(lru.set("b", "B")).toEqual([["a", "A2"]]);
    expect(lru.set("c", "C")).toEqual([["b", "B"]]);
    expect(keys(lru)).toEqual(["c"]);
    expect(lru.peek("c")).toBe("C");
  });

  it("delete removes a key and says whether it was there", () => {
    const lru = filled(3, "a", "b", "c");
    expect(lru.delete("b")).toBe(true);
    expect(lru.delete("b")).toBe(false);
    expect(keys(lru)).toEqual(["a", "c"]);
    // The freed slot is used before anything is evicted.
    expect(lru.set("d", 3)).toEqual([]);
    expect(lru.set("e", 4)).toEqual([["a", 0]]);
  });

  it("falsy values are values (0, empty string, false)", () => {
    const lru = new Lru<unknown>(3);
    lru.set("zero", 0);
    lru.set("empty", "");
    lru.set("no", false);
    expect(lru.get("zero")).toBe(0);
    expect(lru.get("empty")).toBe("");
    expect(lru.get("no")).toBe(false);
    expect(keys(lru)).toEqual(["zero", "empty", "no"]);
  });
});

/** The trivially correct LRU: an array, least recently used first, scanned linearly. */
class ArrayLru<V> {
  items: [string, V][] = [];
  constructor(readonly capacity: number) {}

  private at(key: string): number {
    return this.items.findIndex(([k]) => k === key);
  }

  get(key: string): V | undefined {
    const i = this.at(key);
    if (i < 0) return undefined;
    const [item] = this.items.splice(i, 1);
    this.items.push(item as [string, V]);
    return (item as [string, V])[1];
  }

  peek(key: string): V | undefined {
    const i = this.at(key);
    return i < 0 ? undefined : (this.items[i] as [string, V])[1];
  }

  set(key: string, value: V): [string, V][] {
    const i = this.at(key);
    if (i >= 0) this.items.splice(i, 1);
    this.items.push([key, value]);
    return this.items.length > this.capacity ? this.items.splice(0, this.items.length - this.capacity) : [];
  }

  delete(key: string): boolean {
    const i = this.at(key);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }
}

describe("Lru against an array model", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])("seed %i: 4000 random ops agree", (seed) => {
    const rand = new Rand(seed);
    const capacity = rand.range(1, 8);
    const keySpace = rand.range(capacity, capacity * 3 + 2);
    const lru = new Lru<number>(capacity);
    const model = new ArrayLru<number>(capacity);
    let evictedAny = false;
    for (let step = 0; step < 4000; step++) {
      const key = `k${rand.int(keySpace)}`;
      const op = rand.int(10);
      const what = `seed ${seed} step ${step}`;
      if (op < 4) {
        const value = rand.int(1000);
        const got = lru.set(key, value);
        expect(got, what).toEqual(model.set(key, value));
        expect(
          got.map(([k]) => k),
          what,
        ).not.toContain(key);
        if (got.length > 0) evictedAny = true;
      } else if (op < 7) {
        expect(lru.get(key), what).toBe(model.get(key));
      } else if (op < 9) {
        expect(lru.peek(key), what).toBe(model.peek(key));
      } else {
        expect(lru.delete(key), what).toBe(model.delete(key));
      }
      expect([...lru.entries()], what).toEqual(model.items);
      expect(lru.size, what).toBe(model.items.length);
      expect(lru.size, what).toBeLessThanOrEqual(capacity);
    }
    expect(evictedAny).toBe(true);
  });
});
