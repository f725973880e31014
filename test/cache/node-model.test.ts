/**
 * Randomized: a few cache nodes with tiny capacities over the fake directory (fake-directory.ts),
 * gets, puts (both propagations) and deletes running concurrently, replies and writebacks held
 * and let go in random order, time passing (each node's clock at its own rate, within the drift
 * bound), nodes that stop hearing orders for a while, and nodes restarting from their dirty stores.
 * After every step:
 * - at most one node holds a key in M or E, and then no other node holds it in S (shared/API.md);
 * - no GET returns a value older than one whose PUT or DELETE answered before the GET was asked
 *   (shared/API.md), nor older than one another GET answered before it was asked.
 * Values are unique, and the history of each key is recorded where writes take effect: in the
 * directory's commits, and in a node's dirty store for a silent write (E → M).
 *
 * Knobs: SEEDS (300) and STEPS (400) for longer runs, TRACE_SEED=n to print seed n step by step,
 * SHOW_STATS=1 to print what each run did.
 */
import { describe, expect, it } from "vitest";
import type { CacheNodeCore } from "../../shared/cache/node.js";
import { Rand } from "../../shared/raft/rand.js";
import { Directory, LEASE, MapStore, settle } from "./fake-directory.js";

const ABSENT = "⊥";

interface Op {
  node: string;
  kind: "get" | "put" | "delete";
  key: string;
  /**
   * For a get: the history position of the latest write answered before it was asked, or of the
   * latest value a get answered before it was asked (reads in real-time order, too).
   */
  floor: number;
  value?: string;
  id: string;
}

