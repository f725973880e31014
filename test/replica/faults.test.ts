/**
 * The host-loop faults of issue 8, each reproduced on a small cluster of real group cores
 * (test/replica/harness.ts): each test failed before its fix.
 */
import { describe, expect, it } from "vitest";
import type { LockReply } from "../../shared/locks/lock-service.js";
import type { QueueReply } from "../../shared/queue/queue-service.js";
import { message } from "../../shared/raft/index.js";
import { encodeCommand } from "../../shared/replica/dedup.js";
import { CommandFailedError, NotLeaderError, OutcomeUnknownError } from "../../shared/replica/replica.js";
import { TestCluster } from "./harness.js";

const acquire = (owner: string, ttlMs = 10_000, waitMs = 0) =>
  ({ op: "acquire", resource: "r", owner, mode: "exclusive", ttlMs, waitMs }) as const;

describe("fault 7: a paused leader", () => {
  it("does not abdicate in the alarm that ends a pause, before its followers' replies are stepped", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    await c.advance(95); // mid-way through a check-quorum round
    const term = c.core(leader).replica.raw.raft.term;
    // A pause of the whole process (one workerd thread runs every peer): nothing runs for 1 s.
    for (const p of c.peers.values()) p.paused = true;
    c.now += 1000;
    for (const p of c.peers.values()) p.paused = false;
    // The leader's late alarm runs first, while its followers' replies are still waiting.
    c.core(leader).replica.tick(c.clock(leader));
    expect(c.core(leader).replica.isLeader()).toBe(true);
    expect(c.core(leader).replica.raw.raft.term).toBe(term);
  });
});

describe("fault 10: a command that cannot be applied", () => {
  it("becomes an error for that entry; the group goes on and nothing is applied twice", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    const r = c.core(leader).replica;
    const now = r.groupNow(c.clock(leader));
    const bogus = { type: "bogus", now }; // passes no route's validation: the state machine throws
    const bad = r.propose(encodeCommand("bad", bogus));
    const good = c.core(leader).locks.handle(acquire("a"), "req-a");
    const [badOut, goodOut] = [await c.run(bad), await c.run(good)];
    expect(badOut.done).toBe(false);
    expect(!badOut.done && badOut.error).toBeInstanceOf(CommandFailedError);
    expect(goodOut.done && (goodOut.value as LockReply).type).toBe("granted");
    // The group still commits, and every replica applied the acquire exactly once.
    const later = await c.run(c.core(leader).locks.handle(acquire("b"), "req-b"));
    expect(later.done && (later.value as LockReply).type).toBe("conflict");
    await c.advance(300);
    for (const id of [1, 2, 3])
      expect(
        c
          .core(id)
          .state.locks.view("r", 0)
          .holders.map((h) => h.owner),
      ).toEqual(["a"]);
    expect(c.errors).toEqual([]);
  });
});

describe("fault 11: a snapshot installed over pending proposals", () => {
  it("rejects a pending membership change whose index the installed snapshot covers", async () => {
    const c = new TestCluster(3, { compactEvery: 5 });
    const old = await c.elect();
    const others = [1, 2, 3].filter((id) => id !== old);
    for (const o of others) c.cut.add(`${old}>${o}`).add(`${o}>${old}`);
    const change = c.core(old).replica.changeMembership({ type: "addLearner", node: 4 });
    let settled: unknown;
    change.then(
      () => {
        settled = "resolved";
      },
      (e) => {
        settled = e;
      },
    );
    // The old leader stays cut off (and silent: paused) while the others move on and compact.
    c.peer(old).paused = true;
    const next = await c.elect();
    for (let i = 0; i < 60; i++) await c.run(c.core(next).locks.handle(acquire(`o${i}`), `req-${i}`));
    expect(c.peer(next).log.firstIndex()).toBeGreaterThan(5);
    c.peer(old).paused = false;
    c.cut.clear();
    await c.advance(3000);
    // It got the snapshot: its pending change is settled, and the slot for promotions is free.
    expect(c.core(old).replica.raw.raft.role).toBe("follower");
    expect(settled).toBeInstanceOf(OutcomeUnknownError);
  });
});

describe("fault 13: a crashed peer", () => {
  it("does nothing at all once crashed: work scheduled before the crash neither writes nor sends", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    await c.advance(50);
    const r = c.core(leader).replica;
    const p = c.peer(leader);
    const lastIndex = p.log.lastIndex();
    // Schedule a flush (a read) and a proposal, then crash before the deferred work runs.
    r.read().catch(() => undefined);
    const write = c.core(leader).locks.handle(acquire("z"), "req-z");
    write.catch(() => undefined);
    await Promise.resolve();
    const sent = p.sent;
    c.crash(leader);
    await c.settle();
    expect(p.sent).toBe(sent);
    expect(p.log.lastIndex()).toBe(lastIndex);
  });
});

