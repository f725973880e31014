/**
 * A cache node (CacheNodeCore) against a small in-memory directory (fake-directory.ts: a real
 * DirectoryTable behind the service's protocol), a Map as the dirty store and a manual clock.
 * Requests are held before or after they commit to make replies and orders race.
 */
import { describe, expect, it } from "vitest";
import type { CacheNodeCore } from "../../shared/cache/node.js";
import type { DirectoryRequest, Order } from "../../shared/cache/types.js";
import { Directory, LEASE, MapStore, NODE_LEASE, settle } from "./fake-directory.js";

const lines = (core: CacheNodeCore) => core.info().lines;

describe("hits and misses", () => {
  it("a read miss with no other holder installs E; later reads are hits; hitRate counts both", async () => {
    const d = new Directory();
    d.seed("k", "v");
    const { core: a } = d.node("A");
    expect(a.info().stats.hitRate).toBe(0);
    expect(await a.get("k")).toEqual({ type: "value", key: "k", value: "v", state: "E", hit: false });
    expect(await a.get("k")).toEqual({ type: "value", key: "k", value: "v", state: "E", hit: true });
    expect(await a.get("k")).toMatchObject({ hit: true });
    expect(await a.get("nothing")).toEqual({ type: "absent" });
    expect(d.requestsOf("A")).toEqual(["read k", "read nothing"]);
    expect(a.info().stats).toMatchObject({ hits: 2, misses: 2, hitRate: 0.5 });
    expect(d.table.entry("k")).toMatchObject({ owner: "A", value: "v" });
  });

  it("an absent key is not cached: each read asks again", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    await a.get("k");
    await a.get("k");
    expect(d.requestsOf("A")).toEqual(["read k", "read k"]);
    expect(a.info().stats).toMatchObject({ hits: 0, misses: 2, hitRate: 0 });
    expect(lines(a)).toEqual([]);
  });

  it("a read while another node owns the key: both S, on the owner's value", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    expect(await b.put("k", "v", "invalidate", "w1")).toEqual({ type: "stored", key: "k", state: "M" });
    expect(await a.get("k")).toMatchObject({ value: "v", state: "S", hit: false });
    expect(await b.get("k")).toMatchObject({ value: "v", state: "S", hit: true });
    expect(d.orders.map((o) => [o.node, o.order.action])).toEqual([["B", "share"]]);
  });
});

describe("silent writes (E → M)", () => {
  it("a PUT on an E line asks nobody, answers M and keeps the value in the dirty store", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a, store } = d.node("A");
    const grant = await a.get("k");
    expect(grant).toMatchObject({ state: "E" });
    const stamp = d.table.stamp("k");
    const before = d.requests.length;
    expect(await a.put("k", "v2", "invalidate", "w1")).toEqual({ type: "stored", key: "k", state: "M" });
    expect(d.requests.length).toBe(before);
    expect(store.map.get("k")).toEqual({ value: "v2", stamp });
    expect(await a.get("k")).toEqual({ type: "value", key: "k", value: "v2", state: "M", hit: true });
    // The directory does not know yet.
    expect(d.table.entry("k")).toMatchObject({ value: "v1", owner: "A", stamp });
    // A second silent write replaces the dirty value.
    await a.put("k", "v3", "update", "w2");
    expect(store.map.get("k")).toEqual({ value: "v3", stamp });
    expect(d.requests.length).toBe(before);
  });

  it("a PUT without a line goes through the directory: M, nothing dirty", async () => {
    const d = new Directory();
    const { core: a, store } = d.node("A");
    expect(await a.put("k", "v", "invalidate", "w1")).toEqual({ type: "stored", key: "k", state: "M" });
    expect(d.requestsOf("A")).toEqual(["write k"]);
    expect(store.map.size).toBe(0);
    expect(d.table.entry("k")).toMatchObject({ value: "v", owner: "A" });
    expect(await a.get("k")).toMatchObject({ value: "v", state: "M", hit: true });
  });

  it("a PUT on an S line goes through the directory and invalidates the other sharer", async () => {
    const d = new Directory();
    const { core: a, store } = d.node("A");
    const { core: b } = d.node("B");
    await b.put("k", "v1", "invalidate", "w1");
    await a.get("k"); // both S
    expect(await a.put("k", "v2", "invalidate", "w2")).toMatchObject({ state: "M" });
    expect(store.map.size).toBe(0);
    expect(b.stats.invalidations).toBe(1);
    expect(lines(b)).toEqual([]);
    expect(await b.get("k")).toMatchObject({ value: "v2", state: "S", hit: false });
  });
});

