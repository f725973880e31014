import { describe, expect, it } from "vitest";
import {
  checkOperations,
  isPending,
  type KvInput,
  type KvOutput,
  kvModel,
  type Model,
  type Operation,
  type RegisterInput,
  registerModel,
} from "../../shared/sim/linearizability";

type KvOp = Operation<KvInput, KvOutput>;

// --- Small constructors so histories read like timelines: (client, key, ..., call, return).

const put = (clientId: number, key: string, value: string, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: "put", key, value },
  call,
  return: ret,
  output: {},
});

const get = (clientId: number, key: string, value: string | null, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: "get", key },
  call,
  return: ret,
  output: { value },
});

const cas = (
  clientId: number,
  key: string,
  expected: string | null,
  value: string,
  ok: boolean,
  call: number,
  ret: number,
): KvOp => ({
  clientId,
  input: { op: "cas", key, expected, value },
  call,
  return: ret,
  output: { ok },
});

const del = (clientId: number, key: string, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: "delete", key },
  call,
  return: ret,
  output: {},
});

/** An operation whose client never saw a reply. */
const pending = (op: KvOp): KvOp => {
  const { output: _ignored, ...rest } = op;
  return { ...rest, return: Infinity, pending: true };
};

const check = (history: KvOp[], options?: Parameters<typeof checkOperations>[2]) =>
  checkOperations(kvModel, history, options).result;

// --- Deterministic PRNG (mulberry32): the tests are the same on every run.

function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  // Integer in [0, n).
  return (n: number) => Math.floor(next() * n);
}

function pick<T>(rand: (n: number) => number, items: readonly T[]): T {
  const item = items[rand(items.length)];
  if (item === undefined) throw new Error("pick from empty list");
  return item;
}

describe("linearizable histories", () => {
  it("accepts the empty history", () => {
    expect(checkOperations(kvModel, [])).toMatchObject({ result: "ok", partitions: 0 });
  });

  it("accepts a sequential history", () => {
    const h = [
      get(0, "a", null, 0, 1),
      put(0, "a", "1", 2, 3),
      get(1, "a", "1", 4, 5),
      cas(1, "a", "1", "2", true, 6, 7),
      cas(0, "a", "1", "3", false, 8, 9),
      get(0, "a", "2", 10, 11),
      del(1, "a", 12, 13),
      get(0, "a", null, 14, 15),
      cas(0, "a", null, "4", true, 16, 17),
      get(1, "a", "4", 18, 19),
    ];
    expect(check(h)).toBe("ok");
  });

  it("accepts a read overlapping a write observing either the old or the new value", () => {
    expect(check([put(0, "a", "1", 0, 10), get(1, "a", null, 2, 4)])).toBe("ok");
    expect(check([put(0, "a", "1", 0, 10), get(1, "a", "1", 2, 4)])).toBe("ok");
  });

  it("accepts either order of two overlapping writes, as seen by a later read", () => {
    const writes = [put(0, "a", "1", 0, 10), put(1, "a", "2", 1, 9)];
    expect(check([...writes, get(2, "a", "1", 11, 12)])).toBe("ok");
    expect(check([...writes, get(2, "a", "2", 11, 12)])).toBe("ok");
    // ...but not a value from before both writes.
    expect(check([...writes, get(2, "a", null, 11, 12)])).toBe("illegal");
  });

  it("accepts reads that see a long write at different moments, in real-time order", () => {
    const h = [
      put(0, "a", "1", 0, 1),
      put(1, "a", "2", 2, 20),
      get(2, "a", "1", 3, 4),
      get(2, "a", "2", 5, 6),
      get(3, "a", "2", 7, 8),
    ];
    expect(check(h)).toBe("ok");
  });
});

