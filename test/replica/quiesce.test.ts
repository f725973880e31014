/**
 * The replica's side of quiescence (shared/replica/replica.ts): when it lets its leader quiesce,
 * what wakes it, and that a woken leader answers from local state only once a majority has
 * answered it again.
 */
import { describe, expect, it } from "vitest";
import type { LockCommand } from "../../shared/locks/types.js";
import { encodeCommand } from "../../shared/replica/dedup.js";
import { TestCluster } from "./harness.js";

const acquire = (owner: string, ttlMs = 0) => {
  const cmd: LockCommand = { type: "acquire", resource: "r", owner, mode: "exclusive", ttlMs, waitMs: 0, now: 0 };
  return encodeCommand(`req-${owner}`, cmd);
};

describe("Replica quiescence", () => {
  it("is off unless asked for", async () => {
    const c = new TestCluster(3);
    await c.elect();
    await c.advance(2000);
    for (const id of [1, 2, 3]) expect(c.core(id).replica.isQuiesced()).toBe(false);
  });

  it("an idle group quiesces; nextWakeup is +Infinity; a quiesced leader is anchored but does not serve until woken and confirmed", async () => {
    const c = new TestCluster(3, { quiesce: true });
    const l = await c.elect();
    await c.advance(1000);
    for (const id of [1, 2, 3]) {
      expect(c.core(id).replica.isQuiesced()).toBe(true);
      expect(c.core(id).replica.nextWakeup()).toBe(Number.POSITIVE_INFINITY);
    }
    const r = c.core(l).replica;
    expect(r.anchored()).toBe(true);
    expect(r.servesReads()).toBe(false);
    let served = false;
    void r.whenServing().then(() => {
      served = true;
    });
    expect(r.isQuiesced()).toBe(false); // whenServing woke it
    await c.settle();
    expect(served).toBe(true);
    expect(r.servesReads()).toBe(true);
  });

  it("a woken leader cut off from everyone never serves: it steps down instead", async () => {
    const c = new TestCluster(3, { quiesce: true });
    const l = await c.elect();
    await c.advance(1000);
    for (const o of [1, 2, 3]) if (o !== l) c.cut.add(`${l}>${o}`).add(`${o}>${l}`);
    const r = c.core(l).replica;
    const out = await c.run(r.whenServing(), 2000);
    expect(out.done).toBe(false);
    expect(r.isLeader()).toBe(false);
  });

  it("does not quiesce while a proposal is in flight, and a proposal wakes a quiet leader", async () => {
    const c = new TestCluster(3, { quiesce: true });
    const l = await c.elect();
    await c.advance(1000);
    const others = [1, 2, 3].filter((id) => id !== l);
    for (const o of others) c.cut.add(`${l}>${o}`);
    const p = c.core(l).replica.propose(acquire("a"));
    expect(c.core(l).replica.isQuiesced()).toBe(false);
    await c.advance(500);
    expect(c.core(l).replica.isQuiesced()).toBe(false); // not committed: stays awake
    c.cut.clear();
    const out = await c.run(p);
    expect(out.done).toBe(true);
    await c.advance(1000);
    for (const id of [1, 2, 3]) expect(c.core(id).replica.isQuiesced()).toBe(true);
  });

  it("a lease pending keeps the followers' quiet bounded (they wake an election timeout after the deadline)", async () => {
    const c = new TestCluster(3, { quiesce: true });
    const l = await c.elect();
    const req = { op: "acquire", resource: "r", owner: "a", mode: "exclusive", ttlMs: 60_000, waitMs: 0 } as const;
    const out = await c.run(c.core(l).locks.handle(req, "req-a"));
    expect(out.done).toBe(true);
    const f = [1, 2, 3].find((id) => id !== l) as number;
    const fr = c.core(f).replica;
    await c.advance(1000, () => fr.isQuiesced());
    expect(fr.isQuiesced()).toBe(true);
    // It wakes by its own timer at the latest a time stamp (FRESH_MS) plus an election timeout away.
    expect(fr.nextWakeup() - c.clock(f)).toBeLessThanOrEqual(1000 + 10 * 10 + 10);
    expect(c.core(l).nextWakeup()).toBeDefined();
  });
});