describe("fault 5: a new leader and an acknowledged enqueue", () => {
  it("never answers an empty receive for a message whose enqueue was acknowledged", async () => {
    const c = new TestCluster(3);
    const old = await c.elect();
    const enq = await c.run(
      c.core(old).queues.handle({ op: "enqueue", queue: "q", shard: 0, messages: [{ id: "m1", body: "hello" }] }, "e1"),
    );
    expect(enq.done && (enq.value as QueueReply).type).toBe("enqueued");
    // Followers learn the commit a heartbeat later: crash the leader before that heartbeat.
    c.crash(old);
    await c.advance(3000, () => c.leader() !== undefined);
    const next = c.leader();
    expect(next).toBeDefined();
    // Ask the new leader at once, before its term's first entry is applied.
    const receive = c.core(next as number).queues.handle({ op: "receive", queue: "q", shards: [0], max: 10 }, "r1");
    const out = await c.run(receive);
    expect(out.done).toBe(true);
    const reply = out.done ? (out.value as QueueReply) : undefined;
    expect(reply?.type === "deliveries" && reply.messages.map((m) => m.id)).toEqual(["m1"]);
  });

  it("a retried receive answers with the deliveries its first try committed", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    const q = c.core(leader).queues;
    await c.run(q.handle({ op: "enqueue", queue: "q", shard: 0, messages: [{ id: "m1", body: 1 }] }, "e1"));
    const first = await c.run(q.handle({ op: "receive", queue: "q", shards: [0], max: 10 }, "r1"));
    const retry = await c.run(q.handle({ op: "receive", queue: "q", shards: [0], max: 10 }, "r1"));
    const ids = (o: typeof first) =>
      o.done && (o.value as QueueReply).type === "deliveries"
        ? (o.value as Extract<QueueReply, { type: "deliveries" }>).messages.map((m) => m.receipt)
        : undefined;
    expect(ids(first)?.length).toBe(1);
    expect(ids(retry)).toEqual(ids(first));
  });
});

describe("fault 9: a replayed acquire whose first answer was waiting", () => {
  it("answers from the request's state now: the grant it got meanwhile", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    const locks = c.core(leader).locks;
    await c.run(locks.handle(acquire("a", 10_000), "req-a"));
    const waiting = c.run(locks.handle(acquire("b", 10_000, 20_000), "req-b"));
    await c.advance(100);
    await c.run(locks.handle({ op: "release", resource: "r", owner: "a" }, "rel-a"));
    const first = await waiting;
    expect(first.done && (first.value as LockReply).type).toBe("granted");
    // The Worker did not hear that answer and retries the same request (same id).
    const retry = await c.run(locks.handle(acquire("b", 10_000, 20_000), "req-b"), 1000);
    expect(retry.done && (retry.value as LockReply).type).toBe("granted");
    const token = (o: typeof first) => (o.done ? (o.value as { fencingToken?: number }).fencingToken : undefined);
    expect(token(retry)).toBe(token(first));
  });
});

describe("fault 6: a new leader whose clock is off", () => {
  /** Elects a leader, then sets every other peer's clock `offsetMs` away from it (as the clock route does). */
  async function skewed(offsetMs: number) {
    const c = new TestCluster(3);
    const first = await c.elect();
    for (const p of c.peers.values()) {
      if (p.id === first) continue;
      p.offsetMs = offsetMs;
      p.core?.replica.clockStepped(offsetMs);
    }
    return { c, first };
  }

  /** Real time at which `owner` is first granted the lock, trying every 100 ms at the leader. */
  async function firstGrant(c: TestCluster, owner: string, until: number): Promise<number | undefined> {
    for (let n = 0; c.now < until; n++) {
      const leader = c.serving();
      if (leader !== undefined) {
        const out = await c.run(c.core(leader).locks.handle(acquire(owner, 10_000), `${owner}-${n}`), 1000);
        if (out.done && (out.value as LockReply).type === "granted") return c.now;
      }
      await c.advance(100);
    }
    return undefined;
  }

  for (const offsetMs of [6000, -6000]) {
    it(`never ends a lease early, nor lengthens it by more than offset + election, with the new leader ${offsetMs > 0 ? "ahead" : "behind"}`, async () => {
      const { c, first } = await skewed(offsetMs);
      const start = c.now; // the client sends its acquire now: the lease runs 10 s from here at the earliest
      const a = await c.run(c.core(first).locks.handle(acquire("a", 10_000), "req-a"));
      expect(a.done && (a.value as LockReply).type).toBe("granted");
      c.crash(first);
      const granted = await firstGrant(c, "b", start + 30_000);
      expect(granted).toBeDefined();
      expect(granted as number).toBeGreaterThanOrEqual(start + 10_000);
      expect(granted as number).toBeLessThanOrEqual(start + 10_000 + Math.abs(offsetMs) + 2000);
    });

    it(`never ends a visibility timeout early with the new leader ${offsetMs > 0 ? "ahead" : "behind"}`, async () => {
      const { c, first } = await skewed(offsetMs);
      const q = c.core(first).queues;
      await c.run(q.handle({ op: "enqueue", queue: "q", shard: 0, messages: [{ id: "m", body: 1 }] }, "e"));
      const start = c.now;
      const got = await c.run(q.handle({ op: "receive", queue: "q", shards: [0], max: 1, visibilityMs: 10_000 }, "r0"));
      expect(got.done && (got.value as Extract<QueueReply, { type: "deliveries" }>).messages.length).toBe(1);
      c.crash(first);
      let again: number | undefined;
      for (let n = 1; again === undefined && c.now < start + 30_000; n++) {
        const leader = c.serving();
        if (leader !== undefined) {
          const out = await c.run(
            c.core(leader).queues.handle({ op: "receive", queue: "q", shards: [0], max: 1 }, `r${n}`),
            1000,
          );
          if (out.done && (out.value as Extract<QueueReply, { type: "deliveries" }>).messages.length > 0) again = c.now;
        }
        await c.advance(100);
      }
      expect(again).toBeDefined();
      expect(again as number).toBeGreaterThanOrEqual(start + 10_000);
    });
  }
});