describe("non-linearizable histories", () => {
  it("rejects a stale read after a write returned", () => {
    const h = [put(0, "a", "1", 0, 1), put(0, "a", "2", 2, 3), get(1, "a", "1", 4, 5)];
    const res = checkOperations(kvModel, h);
    expect(res.result).toBe("illegal");
    expect(res.partition).toBe(0);
    // Both puts can be linearized; the read cannot follow them.
    expect(res.longestLinearizable).toEqual([h[0], h[1]]);
    expect(res.explanation).toContain('get("a") -> "1"');
  });

  it("rejects a read of a value that was never written", () => {
    const h = [put(0, "a", "1", 0, 10), put(1, "a", "2", 0, 10), get(2, "a", "3", 5, 6)];
    expect(check(h)).toBe("illegal");
  });

  it("rejects a read of an absent key after a put returned", () => {
    expect(check([put(0, "a", "1", 0, 1), get(1, "a", null, 2, 3)])).toBe("illegal");
  });

  it("rejects two reads that see values in an order inconsistent with real time", () => {
    // a=1 is done; a=2 is in flight. A read returns 2, then a later read returns 1:
    // once 2 was visible, 1 can never come back.
    const h = [put(0, "a", "1", 0, 1), put(1, "a", "2", 2, 20), get(2, "a", "2", 3, 4), get(3, "a", "1", 5, 6)];
    expect(check(h)).toBe("illegal");
    // The same reads with overlapping intervals are fine: they may be ordered 1 then 2.
    const overlapping = [
      put(0, "a", "1", 0, 1),
      put(1, "a", "2", 2, 20),
      get(2, "a", "2", 3, 6),
      get(3, "a", "1", 4, 7),
    ];
    expect(check(overlapping)).toBe("ok");
  });

  it("rejects a cas that reports success against a value that cannot be current", () => {
    const h = [put(0, "a", "1", 0, 1), put(0, "a", "2", 2, 3), cas(1, "a", "1", "9", true, 4, 5)];
    expect(check(h)).toBe("illegal");
    expect(check([put(0, "a", "1", 0, 1), cas(1, "a", "1", "9", false, 2, 3)])).toBe("illegal");
  });

  it("rejects two successful cas from the same expected value", () => {
    const h = [put(0, "a", "1", 0, 1), cas(1, "a", "1", "x", true, 2, 10), cas(2, "a", "1", "y", true, 2, 10)];
    expect(check(h)).toBe("illegal");
  });
});

describe("equal call and return times", () => {
  // put returns at 5, get is called at 5.
  const h = [put(0, "a", "1", 0, 5), get(1, "a", null, 5, 8)];

  it("orders a return before a call at the same time by default", () => {
    expect(check(h)).toBe("illegal");
  });

  it("treats them as overlapping with sameTimeIsConcurrent", () => {
    expect(check(h, { sameTimeIsConcurrent: true })).toBe("ok");
  });
});

describe("pending operations", () => {
  it("accepts a pending write that is observed", () => {
    const h = [pending(put(0, "a", "1", 0, 0)), get(1, "a", "1", 5, 6)];
    expect(check(h)).toBe("ok");
  });

  it("accepts a pending write that is never observed", () => {
    const h = [pending(put(0, "a", "1", 0, 0)), get(1, "a", null, 5, 6), get(1, "a", null, 100, 101)];
    expect(check(h)).toBe("ok");
  });

  it("accepts a pending write that is observed only late", () => {
    const h = [pending(put(0, "a", "1", 0, 0)), get(1, "a", null, 5, 6), get(1, "a", "1", 100, 101)];
    expect(check(h)).toBe("ok");
  });

  it("rejects a pending write that is observed and then un-observed", () => {
    const h = [pending(put(0, "a", "1", 0, 0)), get(1, "a", "1", 5, 6), get(1, "a", null, 7, 8)];
    expect(check(h)).toBe("illegal");
  });

  it("rejects a read of a pending write that was called after the read returned", () => {
    const h = [get(1, "a", "1", 0, 1), pending(put(0, "a", "1", 2, 2))];
    expect(check(h)).toBe("illegal");
  });

  it("lets a pending write take effect after later completed writes", () => {
    const h = [pending(put(0, "a", "old", 0, 0)), put(1, "a", "new", 5, 6), get(2, "a", "old", 10, 11)];
    expect(check(h)).toBe("ok");
  });

  it("applies a pending cas only when its expected value holds", () => {
    // The cas can only swap if "1" is current; it is, so "x" is a legal later read.
    expect(check([put(0, "a", "1", 0, 1), pending(cas(1, "a", "1", "x", true, 2, 2)), get(2, "a", "x", 5, 6)])).toBe(
      "ok",
    );
    // Here "1" is never current, so "x" cannot appear.
    expect(check([put(0, "a", "2", 0, 1), pending(cas(1, "a", "1", "x", true, 2, 2)), get(2, "a", "x", 5, 6)])).toBe(
      "illegal",
    );
  });

  it("ignores pending reads whatever they would have returned", () => {
    const h = [put(0, "a", "1", 0, 1), pending(get(1, "a", "never", 2, 2))];
    expect(check(h)).toBe("ok");
  });

  it("treats return = Infinity as pending even without the flag", () => {
    const op: KvOp = { ...put(0, "a", "1", 0, 0), return: Infinity };
    expect(isPending(op)).toBe(true);
    expect(check([op, get(1, "a", null, 3, 4), get(1, "a", "1", 5, 6)])).toBe("ok");
  });
});