describe("orders", () => {
  it("share demotes M to S, counts a writeback and hands the dirty value to the reader", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a, store } = d.node("A");
    const { core: b } = d.node("B");
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1");
    const stamp = d.table.stamp("k");
    expect(await b.get("k")).toMatchObject({ value: "v2", state: "S", hit: false });
    expect(d.orders).toEqual([
      { node: "A", order: { action: "share", key: "k", stamp, leaseMs: LEASE }, reply: { ok: true, dirty: "v2" } },
    ]);
    expect(a.stats.writebacks).toBe(1);
    expect(lines(a)).toEqual([{ key: "k", state: "S" }]);
    expect(await a.get("k")).toMatchObject({ value: "v2", state: "S", hit: true });
    expect(d.table.entry("k")).toMatchObject({
      value: "v2",
      sharers: { A: expect.any(Number), B: expect.any(Number) },
    });
    // Until a newer stamp shows the read committed, the dirty value stays (it may be the only copy).
    expect(store.map.get("k")).toEqual({ value: "v2", stamp });
  });

  it("share of an E line (nothing written) counts no writeback and hands back nothing", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await a.get("k");
    await b.get("k");
    expect(d.orders.map((o) => o.reply)).toEqual([{ ok: true }]);
    expect(a.stats.writebacks).toBe(0);
    expect(lines(a)).toEqual([{ key: "k", state: "S" }]);
  });

  it("invalidate drops the line, counts an invalidation and hands back the dirty value", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1");
    const stamp = d.table.stamp("k");
    expect(await b.put("k", "v3", "invalidate", "w2")).toMatchObject({ state: "M" });
    expect(d.orders).toEqual([
      { node: "A", order: { action: "invalidate", key: "k", stamp }, reply: { ok: true, dirty: "v2" } },
    ]);
    expect(a.stats.invalidations).toBe(1);
    expect(lines(a)).toEqual([]);
    expect(await a.get("k")).toMatchObject({ value: "v3", state: "S", hit: false });
  });

  it("a delete elsewhere invalidates the owner and counts its dirty value as existing", async () => {
    const d = new Directory();
    const { core: a, store } = d.node("A");
    const { core: b } = d.node("B");
    await a.put("k", "v1", "invalidate", "w1"); // M through the directory
    await a.put("k", "v2", "invalidate", "w2"); // silent
    expect(await b.delete("k", "d1")).toEqual({ type: "deleted", existed: true });
    expect(d.orders.map((o) => o.reply)).toEqual([{ ok: true, dirty: "v2" }]);
    expect(lines(a)).toEqual([]);
    expect(await a.get("k")).toEqual({ type: "absent" });
    expect(store.map.size).toBe(0);
  });

  it.each([
    ["share", "line"],
    ["invalidate", "line"],
    ["share", "dirty value"],
    ["invalidate", "dirty value"],
  ] as const)(
    "a %s about a stamp older than the node's %s is refused as stale and changes nothing",
    async (action, what) => {
      const d = new Directory();
      d.seed("k", "v1");
      const { core: a, store } = d.node("A", { capacity: 1 });
      await a.get("k");
      await a.put("k", "v2", "invalidate", "w1");
      const stamp = d.table.stamp("k");
      if (what === "dirty value") {
        d.hold("before", (r) => r.op === "writeback");
        d.seed("other", "o");
        await a.get("other"); // evicts k: its writeback is held, the dirty value stays
        expect(lines(a)).toEqual([{ key: "other", state: "E" }]);
      }
      const order: Order =
        action === "share"
          ? { action, key: "k", stamp: stamp - 1, leaseMs: LEASE }
          : { action, key: "k", stamp: stamp - 1 };
      const stats = { ...a.stats };
      expect(a.order(order)).toEqual({ ok: false, stale: true });
      expect(a.stats).toEqual(stats);
      expect(store.map.get("k")).toEqual({ value: "v2", stamp });
      if (what === "line") expect(await a.get("k")).toMatchObject({ value: "v2", state: "M", hit: true });
    },
  );

  it("an order newer than a dirty value drops it: the directory has moved past it", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a, store } = d.node("A");
    const { core: b } = d.node("B");
    const { core: c } = d.node("C");
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1"); // dirty
    await b.get("k"); // share: A hands v2 over and keeps it, in S
    expect(store.map.get("k")?.value).toBe("v2");
    await c.put("k", "v3", "invalidate", "w2"); // invalidate at the read's stamp, newer than the dirty value's
    const toA = d.orders.filter((o) => o.node === "A");
    expect(toA.map((o) => o.reply)).toEqual([{ ok: true, dirty: "v2" }, { ok: true }]);
    expect(store.map.size).toBe(0);
    // Nothing is written back later either.
    expect(await a.get("k")).toMatchObject({ value: "v3", state: "S" });
    expect(d.requestsOf("A")).toEqual(["read k", "read k"]);
  });

  it("an order on a key the node does not hold is answered ok, with nothing", () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    expect(a.order({ action: "invalidate", key: "k", stamp: 3 })).toEqual({ ok: true });
    expect(a.order({ action: "share", key: "k", stamp: 4, leaseMs: LEASE })).toEqual({ ok: true });
    expect(lines(a)).toEqual([]);
  });
});

