import { describe, expect, it } from "vitest";
import { fmix32, fnv1a32, hash32 } from "../../shared/hashing/hash.js";
import { HashRing } from "../../shared/hashing/ring.js";

const groups = (n: number): string[] => Array.from({ length: n }, (_, i) => `g${i}`);

// 20,000 keys shaped like the real ones: lock resources, queue shards and cache keys.
const KEYS: string[] = Array.from({ length: 20_000 }, (_, i) => {
  switch (i % 3) {
    case 0:
      return `lock:resource-${i}`;
    case 1:
      return `queue-${i % 97}/${i}`;
    default:
      return `cache:user:${i}`;
  }
});

function assignments(ring: HashRing, keys: readonly string[]): string[] {
  return keys.map((k) => ring.lookup(k));
}

/** FNV-1a over TextEncoder's bytes: the reference for the hand-written UTF-8 encoding. */
function fnv1aViaTextEncoder(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v !== 0; v >>>= 1) n += v & 1;
  return n;
}

describe("hash32", () => {
  it("FNV-1a matches the published 32-bit test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("fmix32 matches murmur3_32 of the empty input (whose result is fmix32(seed))", () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
    expect(fmix32(0xffffffff)).toBe(0x81f16f39);
  });

  it("pins known outputs", () => {
    expect(hash32("")).toBe(0xab3e7c0b);
    expect(hash32("a")).toBe(0x1a80b1b3);
    expect(hash32("foobar")).toBe(0x0c0da6dc);
    expect(hash32("g0#0")).toBe(0xa7fc24c5);
    expect(hash32("jobs/0")).toBe(0xd78ad3c1);
    expect(hash32("lock:orders/42")).toBe(0x1028482f);
    expect(hash32("héllo")).toBe(0xfa3f8bad);
    expect(hash32("日本語")).toBe(0xea653092);
    expect(hash32("😀")).toBe(0x3303a80a);
    expect(hash32("a\ud800b")).toBe(0xe26229c4);
  });

  it("encodes UTF-8 exactly as TextEncoder does, lone surrogates included", () => {
    const samples = [
      "",
      "plain ascii",
      "\u007f\u0080\u07ff\u0800\uffff",
      "héllo wörld",
      "日本語のキー",
      "😀 emoji 👍🏽",
      "\ud800",
      "\udfff",
      "a\ud800b",
      "a\udc00\ud800",
      "\udbff\udfff",
    ];
    for (const s of samples) expect(fnv1a32(s), JSON.stringify(s)).toBe(fnv1aViaTextEncoder(s));
  });

  it("returns unsigned 32-bit integers", () => {
    for (const k of KEYS.slice(0, 1000)) {
      const h = hash32(k);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });

  it("spreads sequential keys evenly over both the high and the low bits", () => {
    const n = 100_000;
    const high = new Array<number>(64).fill(0);
    const low = new Array<number>(64).fill(0);
    for (let i = 0; i < n; i++) {
      const h = hash32(`key-${i}`);
      high[h >>> 26] = (high[h >>> 26] ?? 0) + 1;
      low[h & 63] = (low[h & 63] ?? 0) + 1;
    }
    const mean = n / 64;
    // Measured max deviation: about 6% in both; binomial sd is 2.5%.
    for (const c of [...high, ...low]) expect(Math.abs(c / mean - 1)).toBeLessThan(0.12);
  });

  it("avalanches: flipping one input bit flips about half of the output bits", () => {
    let flipped = 0;
    let trials = 0;
    for (let i = 0; i < 2000; i++) {
      const s = `key-${i}`;
      const h = hash32(s);
      const last = s.charCodeAt(s.length - 1);
      for (let b = 0; b < 7; b++) {
        const t = s.slice(0, -1) + String.fromCharCode(last ^ (1 << b));
        flipped += popcount(h ^ hash32(t));
        trials++;
      }
    }
    const avg = flipped / trials; // measured ≈ 16.0
    expect(avg).toBeGreaterThan(15.5);
    expect(avg).toBeLessThan(16.5);
  });
});