describe("per-key partitioning", () => {
  it("checks independent keys separately", () => {
    const h = [
      put(0, "a", "1", 0, 10),
      put(1, "b", "1", 0, 10),
      get(2, "b", null, 1, 2),
      get(3, "a", "1", 3, 4),
      put(0, "c", "x", 11, 12),
      get(1, "a", "1", 13, 14),
      get(2, "b", "1", 13, 14),
      get(3, "c", "x", 13, 14),
    ];
    const res = checkOperations(kvModel, h);
    expect(res).toMatchObject({ result: "ok", partitions: 3 });
  });

  it("names the failing partition (keys in order of first appearance)", () => {
    const h = [
      put(0, "a", "1", 0, 1),
      put(0, "b", "1", 0, 1),
      get(1, "a", "1", 2, 3),
      get(1, "b", null, 2, 3), // stale: b=1 had returned
    ];
    const res = checkOperations(kvModel, h);
    expect(res.result).toBe("illegal");
    expect(res.partition).toBe(1);
    expect(res.explanation).toContain("partition 1");
    expect(res.longestLinearizable?.every((op) => op.input.key === "b")).toBe(true);
  });

  it("does not let one key's value leak into another's", () => {
    expect(check([put(0, "a", "1", 0, 1), get(1, "b", "1", 2, 3)])).toBe("illegal");
  });

  it("supports a model without partition (single register)", () => {
    const op = (input: RegisterInput, output: KvOutput, call: number, ret: number) => ({
      clientId: 0,
      input,
      output,
      call,
      return: ret,
    });
    const ok = [op({ op: "put", value: "1" }, {}, 0, 5), op({ op: "get" }, { value: "1" }, 1, 2)];
    expect(checkOperations(registerModel, ok)).toMatchObject({ result: "ok", partitions: 1 });
    const bad = [op({ op: "put", value: "1" }, {}, 0, 1), op({ op: "get" }, { value: null }, 2, 3)];
    expect(checkOperations(registerModel, bad).result).toBe("illegal");
  });
});

describe("input validation and bounds", () => {
  it("rejects return <= call and inconsistent pending flags", () => {
    expect(() => check([put(0, "a", "1", 5, 5)])).toThrow(RangeError);
    expect(() => check([put(0, "a", "1", 5, 4)])).toThrow(RangeError);
    expect(() => check([put(0, "a", "1", NaN, 4)])).toThrow(RangeError);
    expect(() => check([{ ...put(0, "a", "1", 0, 4), pending: true }])).toThrow(RangeError);
  });

  it("answers unknown, never ok, when the step budget runs out", () => {
    const { history, mutated } = randomKvHistory(7, { clients: 5, opsPerClient: 40, keys: 1 });
    expect(checkOperations(kvModel, history).result).toBe("ok");
    expect(checkOperations(kvModel, history, { maxSteps: 10 }).result).toBe("unknown");
    // Too few steps to prove it either way; whatever it says, it must not be "ok".
    expect(checkOperations(kvModel, mutated, { maxSteps: 10 }).result).not.toBe("ok");
  });

  it("still reports an illegal partition after one that ran out of steps", () => {
    const big = randomKvHistory(3, { clients: 3, opsPerClient: 40, keys: 1 }).history;
    const stale = [put(9, "z", "1", 0, 1), put(9, "z", "2", 2, 3), get(8, "z", "1", 4, 5)];
    const res = checkOperations(kvModel, [...big, ...stale], { maxSteps: 50 });
    expect(res.result).toBe("illegal");
    expect(res.partition).toBe(1);
  });

  it("is deterministic", () => {
    const { mutated } = randomKvHistory(11, { clients: 4, opsPerClient: 30, keys: 2 });
    expect(checkOperations(kvModel, mutated)).toEqual(checkOperations(kvModel, mutated));
  });
});