describe("grants racing orders", () => {
  it("a read grant that arrives after a share about it is not installed", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    d.hold("after", (r) => r.node === "A" && r.op === "read");
    const slow = a.get("k"); // committed: A is the owner (E); the reply is on its way
    await settle();
    expect(d.table.entry("k")).toMatchObject({ owner: "A" });
    const grantStamp = d.table.stamp("k");
    expect(await b.get("k")).toMatchObject({ state: "S", value: "v1" }); // share to A, before its grant
    expect(d.orders).toEqual([
      { node: "A", order: { action: "share", key: "k", stamp: grantStamp, leaseMs: LEASE }, reply: { ok: true } },
    ]);
    await d.release();
    expect(await slow).toMatchObject({ value: "v1", hit: false });
    // Installing E now would make A the only holder in its own eyes while B shares the key.
    expect(lines(a)).toEqual([]);
    d.holds.length = 0;
    expect(await a.get("k")).toMatchObject({ value: "v1", state: "S", hit: false });
  });

  it("a write grant that arrives after an invalidation newer than it is not installed", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    const { core: c } = d.node("C");
    d.hold("after", (r) => r.node === "A" && r.op === "write");
    const slow = a.put("k", "a", "invalidate", "w1"); // committed: A owns the key in M
    await settle();
    await b.get("k"); // share to A: both S
    await c.put("k", "c", "invalidate", "w2"); // invalidate to A and B at a stamp newer than A's grant
    await d.release();
    expect(await slow).toEqual({ type: "stored", key: "k", state: "M" });
    expect(lines(a)).toEqual([]);
    d.holds.length = 0;
    expect(await a.get("k")).toMatchObject({ value: "c", state: "S", hit: false });
  });

  it("a grant newer than the last order seen is installed", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await a.put("k", "a", "invalidate", "w1");
    await b.put("k", "b", "invalidate", "w2"); // A invalidated
    d.hold("after", (r) => r.node === "A");
    const read = a.get("k");
    await d.release();
    expect(await read).toMatchObject({ value: "b", state: "S" });
    expect(lines(a)).toEqual([{ key: "k", state: "S" }]);
  });
});

