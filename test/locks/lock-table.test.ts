/** The lock rules, one test each, on a single LockTable (one Raft group). */
import { describe, expect, it } from "vitest";
import { LockTable } from "../../shared/locks/index.js";
import { Group, START, TTL } from "./helpers.js";

const shared = { mode: "shared" } as const;

describe("compatibility", () => {
  it("shared goes with shared", () => {
    const g = new Group();
    expect(g.acquire("r", "A", shared).result).toMatchObject({ type: "granted", mode: "shared" });
    expect(g.acquire("r", "B", shared).result).toMatchObject({ type: "granted", mode: "shared" });
    expect(g.table.view("r", g.now)).toMatchObject({ mode: "shared", holders: [{ owner: "A" }, { owner: "B" }] });
  });

  it.each([
    ["exclusive", "exclusive"],
    ["exclusive", "shared"],
    ["shared", "exclusive"],
  ] as const)("%s then %s conflicts", (first, second) => {
    const g = new Group();
    g.acquire("r", "A", { mode: first });
    expect(g.acquire("r", "B", { mode: second }).result).toEqual({
      type: "conflict",
      resource: "r",
      owner: "B",
      holders: [{ owner: "A", mode: first, expiresAt: START + TTL }],
    });
  });
});

describe("FIFO waiters", () => {
  it("a waiting exclusive request blocks later shared requests", () => {
    const g = new Group();
    g.acquire("r", "A", shared);
    expect(g.acquire("r", "X", { waitMs: 5000 }).result.type).toBe("waiting");
    // B is compatible with the holder A, but X came first.
    expect(g.acquire("r", "B", shared).result.type).toBe("conflict");
    expect(g.acquire("r", "B", { ...shared, waitMs: 5000 }).result.type).toBe("waiting");
    expect(g.table.view("r", g.now).waiters).toEqual([
      { owner: "X", mode: "exclusive" },
      { owner: "B", mode: "shared" },
    ]);
  });

  it("waiters are granted in arrival order", () => {
    const g = new Group();
    g.acquire("r", "A");
    g.acquire("r", "B", { waitMs: 5000 });
    g.acquire("r", "C", { waitMs: 5000 });
    expect(g.release("r", "A").events).toMatchObject([{ type: "granted", owner: "B", mode: "exclusive" }]);
    expect(g.release("r", "B").events).toMatchObject([{ type: "granted", owner: "C" }]);
  });
});

describe("re-acquire", () => {
  it("by the same owner in the same mode keeps the token and extends the TTL", () => {
    const g = new Group();
    const first = g.token(g.acquire("r", "A"));
    g.acquire("r", "B", { waitMs: 5000 }); // a waiter does not stop the holder's retry
    g.now += 10_000;
    expect(g.acquire("r", "A", { ttlMs: 5000 }).result).toEqual({
      type: "granted",
      resource: "r",
      owner: "A",
      mode: "exclusive",
      fencingToken: first,
      expiresAt: g.now + 5000,
    });
  });
});

describe("upgrade and downgrade", () => {
  it("the sole shared holder asking exclusive gets it at once with a new token", () => {
    const g = new Group();
    const first = g.token(g.acquire("r", "A", shared));
    g.acquire("r", "B", { waitMs: 5000 }); // waits for A: A's upgrade still goes first
    const second = g.token(g.acquire("r", "A"));
    expect(second).toBeGreaterThan(first);
    expect(g.table.view("r", g.now)).toMatchObject({ mode: "exclusive", holders: [{ owner: "A" }] });
  });

  it("a shared holder asking exclusive while others hold shared conflicts, or waits for them", () => {
    const g = new Group();
    const first = g.token(g.acquire("r", "A", shared));
    g.acquire("r", "B", shared);
    expect(g.acquire("r", "A").result).toMatchObject({ type: "conflict", holders: [{ owner: "A" }, { owner: "B" }] });
    expect(g.acquire("r", "A", { waitMs: 5000 }).result).toMatchObject({ type: "waiting", mode: "exclusive" });
    // A still holds shared while it waits.
    expect(g.table.view("r", g.now)).toMatchObject({ mode: "shared", waiters: [{ owner: "A", mode: "exclusive" }] });
    const { events } = g.release("r", "B");
    expect(events).toMatchObject([{ type: "granted", owner: "A", mode: "exclusive" }]);
    expect(events[0]).toHaveProperty("fencingToken", g.index);
    expect(g.index).toBeGreaterThan(first);
    expect(g.table.view("r", g.now)).toMatchObject({ holders: [{ owner: "A", mode: "exclusive" }], waiters: [] });
  });

  it("an exclusive holder asking shared gets it at once, then shared waiters at the head follow", () => {
    const g = new Group();
    const first = g.token(g.acquire("r", "A"));
    g.acquire("r", "B", { ...shared, waitMs: 5000 });
    g.acquire("r", "C", { ...shared, waitMs: 5000 });
    g.acquire("r", "X", { waitMs: 5000 });
    g.acquire("r", "D", { ...shared, waitMs: 5000 });
    const { result, events } = g.acquire("r", "A", shared);
    expect(result).toMatchObject({ type: "granted", mode: "shared" });
    expect(g.token({ result, events })).toBeGreaterThan(first);
    // B and C are promoted; X (exclusive) is not, and D stays behind X.
    expect(events.map((e) => [e.type, e.owner])).toEqual([
      ["granted", "B"],
      ["granted", "C"],
    ]);
    expect(g.table.view("r", g.now).waiters.map((w) => w.owner)).toEqual(["X", "D"]);
  });
});