// ---------------------------------------------------------------------------
// Randomized histories that are linearizable by construction.

interface GenOptions {
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Chance that an operation never returns. */
  pendingRate?: number;
  /** Longest duration of one operation, in ticks. */
  maxDuration?: number;
}

/**
 * Each client issues operations back to back with random durations, so
 * clients overlap freely. Every operation gets a secret linearization point
 * strictly inside its [call, return] interval; executing the operations in
 * that order against a real map produces the outputs. Such a history is
 * linearizable (the secret order is a witness). Pending operations take effect
 * at their point or, with even odds, never, and their output is dropped.
 *
 * `mutated` is the same history with one completed get changed to read a value
 * no one ever wrote, which no linearization can explain.
 */
function randomKvHistory(seed: number, opts: GenOptions): { history: KvOp[]; mutated: KvOp[]; mutatedIndex: number } {
  const rand = rng(seed);
  const keys = Array.from({ length: opts.keys }, (_, i) => `k${i}`);
  const pendingRate = opts.pendingRate ?? 0;
  const maxDuration = opts.maxDuration ?? 10;
  type Planned = { op: KvOp; point: number; takesEffect: boolean };
  const planned: Planned[] = [];
  const written: string[] = [];

  for (let c = 0; c < opts.clients; c++) {
    let t = rand(5);
    for (let i = 0; i < opts.opsPerClient; i++) {
      const key = pick(rand, keys);
      const value = `c${c}.${i}`;
      const r = rand(100);
      const input: KvInput =
        r < 40
          ? { op: "get", key }
          : r < 75
            ? { op: "put", key, value }
            : r < 90
              ? { op: "cas", key, expected: rand(4) === 0 ? null : pick(rand, [...written, "c0.0"]), value }
              : { op: "delete", key };
      if (input.op === "put") written.push(value);
      const duration = 1 + rand(maxDuration);
      const call = t;
      const ret = t + duration;
      // Strictly inside (call, ret); ties between points are harmless.
      const point = call + (1 + rand(999)) * (duration / 1000);
      const isPendingOp = rand(1000) < pendingRate * 1000;
      planned.push({
        op: {
          clientId: c,
          input,
          call,
          return: isPendingOp ? Infinity : ret,
          ...(isPendingOp ? { pending: true as const } : {}),
        },
        point,
        takesEffect: !isPendingOp || rand(2) === 0,
      });
      t = ret + rand(3); // the next call may be at the same tick as this return
    }
  }

  const store = new Map<string, string>();
  for (const p of [...planned].sort((a, b) => a.point - b.point)) {
    if (!p.takesEffect) continue;
    const input = p.op.input;
    const current = store.get(input.key) ?? null;
    let output: KvOutput = {};
    if (input.op === "get") output = { value: current };
    else if (input.op === "put") store.set(input.key, input.value);
    else if (input.op === "delete") store.delete(input.key);
    else {
      const swaps = current === input.expected;
      if (swaps) store.set(input.key, input.value);
      output = { ok: swaps };
    }
    if (!isPending(p.op)) p.op.output = output;
  }

  const history = planned.map((p) => p.op);
  const mutatedIndex = history.findIndex((op) => op.input.op === "get" && !isPending(op));
  if (mutatedIndex < 0) throw new Error("generator produced no completed get");
  const mutated = history.map((op, i) => (i === mutatedIndex ? { ...op, output: { value: "never-written" } } : op));
  return { history, mutated, mutatedIndex };
}