describe("S leases", () => {
  it("an S line is a hit until the directory's lease, shortened by the drift bound, has run from the request", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await b.put("k", "v", "invalidate", "w1");
    const sentAt = d.time;
    d.hold("after", (r) => r.node === "A");
    const read = a.get("k");
    await settle(); // the request is out
    d.time += 100; // the reply takes 100 ms: the lease still runs from the request
    await d.release();
    expect(await read).toMatchObject({ state: "S", hit: false });
    d.holds.length = 0;
    d.time = sentAt + NODE_LEASE - 1;
    expect(await a.get("k")).toMatchObject({ hit: true });
    expect(lines(a)).toEqual([{ key: "k", state: "S" }]);
    d.time = sentAt + NODE_LEASE;
    expect(lines(a)).toEqual([]);
    expect(await a.get("k")).toMatchObject({ value: "v", hit: false });
    expect(d.requestsOf("A")).toEqual(["read k", "read k"]);
  });

  it("a line demoted by a share gets a lease from the order", async () => {
    const d = new Directory();
    d.seed("k", "v");
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await a.get("k");
    d.time += 5_000; // E does not expire
    expect(await a.get("k")).toMatchObject({ state: "E", hit: true });
    const orderAt = d.time;
    await b.get("k");
    d.time = orderAt + NODE_LEASE - 1;
    expect(await a.get("k")).toMatchObject({ state: "S", hit: true });
    d.time = orderAt + NODE_LEASE;
    expect(await a.get("k")).toMatchObject({ state: "S", hit: false });
  });

  it("the node's lease never outlasts the directory's record of it, however late the grant arrives", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await b.put("k", "v", "invalidate", "w1");
    d.hold("after", (r) => r.node === "A");
    const read = a.get("k");
    await settle();
    d.time += 300; // the grant takes 300 ms to come back
    await d.release();
    expect(await read).toMatchObject({ state: "S" });
    d.holds.length = 0;
    const recorded = d.table.entry("k")?.sharers.A as number;
    // From here on the directory writes past A without asking: A must have stopped serving.
    d.time = recorded;
    expect(lines(a)).toEqual([]);
    expect(await a.get("k")).toMatchObject({ hit: false });
  });
});

describe("eviction", () => {
  it("an evicted M line with a dirty value is written back, and stays in the store until that is acknowledged", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    d.seed("j", "w");
    const { core: a, store } = d.node("A", { capacity: 1 });
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1");
    const stamp = d.table.stamp("k");
    d.hold("after", (r) => r.op === "writeback");
    await a.get("j"); // evicts k
    await settle();
    expect(a.stats).toMatchObject({ evictions: 1, writebacks: 1 });
    expect(lines(a)).toEqual([{ key: "j", state: "E" }]);
    expect(d.requests.at(-1)).toEqual({ op: "writeback", key: "k", node: "A", value: "v2", stamp });
    expect(d.table.entry("k")).toMatchObject({ value: "v2" });
    expect(d.table.entry("k")?.owner).toBeUndefined();
    // Not acknowledged yet: the value is still the node's to keep.
    expect(store.map.get("k")).toEqual({ value: "v2", stamp });
    await d.release();
    expect(store.map.has("k")).toBe(false);
  });

  it("a dirty value whose writeback has not landed is handed over by an order meanwhile", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    d.seed("j", "w");
    const { core: a, store } = d.node("A", { capacity: 1 });
    const { core: b } = d.node("B");
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1");
    d.hold("before", (r) => r.op === "writeback");
    await a.get("j"); // evicts k; the writeback has not reached the directory
    await settle();
    expect(d.held.map((h) => h.req.op)).toEqual(["writeback"]);
    expect(await b.get("k")).toMatchObject({ value: "v2", state: "S" });
    expect(d.orders.map((o) => o.reply)).toEqual([{ ok: true, dirty: "v2" }]);
    await d.release(); // too late: the directory moved on
    expect(d.requests.at(-1)).toMatchObject({ op: "writeback", key: "k" });
    expect(store.map.size).toBe(0);
    expect(d.table.entry("k")).toMatchObject({ value: "v2" });
  });

  it("an evicted E or S line is dropped without a writeback", async () => {
    const d = new Directory();
    d.seed("e", "1");
    const { core: a } = d.node("A", { capacity: 1 });
    const { core: b } = d.node("B");
    await b.put("s", "2", "invalidate", "w1");
    await a.get("e");
    await a.get("s"); // evicts E
    d.seed("x", "3");
    await a.get("x"); // evicts S
    await settle();
    expect(a.stats).toMatchObject({ evictions: 2, writebacks: 0 });
    expect(d.requestsOf("A")).toEqual(["read e", "read s", "read x"]);
  });

  it("the least recently used line goes, and a hit counts as a use", async () => {
    const d = new Directory();
    for (const k of ["a", "b", "c"]) d.seed(k, k);
    const { core: n } = d.node("N", { capacity: 2 });
    await n.get("a");
    await n.get("b");
    await n.get("a"); // hit: b is now the oldest
    await n.get("c");
    expect(lines(n).map((l) => l.key)).toEqual(["a", "c"]);
  });
});