describe("an owner that is already waiting", () => {
  it("asking again in the same mode keeps one waiter and refreshes its deadline", () => {
    const g = new Group();
    g.acquire("r", "A");
    expect(g.acquire("r", "B", { waitMs: 1000 }).result).toMatchObject({ type: "waiting", deadline: START + 1000 });
    g.now += 500;
    expect(g.acquire("r", "B", { waitMs: 1000 }).result).toMatchObject({ type: "waiting", deadline: START + 1500 });
    expect(g.table.view("r", g.now).waiters).toEqual([{ owner: "B", mode: "exclusive" }]);
    g.now = START + 1200; // past the first deadline, not the refreshed one
    expect(g.expire().events).toEqual([]);
    g.now = START + 1500;
    expect(g.expire().events).toMatchObject([{ type: "timedOut", owner: "B" }]);
  });

  it("a refresh never shortens the wait", () => {
    const g = new Group();
    g.acquire("r", "A");
    g.acquire("r", "B", { waitMs: 5000 });
    expect(g.acquire("r", "B", { waitMs: 100 }).result).toMatchObject({ type: "waiting", deadline: START + 5000 });
  });

  it("a try-lock while waiting is a conflict and leaves the wait as it was", () => {
    const g = new Group();
    g.acquire("r", "A");
    g.acquire("r", "B", { waitMs: 5000 });
    expect(g.acquire("r", "B").result.type).toBe("conflict");
    expect(g.table.nextDeadline()).toBe(START + 5000);
  });

  it("asking again in another mode is a conflict and the first wait stays", () => {
    const g = new Group();
    g.acquire("r", "A");
    g.acquire("r", "B", { waitMs: 1000 });
    expect(g.acquire("r", "B", { ...shared, waitMs: 1000 }).result).toMatchObject({
      type: "conflict",
      holders: [{ owner: "A" }],
    });
    expect(g.table.view("r", g.now).waiters).toEqual([{ owner: "B", mode: "exclusive" }]);
  });
});

describe("TTL leases", () => {
  it("an expired holder is removed when its resource is touched, without an expire", () => {
    const g = new Group();
    g.acquire("r", "A", { ttlMs: 100 });
    g.now += 100; // expiresAt ≤ t: gone
    expect(g.acquire("r", "B").result).toMatchObject({ type: "granted", owner: "B" });
  });

  it("expire removes expired holders everywhere and promotes: shared waiters together, an exclusive alone", () => {
    const g = new Group();
    g.acquire("r1", "A", { ttlMs: 100 });
    for (const [owner, mode] of [
      ["B", "shared"],
      ["C", "shared"],
      ["X", "exclusive"],
      ["Y", "exclusive"],
    ] as const) {
      g.acquire("r1", owner, { mode, waitMs: 10_000 });
    }
    g.acquire("r2", "A", { ttlMs: 100 });
    g.acquire("r2", "Z", { waitMs: 10_000 });
    g.now += 100;
    const { result, events } = g.expire();
    expect(result).toEqual({ type: "expired" });
    expect(events.map((e) => [e.type, e.resource, e.owner])).toEqual([
      ["granted", "r1", "B"],
      ["granted", "r1", "C"],
      ["granted", "r2", "Z"],
    ]);
    g.release("r1", "B");
    expect(g.release("r1", "C").events.map((e) => e.owner)).toEqual(["X"]);
    expect(g.release("r1", "X").events.map((e) => e.owner)).toEqual(["Y"]);
  });

  it("view hides holders whose lease ended by `now`", () => {
    const g = new Group();
    g.acquire("r", "A", { ...shared, ttlMs: 100 });
    g.acquire("r", "B", { ...shared, ttlMs: 200 });
    expect(g.table.view("r", START + 99).holders.map((h) => h.owner)).toEqual(["A", "B"]);
    expect(g.table.view("r", START + 100)).toEqual({
      resource: "r",
      mode: "shared",
      holders: [{ owner: "B", mode: "shared", expiresAt: START + 200 }],
      waiters: [],
    });
    expect(g.table.view("r", START + 200)).toEqual({ resource: "r", mode: null, holders: [], waiters: [] });
  });
});