describe("randomized histories", () => {
  it("accepts generated linearizable histories and rejects them with one impossible read", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { history, mutated, mutatedIndex } = randomKvHistory(seed, {
        clients: 4,
        opsPerClient: 25,
        keys: 2,
        pendingRate: 0.05,
      });
      expect(checkOperations(kvModel, history).result, `seed ${seed}`).toBe("ok");
      const res = checkOperations(kvModel, mutated);
      expect(res.result, `seed ${seed} mutated`).toBe("illegal");
      const key = mutated[mutatedIndex]?.input.key;
      expect(
        res.longestLinearizable?.every((op) => op.input.key === key),
        `seed ${seed}`,
      ).toBe(true);
    }
  });

  it("handles heavy overlap on a single key", () => {
    for (let seed = 100; seed < 110; seed++) {
      const { history, mutated } = randomKvHistory(seed, {
        clients: 6,
        opsPerClient: 30,
        keys: 1,
        maxDuration: 30,
        pendingRate: 0.1,
      });
      expect(checkOperations(kvModel, history).result, `seed ${seed}`).toBe("ok");
      expect(checkOperations(kvModel, mutated).result, `seed ${seed} mutated`).toBe("illegal");
    }
  });

  it("checks 5 clients x 200 operations on 10 keys", () => {
    const { history, mutated } = randomKvHistory(2024, {
      clients: 5,
      opsPerClient: 200,
      keys: 10,
      pendingRate: 0.02,
    });
    expect(history).toHaveLength(1000);
    const res = checkOperations(kvModel, history);
    expect(res).toMatchObject({ result: "ok", partitions: 10 });
    expect(checkOperations(kvModel, mutated).result).toBe("illegal");
  });
});

// ---------------------------------------------------------------------------
// Cross-check against a brute-force search on tiny random histories, which
// mix linearizable and non-linearizable ones (including equal-time events).

/**
 * Try every order of every subset that contains all completed operations:
 * legal iff some order respects real time and the register model. Written
 * independently of the checker (no event list, no memoisation).
 */
function bruteForce(history: KvOp[], sameTimeIsConcurrent: boolean): boolean {
  const model: Model<string | null, KvInput, KvOutput> = kvModel;
  // a must precede b if a returned before b was called.
  const precedes = (a: KvOp, b: KvOp): boolean => (sameTimeIsConcurrent ? a.return < b.call : a.return <= b.call);
  const used = history.map(() => false);
  const search = (state: string | null, placed: KvOp[]): boolean => {
    if (history.every((op, i) => used[i] || isPending(op))) return true;
    return history.some((op, i) => {
      if (used[i]) return false;
      // Every completed op that must precede `op` has to be placed already.
      const blocked = history.some((other, j) => !used[j] && j !== i && precedes(other, op));
      if (blocked) return false;
      const next = model.step(state, op.input, isPending(op) ? undefined : op.output);
      if (!next.ok) return false;
      used[i] = true;
      const found = search(next.state, [...placed, op]);
      used[i] = false;
      return found;
    });
  };
  return search(model.init(), []);
}

function tinyRandomHistory(seed: number): KvOp[] {
  const rand = rng(seed);
  const values = [null, "a", "b"] as const;
  const n = 2 + rand(5);
  return Array.from({ length: n }, (_, i): KvOp => {
    const call = rand(8);
    const ret = call + 1 + rand(4);
    const r = rand(10);
    const op =
      r < 4
        ? get(i, "k", pick(rand, values), call, ret)
        : r < 7
          ? put(i, "k", pick(rand, ["a", "b"]), call, ret)
          : r < 9
            ? cas(i, "k", pick(rand, values), pick(rand, ["a", "b"]), rand(2) === 0, call, ret)
            : del(i, "k", call, ret);
    return rand(8) === 0 ? pending(op) : op;
  });
}

describe("agreement with brute force", () => {
  for (const sameTimeIsConcurrent of [false, true]) {
    it(`matches on 1500 tiny histories (sameTimeIsConcurrent=${sameTimeIsConcurrent})`, () => {
      const tally = { ok: 0, illegal: 0 };
      for (let seed = 1; seed <= 1500; seed++) {
        const h = tinyRandomHistory(seed);
        const expected = bruteForce(h, sameTimeIsConcurrent) ? "ok" : "illegal";
        const got = checkOperations(kvModel, h, { sameTimeIsConcurrent }).result;
        expect(got, `seed ${seed}: ${JSON.stringify(h)}`).toBe(expected);
        tally[expected]++;
      }
      // Guard against a generator that only produces one kind of history.
      expect(tally.ok).toBeGreaterThan(150);
      expect(tally.illegal).toBeGreaterThan(150);
    });
  }
});