describe("restart", () => {
  it("a node restarted over the same store writes its dirty value back before it reads the key", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const store = new MapStore();
    const { core: before } = d.node("A", { store });
    await before.get("k");
    await before.put("k", "v2", "invalidate", "w1");
    expect(store.map.size).toBe(1);
    const { core: after } = d.node("A", { store }); // the old one is gone with its memory
    expect(lines(after)).toEqual([]);
    expect(await after.get("k")).toMatchObject({ value: "v2", state: "E", hit: false });
    expect(d.requestsOf("A")).toEqual(["read k", "writeback k", "read k"]);
    expect(store.map.size).toBe(0);
  });

  it("a restarted node hands its dirty value to an order before it uses the key again", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const store = new MapStore();
    const { core: before } = d.node("A", { store });
    const { core: b } = d.node("B");
    await before.get("k");
    await before.put("k", "v2", "invalidate", "w1");
    d.node("A", { store });
    expect(await b.get("k")).toMatchObject({ value: "v2", state: "S" });
    expect(d.orders.map((o) => o.reply)).toEqual([{ ok: true, dirty: "v2" }]);
  });
});

describe("update pushes", () => {
  it("an update-mode write gives the new value to the other sharers, who then hit", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    const { core: c } = d.node("C");
    await a.put("k", "v1", "invalidate", "w1");
    await b.get("k"); // A and B share
    const phaseOne = d.table.stamp("k");
    expect(await c.put("k", "v2", "update", "w2")).toEqual({ type: "stored", key: "k", state: "S" });
    const stamp = d.table.stamp("k");
    expect(d.orders.slice(1).map((o) => [o.node, o.order])).toEqual([
      ["A", { action: "invalidate", key: "k", stamp: phaseOne }],
      ["B", { action: "invalidate", key: "k", stamp: phaseOne }],
      ["A", { action: "update", key: "k", value: "v2", stamp, basedOn: phaseOne, leaseMs: LEASE }],
      ["B", { action: "update", key: "k", value: "v2", stamp, basedOn: phaseOne, leaseMs: LEASE }],
    ]);
    for (const n of [a, b, c]) expect(await n.get("k")).toMatchObject({ value: "v2", state: "S", hit: true });
    expect([a.stats.updates, b.stats.updates, c.stats.updates]).toEqual([1, 1, 0]);
  });

  it("the pushed line's lease runs from phase one, not from the push", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await a.put("k", "v1", "invalidate", "w1");
    const phaseOneAt = d.time;
    d.beforeCommit = () => {
      d.time += 300; // the command takes 300 ms to commit after A answered its order
    };
    await b.put("k", "v2", "update", "w2");
    d.beforeCommit = undefined;
    d.time = phaseOneAt + NODE_LEASE - 1;
    expect(await a.get("k")).toMatchObject({ value: "v2", hit: true });
    d.time = phaseOneAt + NODE_LEASE;
    expect(lines(a)).toEqual([]);
    expect(await a.get("k")).toMatchObject({ value: "v2", hit: false });
  });

  const upd = (stamp: number, basedOn: number): Extract<Order, { action: "update" }> => ({
    action: "update",
    key: "k",
    value: "new",
    stamp,
    basedOn,
    leaseMs: LEASE,
  });
  const inv = (stamp: number): Order => ({ action: "invalidate", key: "k", stamp });

  it.each<[string, Order[], boolean]>([
    ["after its phase one", [inv(5), upd(7, 5)], true],
    ["after a share as its phase one", [{ action: "share", key: "k", stamp: 5, leaseMs: LEASE }, upd(7, 5)], true],
    ["after its phase one repeated (a retry)", [inv(5), inv(5), upd(7, 5)], true],
    ["with no order seen for the key", [upd(7, 5)], false],
    ["after an order newer than its phase one", [inv(5), inv(6), upd(7, 5)], false],
    ["after an order about an older stamp only", [inv(4), upd(7, 5)], false],
    ["twice: the second is a no-op", [inv(5), upd(7, 5), upd(7, 5)], true],
  ])("an update push %s: installed %s", (_name, orders, installed) => {
    const d = new Directory();
    const { core: a } = d.node("A");
    for (const o of orders) expect(a.order(o)).toEqual({ ok: true });
    expect(lines(a)).toEqual(installed ? [{ key: "k", state: "S" }] : []);
    expect(a.stats.updates).toBe(installed ? 1 : 0);
  });

  it("an update push older than the line held is ignored", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    expect(a.order(inv(5))).toEqual({ ok: true });
    expect(a.order(upd(9, 5))).toEqual({ ok: true });
    expect(a.order({ ...upd(8, 5), value: "older" })).toEqual({ ok: true });
    expect(await a.get("k")).toMatchObject({ value: "new", hit: true });
    expect(a.stats.updates).toBe(1);
  });
});