describe("try-lock and waiting", () => {
  it("waitMs 0 is a try-lock: conflict at once, with the holders, and nothing queued", () => {
    const g = new Group();
    g.acquire("r", "A", { ttlMs: 500 });
    expect(g.acquire("r", "B", { waitMs: 0 }).result).toEqual({
      type: "conflict",
      resource: "r",
      owner: "B",
      holders: [{ owner: "A", mode: "exclusive", expiresAt: START + 500 }],
    });
    expect(g.table.view("r", g.now).waiters).toEqual([]);
  });

  it("a wait gets deadline t + waitMs and times out on the expire past it", () => {
    const g = new Group();
    g.acquire("r", "A");
    expect(g.acquire("r", "B", { waitMs: 2000 }).result).toEqual({
      type: "waiting",
      resource: "r",
      owner: "B",
      mode: "exclusive",
      deadline: START + 2000,
    });
    g.now = START + 1999;
    expect(g.expire().events).toEqual([]);
    g.now = START + 2000;
    expect(g.expire().events).toEqual([
      {
        type: "timedOut",
        resource: "r",
        owner: "B",
        mode: "exclusive",
        holders: [{ owner: "A", mode: "exclusive", expiresAt: START + TTL }],
      },
    ]);
    expect(g.table.view("r", g.now).waiters).toEqual([]);
  });

  it("a wait that ran out is timed out, not granted, even if the lease ended too", () => {
    const g = new Group();
    g.acquire("r", "A", { ttlMs: 1000 });
    g.acquire("r", "B", { waitMs: 2000 });
    g.now = START + 5000; // the expire for A's lease came late
    expect(g.expire().events).toEqual([
      { type: "timedOut", resource: "r", owner: "B", mode: "exclusive", holders: [] },
    ]);
  });
});

describe("release and renew", () => {
  it("release by the holder frees the lock; by a non-holder or an expired holder is notHolder", () => {
    const g = new Group();
    g.acquire("r", "A", { ttlMs: 100 });
    expect(g.release("r", "B").result).toEqual({ type: "notHolder", resource: "r", owner: "B" });
    expect(g.release("r", "A").result).toEqual({ type: "released", resource: "r", owner: "A" });
    expect(g.release("r", "A").result.type).toBe("notHolder");
    g.acquire("r", "A", { ttlMs: 100 });
    g.now += 100;
    expect(g.release("r", "A").result.type).toBe("notHolder");
  });

  it("a waiter is not a holder: it cannot renew, and its release withdraws the wait", () => {
    const g = new Group();
    g.acquire("r", "A");
    g.acquire("r", "B", { waitMs: 1000 });
    expect(g.renew("r", "B").result.type).toBe("notHolder");
    expect(g.table.view("r", g.now).waiters).toEqual([{ owner: "B", mode: "exclusive" }]);
    expect(g.release("r", "B").result.type).toBe("withdrawn");
    expect(g.table.view("r", g.now).waiters).toEqual([]);
  });

  it("renew extends a live lease to t + ttlMs, or by its last TTL; not once expired", () => {
    const g = new Group();
    g.acquire("r", "A", { ttlMs: 100 });
    g.now += 50;
    expect(g.renew("r", "A", 400).result).toEqual({
      type: "renewed",
      resource: "r",
      owner: "A",
      expiresAt: g.now + 400,
    });
    g.now += 300;
    expect(g.renew("r", "A").result).toMatchObject({ expiresAt: g.now + 400 });
    expect(g.renew("r", "B").result).toEqual({ type: "notHolder", resource: "r", owner: "B" });
    g.now += 400;
    expect(g.renew("r", "A").result.type).toBe("notHolder");
  });
});