async function run(
  seed: number,
  steps: number,
): Promise<{ gets: number; hits: number; acked: number; unavailable: number }> {
  const rand = new Rand(seed);
  const d = new Directory();
  const names = ["A", "B", "C"];
  const keys = ["k1", "k2", "k3", "k4"].slice(0, rand.range(1, 4));
  const history = new Map<string, string[]>(keys.map((k) => [k, [`${ABSENT}0`]]));
  /** The history position each write or delete took effect at (by value or request id). */
  const positions = new Map<string, number>();
  const ackedFloor = new Map<string, number>(keys.map((k) => [k, 0]));
  const floorOf = (key: string) => ackedFloor.get(key) ?? 0;
  const raise = (key: string, p: number) => ackedFloor.set(key, Math.max(floorOf(key), p));
  const cores = new Map<string, { core: CacheNodeCore; gen: number }>();
  const stores = new Map<string, MapStore>();
  const failures: string[] = [];
  let gen = 0;
  let ids = 0;
  const stats = { gets: 0, hits: 0, acked: 0, unavailable: 0 };

  const record = (key: string, token: string) => {
    const h = history.get(key) as string[];
    h.push(token);
    positions.set(token, h.length - 1);
  };
  d.onCommit = (cmd, result, requestId) => {
    if (cmd.type === "cache-write" && result.type === "written") record(cmd.key, cmd.value);
    if (cmd.type === "cache-delete" && result.type === "deleted") record(cmd.key, `${ABSENT}${requestId}`);
  };
  const start = (name: string) => {
    const store = stores.get(name) ?? new MapStore();
    stores.set(name, store);
    store.onPut = (key, dirty) => record(key, dirty.value);
    const capacity = rand.range(1, 3);
    // Each node's clock runs at its own rate, within the drift bound (10%), from its own origin.
    const rate = 1 + rand.range(-99_900, 100_000) / 1e6;
    const origin = d.time;
    const offset = rand.range(-1e6, 1e6);
    const clock = () => offset + origin + (d.time - origin) * rate;
    cores.set(name, { core: d.node(name, { capacity, store, clock }).core, gen: ++gen });
  };
  for (const n of names) start(n);

  // Replies held at random after the commit, writebacks at random before it.
  d.hold("before", (r) => r.op === "writeback" && rand.chance(1, 2));
  d.hold("after", () => rand.chance(1, 2));

  const check = (op: Op, result: unknown) => {
    const r = result as { type: string; value?: string; hit?: boolean };
    if (r.type === "unavailable") stats.unavailable++;
    const h = history.get(op.key) as string[];
    if (op.kind === "get") {
      stats.gets++;
      if (r.type === "value") {
        if (r.hit) stats.hits++;
        const p = h.indexOf(r.value as string);
        if (p < 0) failures.push(`seed ${seed}: ${op.node} got ${op.key}=${r.value}, never written`);
        else if (p < op.floor)
          failures.push(
            `seed ${seed}: ${op.node} got ${op.key}=${r.value} (#${p}, hit ${r.hit}) after #${op.floor} (${h[op.floor]}) answered; history ${h.join(" ")}`,
          );
        else raise(op.key, p);
      } else if (r.type === "absent") {
        const p = h.findIndex((t, i) => i >= op.floor && t.startsWith(ABSENT));
        if (p < 0)
          failures.push(`seed ${seed}: ${op.node} got ${op.key} absent after #${op.floor}; history ${h.join(" ")}`);
        else raise(op.key, p);
      }
      return;
    }
    const token = op.kind === "put" ? (op.value as string) : `${ABSENT}${op.id}`;
    if (r.type === "stored" || r.type === "deleted") {
      stats.acked++;
      const p = positions.get(token);
      if (p === undefined) failures.push(`seed ${seed}: ${op.kind} ${op.key} ${token} answered, never took effect`);
      else raise(op.key, p);
    }
  };

  const invariants = () => {
    for (const key of keys) {
      const holders = [...cores].flatMap(([name, { core }]) =>
        core
          .info()
          .lines.filter((l) => l.key === key)
          .map((l) => `${name}:${l.state}`),
      );
      const exclusive = holders.filter((h) => !h.endsWith(":S"));
      if (exclusive.length > 1 || (exclusive.length === 1 && holders.length > 1))
        failures.push(`seed ${seed}: ${key} held as ${holders.join(", ")}`);
    }
  };

  const trace = process.env.TRACE_SEED === String(seed);
  const log = (...a: unknown[]) => {
    if (trace) console.log(...a);
  };
  if (trace) {
    const serve = d.call.bind(d);
    d.call = async (req, id) => {
      log(`  -> ${JSON.stringify(req)} t=${d.time}`);
      const r = await serve(req, id);
      log(`  <- ${req.node} ${JSON.stringify(r)}`);
      return r;
    };
    const prevCommit = d.onCommit;
    d.onCommit = (cmd, result, id) => {
      log(`  commit #${d.index} ${JSON.stringify(cmd)} => ${JSON.stringify(result)}`);
      prevCommit?.(cmd, result, id);
    };
  }
  let orderCount = 0;
  for (let step = 0; step < steps && failures.length === 0; step++) {
    for (; orderCount < d.orders.length; orderCount++) log(`  order ${JSON.stringify(d.orders[orderCount])}`);
    if (trace)
      log(`step ${step}: ${[...cores].map(([n, { core }]) => `${n}${JSON.stringify(core.info().lines)}`).join(" ")}`);
    const roll = rand.int(100);
    if (roll < 45) {
      const name = rand.pick(names);
      const { core, gen: g } = cores.get(name) as { core: CacheNodeCore; gen: number };
      const key = rand.pick(keys);
      const kind = rand.pick(["get", "get", "put", "put", "delete"] as const);
      const op: Op = { node: name, kind, key, floor: floorOf(key), id: `op${++ids}` };
      let p: Promise<unknown>;
      if (kind === "get") p = core.get(key);
      else if (kind === "put") {
        op.value = `${name}.${ids}`;
        p = core.put(key, op.value, rand.chance(1, 2) ? "update" : "invalidate", op.id);
      } else p = core.delete(key, op.id);
      log(`start ${JSON.stringify(op)}`);
      // A node that restarted meanwhile never answers its client.
      void p.then((result) => {
        if (cores.get(name)?.gen === g) check(op, result);
      });
    } else if (roll < 80) {
      if (d.held.length > 0) {
        const i = rand.int(d.held.length);
        log(`release ${JSON.stringify(d.held[i]?.req)}`);
        await d.release(i);
      }
    } else if (roll < 95) {
      d.time += rand.range(0, LEASE / 2);
      log(`time ${d.time}`);
    } else if (roll < 97) {
      // A node stops hearing orders for a while: reads past its E or M line are unavailable, and
      // writes past its S line wait out its lease (here: are unavailable until it ends).
      d.down.add(rand.pick(names));
      log(`down ${[...d.down]}`);
    } else if (roll < 99) {
      const n = rand.pick(names);
      log(`restart ${n}`);
      start(n);
    }
    // Nodes cut off come back after a while.
    for (const n of d.down) if (rand.chance(1, 20)) d.down.delete(n);
    await settle();
    invariants();
  }
  // Let everything land, then look once more.
  d.holds.length = 0;
  d.down.clear();
  while (d.held.length > 0 && failures.length === 0) {
    await d.release(rand.int(d.held.length));
    invariants();
  }
  await settle();
  expect(failures).toEqual([]);
  if (process.env.SHOW_STATS) console.log(seed, stats);
  return stats;
}

describe("cache nodes over one directory, at random", () => {
  it.each(Array.from({ length: Number(process.env.SEEDS ?? 300) }, (_, i) => i + 1))(
    "seed %i: coherent",
    async (seed) => {
      const stats = await run(seed, Number(process.env.STEPS ?? 400));
      // The run did something: reads answered (some from the cache) and writes acknowledged.
      expect(stats.gets).toBeGreaterThan(20);
      expect(stats.acked).toBeGreaterThan(20);
    },
  );

  it("over a few seeds, some reads are hits and some ops meet a node that does not answer", async () => {
    let hits = 0;
    let unavailable = 0;
    for (const seed of [101, 102, 103]) {
      const stats = await run(seed, 300);
      hits += stats.hits;
      unavailable += stats.unavailable;
    }
    expect(hits).toBeGreaterThan(0);
    expect(unavailable).toBeGreaterThan(0);
  });
});