describe("info", () => {
  it("lists valid lines only (LRU order), with the capacity and the counters", async () => {
    const d = new Directory();
    d.seed("e", "1");
    d.seed("m", "2");
    const { core: a } = d.node("A", { capacity: 5 });
    const { core: b } = d.node("B");
    await b.put("s1", "x", "invalidate", "w1");
    await b.put("s2", "y", "invalidate", "w2");
    await a.get("s1"); // S, will expire
    d.time += NODE_LEASE / 2;
    await a.get("e"); // E
    await a.get("m");
    await a.put("m", "22", "invalidate", "w3"); // M
    await a.get("s2"); // S, still live later
    d.time += NODE_LEASE / 2; // s1's lease has ended, s2's has not
    expect(a.info()).toEqual({
      node: "A",
      capacity: 5,
      lines: [
        { key: "e", state: "E" },
        { key: "m", state: "M" },
        { key: "s2", state: "S" },
      ],
      stats: { hits: 0, misses: 4, evictions: 0, invalidations: 0, writebacks: 0, updates: 0, hitRate: 0 },
    });
    // info() looks without touching: the order and counters are unchanged.
    expect(a.info().lines.map((l) => l.key)).toEqual(["e", "m", "s2"]);
  });
});

describe("unavailable", () => {
  it("a read while the owner does not answer is unavailable, naming it", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await a.put("k", "v", "invalidate", "w1");
    d.down.add("A");
    const reply = await b.get("k");
    expect(reply).toMatchObject({ type: "unavailable" });
    expect(reply.type === "unavailable" && reply.detail).toContain("A");
    expect(lines(b)).toEqual([]);
  });

  it("a group without a leader: get, put and delete are unavailable and nothing is cached", async () => {
    const calls: DirectoryRequest[] = [];
    const d = new Directory();
    const { core: a, store } = d.node("A", {
      directory: {
        call: async (req) => {
          calls.push(req);
          return { type: "no-quorum", detail: "no leader" };
        },
      },
    });
    expect(await a.get("k")).toEqual({ type: "unavailable", detail: "no leader" });
    expect(await a.put("k", "v", "invalidate", "w1")).toEqual({ type: "unavailable", detail: "no leader" });
    expect(await a.delete("k", "d1")).toEqual({ type: "unavailable", detail: "no leader" });
    expect(calls.map((c) => c.op)).toEqual(["read", "write", "delete"]);
    expect(lines(a)).toEqual([]);
    expect(store.map.size).toBe(0);
  });

  it("a dirty value that cannot be written back keeps the read from going ahead, and stays", async () => {
    const store = new MapStore();
    store.put("k", { value: "dirty", stamp: 3 });
    const calls: DirectoryRequest[] = [];
    const d = new Directory();
    const { core: a } = d.node("A", {
      store,
      directory: {
        call: async (req) => {
          calls.push(req);
          return { type: "no-quorum" };
        },
      },
    });
    expect(await a.get("k")).toMatchObject({ type: "unavailable" });
    expect(calls).toEqual([{ op: "writeback", key: "k", node: "A", value: "dirty", stamp: 3 }]);
    expect(store.map.get("k")).toEqual({ value: "dirty", stamp: 3 });
  });
});