describe("fencing tokens", () => {
  it("strictly increase per resource across grants, upgrades, downgrades, promotions and reuse", () => {
    const g = new Group();
    const tokens: number[] = [];
    const grants = (applied: ReturnType<Group["run"]>) => {
      for (const x of [applied.result, ...applied.events]) if (x.type === "granted") tokens.push(x.fencingToken);
    };
    grants(g.acquire("r", "A", shared));
    grants(g.acquire("r", "A")); // upgrade
    grants(g.acquire("r", "A", shared)); // downgrade
    grants(g.acquire("r", "B", { waitMs: 1000 }));
    grants(g.release("r", "A")); // promotes B
    grants(g.release("r", "B")); // r is now empty and deleted
    grants(g.acquire("r", "C", shared)); // reused
    expect(tokens).toHaveLength(5);
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it("track the entry index: max(lastToken + 1, index), also when one entry grants several", () => {
    const t = new LockTable();
    const cmd = (owner: string, mode: "shared" | "exclusive", waitMs = 1000) =>
      ({ type: "acquire", resource: "r", owner, mode, ttlMs: 1000, waitMs, now: 0 }) as const;
    expect(t.applyCommand(cmd("A", "exclusive"), 7).result).toMatchObject({ fencingToken: 7 });
    t.applyCommand(cmd("B", "shared"), 8);
    t.applyCommand(cmd("C", "shared"), 9);
    t.applyCommand(cmd("D", "shared"), 10);
    const { events } = t.applyCommand({ type: "release", resource: "r", owner: "A", now: 0 }, 11);
    expect(events.map((e) => e.type === "granted" && e.fencingToken)).toEqual([11, 12, 13]);
    // The next entry's index is behind lastToken: the counter wins.
    expect(t.applyCommand(cmd("E", "shared"), 12).result).toMatchObject({ fencingToken: 14 });
    expect(t.applyCommand(cmd("F", "shared"), 40).result).toMatchObject({ fencingToken: 40 });
  });

  it("keep increasing after snapshot and restore", () => {
    const g = new Group();
    g.acquire("r", "A");
    const before = g.token(g.acquire("s", "A"));
    g.release("s", "A");
    const copy = new LockTable();
    copy.restore(g.table.snapshot());
    // An index below lastToken (as in a test harness restarting at 1) still gets a larger token.
    const after = copy.applyCommand(
      { type: "acquire", resource: "s", owner: "B", mode: "exclusive", ttlMs: TTL, waitMs: 0, now: g.now },
      1,
    );
    expect(after.result).toMatchObject({ type: "granted", fencingToken: before + 1 });
  });
});

describe("local deadlock", () => {
  it("A holds r1, B holds r2, A waits r2, B asks r1: B is the victim with cycle [B, A]", () => {
    const g = new Group();
    g.acquire("r1", "A");
    g.acquire("r2", "B");
    expect(g.acquire("r2", "A", { waitMs: 5000 }).result.type).toBe("waiting");
    expect(g.acquire("r1", "B", { waitMs: 5000 }).result).toEqual({
      type: "deadlock",
      resource: "r1",
      owner: "B",
      cycle: ["B", "A"],
    });
    expect(g.table.view("r1", g.now).waiters).toEqual([]); // not enqueued
    expect(g.table.waitEdges()).toEqual([{ waiter: "A", holder: "B", holderTag: "h2", resource: "r2", since: START }]);
  });

  it("two shared holders both upgrading: the second is the victim", () => {
    const g = new Group();
    g.acquire("r", "A", shared);
    g.acquire("r", "B", shared);
    expect(g.acquire("r", "A", { waitMs: 5000 }).result.type).toBe("waiting");
    expect(g.acquire("r", "B", { waitMs: 5000 }).result).toMatchObject({ type: "deadlock", cycle: ["B", "A"] });
  });

  it("a longer cycle is listed from the requester along the waits", () => {
    const g = new Group();
    for (const [r, o] of [
      ["r1", "A"],
      ["r2", "B"],
      ["r3", "C"],
    ]) {
      g.acquire(r as string, o as string);
    }
    g.acquire("r2", "A", { waitMs: 5000 }); // A → B
    g.acquire("r3", "B", { waitMs: 5000 }); // B → C
    expect(g.acquire("r1", "C", { waitMs: 5000 }).result).toMatchObject({ type: "deadlock", cycle: ["C", "A", "B"] });
  });

  it("waiting behind an earlier incompatible waiter counts as an edge", () => {
    const g = new Group();
    g.acquire("r1", "H", shared);
    g.acquire("r1", "A", { waitMs: 5000 }); // A waits for H on r1
    g.acquire("r2", "B");
    g.acquire("r2", "A", { waitMs: 5000 }); // A → B
    // B asks shared on r1: compatible with H, but queued behind A, which waits for B.
    expect(g.acquire("r1", "B", { ...shared, waitMs: 5000 }).result).toMatchObject({
      type: "deadlock",
      cycle: ["B", "A"],
    });
  });

  it("an ended lease is no edge: no deadlock through it", () => {
    const g = new Group();
    g.acquire("r1", "A", { ttlMs: 100 });
    g.acquire("r2", "B");
    g.acquire("r1", "B", { waitMs: 5000 }); // B → A
    g.now += 100; // A's lease on r1 ended, but nothing has touched r1 since
    expect(g.acquire("r2", "A", { waitMs: 5000 }).result.type).toBe("waiting");
  });
});

describe("cancel (cross-group deadlock victim)", () => {
  it("removes the waiter, answers its held request and promotes the next", () => {
    const g = new Group();
    g.acquire("r", "H", shared);
    g.acquire("r", "V", { waitMs: 5000 });
    g.acquire("r", "S", { ...shared, waitMs: 5000 });
    const { result, events } = g.cancel("r", "V", ["V", "Q"]);
    expect(result).toEqual({ type: "cancelled", resource: "r", owner: "V" });
    expect(events).toEqual([
      { type: "cancelled", resource: "r", owner: "V", mode: "exclusive", reason: "deadlock", cycle: ["V", "Q"] },
      expect.objectContaining({ type: "granted", owner: "S", mode: "shared" }),
    ]);
  });

  it("is notWaiting for an owner no longer waiting, or a wait that started at another time", () => {
    const g = new Group();
    g.acquire("r", "H");
    g.acquire("r", "V", { waitMs: 5000 });
    expect(g.cancel("r", "V", ["V"], START + 1).result.type).toBe("notWaiting");
    expect(g.cancel("r", "H", ["H"]).result.type).toBe("notWaiting");
    expect(g.cancel("r", "V", ["V"], START).result.type).toBe("cancelled");
    expect(g.cancel("r", "V", ["V"]).result.type).toBe("notWaiting");
  });
});

describe("bookkeeping", () => {
  it("empty resources are deleted", () => {
    const g = new Group();
    g.acquire("a", "A");
    g.acquire("b", "B", { ttlMs: 100 });
    g.acquire("c", "C", { ...shared, ttlMs: 100 });
    g.acquire("c", "D", { waitMs: 50 });
    g.release("a", "A");
    g.now += 100;
    g.expire();
    expect(JSON.parse(g.table.snapshot()).resources).toEqual([]);
    expect(g.table.nextDeadline()).toBeUndefined();
  });

  it("time never runs backwards: a command stamped earlier uses the previous t", () => {
    const g = new Group();
    g.now = 5000;
    g.acquire("r", "A", { ttlMs: 100 });
    g.now = 4000; // a new leader with a slower clock
    expect(g.acquire("r", "B", { ttlMs: 100 }).result.type).toBe("conflict");
    expect(g.renew("r", "A", 100).result).toMatchObject({ expiresAt: 5100 });
    expect(g.table.now).toBe(5000);
  });

  it("nextDeadline is the earliest lease end or wait deadline", () => {
    const g = new Group();
    expect(g.table.nextDeadline()).toBeUndefined();
    g.acquire("r", "A", { ttlMs: 900 });
    g.acquire("s", "B", { ttlMs: 5000 });
    expect(g.table.nextDeadline()).toBe(START + 900);
    g.acquire("s", "C", { waitMs: 300 });
    expect(g.table.nextDeadline()).toBe(START + 300);
  });

  it("waitEdges lists each waiter's blockers with the resource and the wait's start", () => {
    const g = new Group();
    g.acquire("r", "A", shared);
    g.acquire("r", "B", shared);
    g.now += 10;
    g.acquire("r", "X", { waitMs: 5000 });
    g.now += 10;
    g.acquire("r", "C", { ...shared, waitMs: 5000 });
    expect(g.table.waitEdges()).toEqual([
      { waiter: "X", holder: "A", holderTag: "h1", resource: "r", since: START + 10 },
      { waiter: "X", holder: "B", holderTag: "h2", resource: "r", since: START + 10 },
      { waiter: "C", holder: "X", holderTag: `w${START + 10}`, resource: "r", since: START + 20 },
    ]);
    expect(g.table.waitEdges(START + 5010)).toEqual([]); // both waits ran out by then
  });

  it("waitEdges tags each blocker with its instance: a new holding is a new tag, a holder that also waits is the holder", () => {
    const g = new Group();
    const first = g.token(g.acquire("r", "H"));
    g.now += 10;
    g.acquire("r", "A", { waitMs: 5000 });
    expect(g.table.waitEdges()).toEqual([
      { waiter: "A", holder: "H", holderTag: `h${first}`, resource: "r", since: START + 10 },
    ]);
    // H downgrades: the same owner, a new holding with a new token, which A still waits for.
    const second = g.token(g.acquire("r", "H", shared));
    expect(second).toBeGreaterThan(first);
    expect(g.table.waitEdges()).toEqual([
      { waiter: "A", holder: "H", holderTag: `h${second}`, resource: "r", since: START + 10 },
    ]);

    // S holds shared and waits to upgrade ahead of B: B waits for S as a holder, not as a waiter.
    const h = new Group();
    const s = h.token(h.acquire("q", "S", shared));
    h.acquire("q", "T", shared);
    h.now += 1;
    expect(h.acquire("q", "S", { waitMs: 5000 }).result.type).toBe("waiting");
    h.now += 1;
    h.acquire("q", "B", { waitMs: 5000 });
    expect(h.table.waitEdges().filter((e) => e.waiter === "B" && e.holder === "S")).toEqual([
      { waiter: "B", holder: "S", holderTag: `h${s}`, resource: "q", since: START + 2 },
    ]);
  });

  it("apply parses the entry; no-ops and conf entries give null", () => {
    const t = new LockTable();
    const data = JSON.stringify({
      type: "acquire",
      resource: "r",
      owner: "A",
      mode: "shared",
      ttlMs: 10,
      waitMs: 0,
      now: 3,
    });
    expect(t.apply({ index: 4, term: 2, type: "normal", data })).toEqual({
      result: { type: "granted", resource: "r", owner: "A", mode: "shared", fencingToken: 4, expiresAt: 13 },
      events: [],
    });
    expect(t.apply({ index: 5, term: 2, type: "normal", data: "" })).toBeNull();
    expect(t.apply({ index: 6, term: 2, type: "conf", data: "{}" })).toBeNull();
    expect(() => t.apply({ index: 7, term: 2, type: "normal", data: '{"type":"steal","now":1}' })).toThrow(
      /unknown lock command/,
    );
  });
});

describe("withdrawing a wait (release by an owner that is waiting)", () => {
  it("removes the wait, ends it as withdrawn, and lets the waiters behind it through", () => {
    const g = new Group();
    g.acquire("r", "A", shared);
    expect(g.acquire("r", "X", { waitMs: 5000 }).result.type).toBe("waiting");
    expect(g.acquire("r", "B", { ...shared, waitMs: 5000 }).result.type).toBe("waiting"); // behind X (FIFO)
    const out = g.release("r", "X");
    expect(out.result).toEqual({ type: "withdrawn", resource: "r", owner: "X" });
    // X's held request ends without a grant; B, no longer behind an exclusive wait, joins A.
    expect(out.events).toContainEqual({
      type: "cancelled",
      resource: "r",
      owner: "X",
      mode: "exclusive",
      reason: "withdrawn",
      cycle: [],
    });
    expect(out.events).toContainEqual(expect.objectContaining({ type: "granted", owner: "B", mode: "shared" }));
    // X is never granted afterwards, even once everyone has left.
    g.release("r", "A");
    g.release("r", "B");
    expect(g.table.view("r", g.now)).toMatchObject({ holders: [], waiters: [] });
  });

  it("is still not-holder for an owner that neither holds nor waits", () => {
    const g = new Group();
    g.acquire("r", "A");
    expect(g.release("r", "Z").result.type).toBe("notHolder");
  });
});