describe("HashRing", () => {
  it("is deterministic and stable across instances and member orders", () => {
    const a = new HashRing(groups(5));
    const b = new HashRing([...groups(5)].reverse());
    const c = new HashRing(["g3", "g0", "g4", "g1", "g2"]);
    const expected = assignments(a, KEYS);
    expect(assignments(a, KEYS)).toEqual(expected);
    expect(assignments(b, KEYS)).toEqual(expected);
    expect(assignments(c, KEYS)).toEqual(expected);
  });

  it("pins placements (a change here moves data between Raft groups)", () => {
    const ring = new HashRing(groups(5));
    expect(ring.lookup("lock:orders/42")).toBe("g0");
    expect(ring.lookup("jobs/0")).toBe("g3");
    expect(ring.lookup("jobs/1")).toBe("g3");
    expect(ring.lookup("jobs/2")).toBe("g2");
    expect(ring.lookup("cache:user:7")).toBe("g0");
    expect(ring.lookup("")).toBe("g2");
    expect(ring.lookup("ключ")).toBe("g3");
  });

  it("gives every member some keys", () => {
    for (const n of [1, 2, 3, 5, 8, 16, 32]) {
      const spread = new HashRing(groups(n)).spread(KEYS);
      expect([...spread.keys()]).toEqual(new HashRing(groups(n)).members());
      for (const [member, count] of spread) expect(count, `${member} of ${n}`).toBeGreaterThan(0);
    }
  });

  it("balances 20,000 keys within ±25% of the mean for 3, 5 and 8 members", () => {
    // Measured max deviation from the mean: 6.1% (3 members), 10.7% (5), 12.9% (8).
    for (const n of [3, 5, 8]) {
      const spread = new HashRing(groups(n)).spread(KEYS);
      const mean = KEYS.length / n;
      let total = 0;
      for (const [member, count] of spread) {
        total += count;
        expect(Math.abs(count / mean - 1), `${member} of ${n}: ${count}`).toBeLessThan(0.25);
      }
      expect(total).toBe(KEYS.length);
    }
  });

  it("moves about 1/(n+1) of the keys when a member is added, all of them to the new member", () => {
    // Measured moved fraction × (n+1): 1.05 (3 → 4), 1.02 (5 → 6), 1.12 (8 → 9).
    for (const n of [3, 5, 8]) {
      const before = new HashRing(groups(n));
      const added = `g${n}`;
      const after = before.with(added);
      let moved = 0;
      const misplaced: string[] = [];
      for (const key of KEYS) {
        const to = after.lookup(key);
        if (before.lookup(key) === to) continue;
        moved++;
        if (to !== added) misplaced.push(key);
      }
      expect(misplaced).toEqual([]);
      const fraction = moved / KEYS.length;
      expect(fraction).toBeGreaterThan(0.5 / (n + 1));
      expect(fraction).toBeLessThan(1.6 / (n + 1));
    }
  });

  it("moves only the removed member's keys when a member is removed", () => {
    for (const n of [3, 5, 8]) {
      const before = new HashRing(groups(n));
      const owners = assignments(before, KEYS);
      for (const removed of before.members()) {
        const after = before.without(removed);
        expect(after.has(removed)).toBe(false);
        let moved = 0;
        const wrong: string[] = []; // keys of other members that moved, or that stayed on `removed`
        for (const [i, key] of KEYS.entries()) {
          const from = owners[i];
          const to = after.lookup(key);
          if (from === removed) moved++;
          if (from === removed ? to === removed : to !== from) wrong.push(key);
        }
        expect(wrong).toEqual([]);
        expect(moved).toBe(before.spread(KEYS).get(removed));
      }
    }
  });

  it("is immutable: with/without return new rings and leave the original untouched", () => {
    const ring = new HashRing(groups(4));
    const snapshot = assignments(ring, KEYS);
    const bigger = ring.with("g4");
    const smaller = ring.without("g0");
    expect(ring.members()).toEqual(["g0", "g1", "g2", "g3"]);
    expect(bigger.members()).toEqual(["g0", "g1", "g2", "g3", "g4"]);
    expect(smaller.members()).toEqual(["g1", "g2", "g3"]);
    expect(assignments(ring, KEYS)).toEqual(snapshot);
    expect(assignments(bigger.without("g4"), KEYS)).toEqual(snapshot);
    expect(ring.with("g2")).toBe(ring);
    expect(ring.without("g9")).toBe(ring);
    const copy = ring.members();
    copy.push("zzz");
    expect(ring.members()).toEqual(["g0", "g1", "g2", "g3"]);
    expect(ring.size).toBe(4);
    expect(bigger.vnodes).toBe(160);
  });

  it("breaks vnode point ties by member name, independent of member order", () => {
    // FNV-1a collisions found by search: hash32("m1287#140") === hash32("m4509#63"), and the
    // seven neighbouring vnodes of the two members collide as well.
    expect(hash32("m1287#140")).toBe(hash32("m4509#63"));
    expect(hash32("m1287#147")).toBe(hash32("m4509#64"));
    for (const members of [
      ["m1287", "m4509"],
      ["m4509", "m1287"],
    ]) {
      const ring = new HashRing(members);
      // A vnode's own label hashes exactly onto its point, so it looks up that point's owner.
      expect(ring.lookup("m1287#140")).toBe("m1287");
      expect(ring.lookup("m4509#63")).toBe("m1287");
      expect(ring.lookup("m4509#64")).toBe("m1287");
      expect(ring.lookup("m4509#0")).toBe("m4509"); // an uncontested point
    }
  });

  it("wraps a key hashed past the last point around to the first point", () => {
    const ring = new HashRing(["a", "b"], 1);
    const pa = hash32("a#0");
    const pb = hash32("b#0");
    const [first, last] = pa < pb ? (["a", pb] as const) : (["b", pa] as const);
    let key: string | undefined;
    for (let i = 0; key === undefined; i++) if (hash32(`k${i}`) > last) key = `k${i}`;
    expect(ring.lookup(key)).toBe(first);
  });

  it("uses a single member for everything", () => {
    const ring = new HashRing(["only"]);
    for (const key of KEYS.slice(0, 500)) expect(ring.lookup(key)).toBe("only");
  });

  it("throws on an empty ring and on invalid construction", () => {
    expect(() => new HashRing<string>([]).lookup("x")).toThrow(/empty ring/);
    expect(() => new HashRing(["g0"]).without("g0").lookup("x")).toThrow(/empty ring/);
    expect(() => new HashRing(["g0", "g1", "g0"])).toThrow(/duplicate/);
    expect(() => new HashRing(["g0"], 0)).toThrow(RangeError);
    expect(() => new HashRing(["g0"], 1.5)).toThrow(RangeError);
    expect(new HashRing<string>([]).size).toBe(0);
    expect(new HashRing<string>([]).with("g0").lookup("x")).toBe("g0");
  });

  it("keeps member name types", () => {
    type Group = `g${number}`;
    const ring = new HashRing<Group>(["g0", "g1"]);
    const owner: Group = ring.lookup("lock:x");
    expect(["g0", "g1"]).toContain(owner);
  });
});