describe("delete", () => {
  it("the owner's own delete drops its line and its dirty value", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a, store } = d.node("A");
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1");
    expect(await a.delete("k", "d1")).toEqual({ type: "deleted", existed: true });
    expect(lines(a)).toEqual([]);
    expect(store.map.size).toBe(0);
    expect(d.table.entry("k")).toBeUndefined();
    expect(await a.get("k")).toEqual({ type: "absent" });
    expect(await a.delete("k", "d2")).toEqual({ type: "deleted", existed: false });
  });

  it("a read grant answered after a delete elsewhere invalidated it is not installed", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await b.get("k"); // B holds E
    d.hold("after", (r) => r.node === "A" && r.op === "read");
    const read = a.get("k"); // committed S (B shared); the reply is on its way
    await settle();
    d.holds.length = 0;
    expect(await b.delete("k", "d1")).toEqual({ type: "deleted", existed: true });
    await d.release();
    expect(await read).toMatchObject({ value: "v1" });
    expect(lines(a)).toEqual([]);
  });
});

describe("a node's own write or delete in flight", () => {
  it("a delete: its E line is not served once another node's write past the delete has answered", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    expect(await a.get("k")).toMatchObject({ state: "E" });
    d.hold("after", (r) => r.node === "A" && r.op === "delete");
    const del = a.delete("k", "d1"); // committed: the directory forgets A; the reply is on its way
    await settle();
    expect(d.table.entry("k")).toBeUndefined();
    expect(await b.put("k", "v2", "invalidate", "w1")).toMatchObject({ state: "M" });
    expect(d.orders).toEqual([]); // nobody told A
    // B's PUT has answered: no GET anywhere may return v1 now, and A may not hold E beside B's M.
    expect(lines(a)).toEqual([]);
    const read = a.get("k"); // waits for A's delete, if it is not a hit
    await d.release();
    expect(await del).toEqual({ type: "deleted", existed: true });
    expect(await read).toMatchObject({ value: "v2", state: "S", hit: false });
  });

  it("an update-mode write: the writer's old S line is not served while others already serve the new value", async () => {
    const d = new Directory();
    const { core: a } = d.node("A");
    const { core: b } = d.node("B");
    await b.put("k", "v1", "invalidate", "w1");
    await a.get("k"); // A and B share v1
    d.hold("after", (r) => r.node === "A" && r.op === "write");
    const put = a.put("k", "v2", "update", "w2");
    await settle();
    expect(await b.get("k")).toMatchObject({ value: "v2", state: "S", hit: true }); // pushed
    expect(lines(a)).toEqual([]);
    const read = a.get("k");
    await d.release();
    expect(await put).toEqual({ type: "stored", key: "k", state: "S" });
    expect(await read).toMatchObject({ value: "v2", state: "S" });
  });

  it("a write with a dirty value in hand: the dirty value stays in the store until the write's grant", async () => {
    const d = new Directory();
    d.seed("k", "v1");
    const { core: a, store } = d.node("A");
    const { core: b } = d.node("B");
    await a.get("k");
    await a.put("k", "v2", "invalidate", "w1"); // silent, dirty
    await b.get("k"); // share: A hands v2 over, keeps it, in S
    d.hold("after", (r) => r.node === "A" && r.op === "write");
    const put = a.put("k", "v3", "invalidate", "w2");
    await settle();
    expect(lines(a)).toEqual([]);
    expect(store.map.get("k")?.value).toBe("v2");
    await d.release();
    expect(await put).toMatchObject({ state: "M" });
    expect(store.map.size).toBe(0);
    expect(await a.get("k")).toMatchObject({ value: "v3", state: "M", hit: true });
    expect(await b.get("k")).toMatchObject({ value: "v3", state: "S", hit: false });
  });
});