describe("fault 3: the exactly-once memory", () => {
  it("keeps no message bodies: 20,000 1-KB messages sent, received and acked leave a small snapshot", async () => {
    const { createGroupMachine } = await import("../../shared/group/core.js");
    const { machine } = createGroupMachine();
    const body = "x".repeat(1024);
    let index = 0;
    let at = 1_700_000_000_000;
    const apply = (id: string, cmd: object) =>
      machine.apply({
        term: 1,
        index: ++index,
        type: "normal",
        data: encodeCommand(id, { ...cmd, now: at }),
      });
    for (let i = 0; i < 20_000; i++) {
      at += 1;
      apply(`e${i}:0`, { type: "enqueue", queue: "q", shard: 0, messages: [{ id: `m${i}`, body }] });
      const got = apply(`r${i}:0`, { type: "receive", queue: "q", shard: 0, max: 1 });
      const receipt = got?.kind === "queue" && got.result.type === "received" ? got.result.messages[0]?.receipt : "";
      apply(`a${i}:0`, { type: "ack", queue: "q", shard: 0, receipts: [receipt] });
    }
    const size = machine.snapshot().length;
    // 20 MB of bodies went through (the whole-reply memory kept 24 MB of them); what is left is
    // three request records, the message id and a receipt per message: under 600 bytes each.
    expect(size).toBeLessThan(20_000 * 600);
    expect(machine.snapshot()).not.toContain(body.slice(0, 100));
    // Once the windows have passed (request ids 2 minutes, message ids 5), the memory is empty
    // again: bounded by time, not by a count.
    at += 6 * 60_000;
    apply("later:0", { type: "ack", queue: "q", shard: 0, receipts: [] });
    expect(machine.snapshot().length).toBeLessThan(100_000);
  });
});

describe("a leader deposed by a message it steps", () => {
  it("fails its pending reads and serving waiters at once, and never serves them in a later term", async () => {
    const c = new TestCluster(3);
    const old = await c.elect();
    const r = c.core(old).replica;
    const other = old === 1 ? 2 : 1;
    let read: unknown = "pending";
    r.read().then(
      () => {
        read = "resolved";
      },
      (e) => {
        read = e;
      },
    );
    // A heartbeat of a later term, stepped inside receive(): it deposes the leader there.
    const term = r.raw.raft.term + 1;
    r.receive(other, [message({ type: "heartbeat", from: other, to: old, term })], c.clock(old));
    await Promise.resolve();
    expect(r.isLeader()).toBe(false);
    expect(read).toBeInstanceOf(NotLeaderError);
  });
});

describe("a request its caller gave up on", () => {
  it("is never proposed once the peer answered timeout, even when the leader serves later", async () => {
    const c = new TestCluster(3);
    await c.advance(5000, () => c.leader() !== undefined);
    const leader = c.leader() as number;
    // Elected, but its term's first entry cannot commit yet: it cannot serve.
    for (const o of [1, 2, 3]) if (o !== leader) c.cut.add(`${leader}>${o}`).add(`${o}>${leader}`);
    expect(c.core(leader).replica.servesReads()).toBe(false);
    const gaveUp = new AbortController();
    const out = c.run(c.core(leader).locks.handle(acquire("late"), "req-late", gaveUp.signal), 3000);
    gaveUp.abort(); // the peer's guard answered "timeout" and the Worker answered 503
    c.cut.clear();
    expect((await out).done).toBe(false);
    await c.advance(500);
    for (const id of [1, 2, 3]) expect(c.core(id).state.locks.view("r", 0).holders).toEqual([]);
  });
});
