// The queue under faults, inside workerd: a shard's group leader crashes between a receive and its
// ack (the message comes back once its visibility runs out, via the new leader), then a seeded
// producer/consumer workload runs while leaders crash and peers are cut off. The history is then
// checked: every accepted message was delivered, no acked message came back, keys kept their order.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { groupKey } from "../../shared/queue/placement";
import { Rand } from "../../shared/raft/rand";
import { groupOf } from "../../workers/groups";
import { call, clusterGroups, get, injectFault, PEERS, post, ready, settled, sleep, waitFor } from "./client";

/** QUEUE_SHARDS is not set for the tests: the Worker's default. */
const SHARDS = 8;

type Reply = Awaited<ReturnType<typeof call>>;

interface Received {
  id: string;
  body: unknown;
  key?: string;
  receipt: string;
  attempts: number;
}

const receiveRaw = (queue: string, body: Record<string, unknown>) => post(`/v1/queues/${queue}/receive`, body);
const ackRaw = (queue: string, receipts: string[]) => post(`/v1/queues/${queue}/ack`, { receipts });

/** The group (number) holding `shard` of `queue`. */
const groupOfShard = (queue: string, shard: number) => groupOf(env, groupKey(queue, shard));

/** The current leader ("p2") of group `g`, once there is one (optionally: not `not`). */
async function leaderOf(group: number, timeoutMs = 10_000, not?: string): Promise<string> {
  const name = `g${group}`;
  return waitFor(
    async () => {
      const leader = (await clusterGroups()).find((x) => x.group === name)?.leader ?? undefined;
      return leader !== undefined && leader !== not ? leader : undefined;
    },
    timeoutMs,
    `a leader of ${name}${not ? ` other than ${not}` : ""}`,
  );
}

beforeAll(ready, 20_000);

// ---------------------------------------------------------------------------------------------

describe("queue: crash the leader of a shard's group between receive and ack", () => {
  it("redelivers after the visibility runs out, via the new leader; the old receipt is stale; nothing is lost", async () => {
    const queue = "crashq";
    const VIS = 2000;
    // A keyed pair (same shard, strictly in order) and a few unkeyed messages spread over shards.
    const sent = await post(`/v1/queues/${queue}/messages`, {
      messages: [
        { id: "first", key: "order-7", body: { n: 1 } },
        { id: "second", key: "order-7", body: { n: 2 } },
        ...Array.from({ length: 6 }, (_, i) => ({ id: `loose-${i}`, body: { loose: i } })),
      ],
    });
    expect(sent.status).toBe(200);
    const shardOfId = new Map<string, number>(
      sent.json.messages.map((m: { id: string; shard: number }) => [m.id, m.shard]),
    );
    const shard = shardOfId.get("first") as number;
    expect(shardOfId.get("second")).toBe(shard);
    const group = groupOfShard(queue, shard);
    const old = await leaderOf(group);

    // Receive everything that is deliverable: all but "second", which waits behind "first".
    const firstCall = new Map<string, number>();
    const firstReceipt = new Map<string, string>();
    const expected = ["first", ...Array.from({ length: 6 }, (_, i) => `loose-${i}`)];
    await waitFor(
      async () => {
        const t0 = Date.now();
        const r = await receiveRaw(queue, { max: 100, visibilityMs: VIS });
        expect(r.status).toBe(200);
        for (const m of r.json.messages as Received[]) {
          expect(m.id).not.toBe("second");
          expect(firstCall.has(m.id)).toBe(false); // invisible while in flight
          expect(m.attempts).toBe(1);
          firstCall.set(m.id, t0);
          firstReceipt.set(m.id, m.receipt);
        }
        return firstCall.size === expected.length ? true : undefined;
      },
      1500,
      "every deliverable message once",
    );
    expect([...firstCall.keys()].sort()).toEqual([...expected].sort());

    // Crash the leader before acking anything; the group elects another.
    expect((await post(`/v1/admin/peers/${old}/crash`)).status).toBe(200);
    const fresh = await leaderOf(group, 10_000, old);
    expect(fresh).not.toBe(old);

    // Everything comes back with attempts 2, never before its visibility ran out; "second" stays
    // blocked behind "first" until "first" is acked.
    const second = new Map<string, Received>();
    await waitFor(
      async () => {
        const r = await receiveRaw(queue, { max: 100, visibilityMs: 10_000, waitMs: 500 });
        const back = Date.now();
        expect(r.status).toBe(200);
        for (const m of r.json.messages as Received[]) {
          expect(m.id).not.toBe("second");
          expect(second.has(m.id)).toBe(false);
          expect(m.attempts).toBe(2);
          expect(back - (firstCall.get(m.id) as number)).toBeGreaterThanOrEqual(VIS);
          second.set(m.id, m);
        }
        return second.size === expected.length ? true : undefined;
      },
      15_000,
      "every message to be delivered again",
    );
    // The leader of that group is still not the crashed peer: the redelivery came through the new one.
    expect(await leaderOf(group)).not.toBe(old);

    // The first delivery's receipt is stale; the second's acks.
    expect((await ackRaw(queue, [firstReceipt.get("first") as string])).json).toEqual({ acked: 0 });
    const acked = await ackRaw(
      queue,
      [...second.values()].map((m) => m.receipt),
    );
    expect(acked.status).toBe(200);
    expect(acked.json).toEqual({ acked: expected.length });

    // Now "second" is deliverable (its first delivery).
    const next = await waitFor(
      async () => {
        const r = await receiveRaw(queue, { max: 100, visibilityMs: 10_000, waitMs: 500 });
        expect(r.status).toBe(200);
        const msgs = r.json.messages as Received[];
        for (const m of msgs) expect(m.id).toBe("second");
        return msgs[0];
      },
      5000,
      "the second keyed message",
    );
    expect(next).toMatchObject({ id: "second", key: "order-7", body: { n: 2 }, attempts: 1 });
    expect((await ackRaw(queue, [next.receipt])).json).toEqual({ acked: 1 });

    // Restart the crashed peer; it catches up, and nothing acked comes back.
    expect((await post(`/v1/admin/peers/${old}/restart`)).status).toBe(200);
    expect(await settled(15_000)).toBe(true);
    const stats = await get(`/v1/queues/${queue}`);
    expect(stats.status).toBe(200);
    expect(stats.json).toMatchObject({ visible: 0, inflight: 0, delayed: 0, dlq: 0 });
    const after = await receiveRaw(queue, { max: 100, waitMs: 300 });
    expect(after.json.messages).toEqual([]);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

const SEED = 0x0e0e_5eed;
/** Producers and consumers start nothing new after this long. */
const RUN_MS = 16_000;
/** Producers stop after this many messages in all. */
const MAX_MESSAGES = 900;
const PRODUCERS = 3;
const CONSUMERS = 3;
const KEYS = ["k0", "k1", "k2", "k3"];
/** A reply slower than this counts as lost (its outcome unknown). The Worker gives up after ~4 s per group. */
const CLIENT_TIMEOUT_MS = 20_000;
/** A producer that cannot get one batch accepted for this long fails the test. */
const SEND_GIVE_UP_MS = 30_000;
const DRAIN_MS = 40_000;
/** No dead-lettering during the run: a message leaves the queue only by an ack. */
const MAX_ATTEMPTS = 1000;

interface SentMsg {
  id: string;
  producer: number;
  n: number;
  key?: string;
  /** The batch's first attempt started (logical clock) and its 200 came back. */
  sendCall: number;
  sendReturn: number;
  /** Index of its batch in its producer's sequence. */
  batch: number;
}

interface DeliveryObs {
  call: number;
  return: number;
  attempts: number;
  receipt: string;
  consumer: string;
}

interface AckObs {
  call: number;
  return: number;
  receipts: string[];
  /** undefined: no answer or 503 (outcome unknown). */
  acked: number | undefined;
}

describe("queue workload under faults", () => {
  it("delivers every accepted message, never an acked one again, keys in order, while leaders crash and peers are cut off", async () => {
    const started = Date.now();
    const deadline = started + RUN_MS;
    const queue = "wl";
    const rand = new Rand(SEED);
    let clock = 0;
    let stopConsumers = false;

    const sent = new Map<string, SentMsg>();
    const deliveries = new Map<string, DeliveryObs[]>();
    const acks: AckObs[] = [];
    const bodies = new Map<string, unknown>();
    const unexpected: string[] = [];
    const faults: string[] = [];
    const counts = {
      batches: 0,
      sendAttempts: 0,
      send503: 0,
      sendLost: 0,
      receives: 0,
      receiveUnknown: 0,
      emptyReceives: 0,
      deliveries: 0,
      redeliveries: 0,
      notAcked: 0,
      ackCalls: 0,
      ackUnknown: 0,
      ackStale: 0,
      clientTimeouts: 0,
      drainDeliveries: 0,
    };

    /** One request, or undefined after CLIENT_TIMEOUT_MS or a network error (outcome unknown). */
    async function send(method: string, path: string, body?: unknown): Promise<Reply | undefined> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), CLIENT_TIMEOUT_MS);
      });
      try {
        const reply = await Promise.race([call(method, path, body), timeout]);
        if (reply === undefined) counts.clientTimeouts++;
        return reply;
      } catch {
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    }

    // Nothing is dead-lettered: a message then leaves the queue only through one of our acks.
    await waitFor(
      async () => {
        const r = await call("PUT", `/v1/queues/${queue}`, { maxAttempts: MAX_ATTEMPTS });
        return r.status === 200 ? r : undefined;
      },
      15_000,
      "queue config",
    );

    // ---- producers ------------------------------------------------------------------------
    let totalMessages = 0;
    async function producer(p: number, r: Rand): Promise<void> {
      let n = 0;
      for (let batch = 0; Date.now() < deadline && totalMessages < MAX_MESSAGES; batch++) {
        const size = Math.min(r.range(1, 5), MAX_MESSAGES - totalMessages);
        totalMessages += size;
        const msgs = Array.from({ length: size }, () => {
          const id = `p${p}-${n}`;
          const key = r.chance(1, 3) ? r.pick(KEYS) : undefined;
          const body = { p, n, pad: "x".repeat(r.int(40)) };
          n++;
          bodies.set(id, body);
          return { id, body, ...(key !== undefined ? { key } : {}) };
        });
        counts.batches++;
        const sendCall = ++clock;
        const giveUp = Date.now() + SEND_GIVE_UP_MS;
        // Retry the same batch (same ids) until it is accepted: deduplication makes that safe.
        for (;;) {
          counts.sendAttempts++;
          const reply = await send("POST", `/v1/queues/${queue}/messages`, { messages: msgs });
          if (reply?.status === 200) {
            const sendReturn = ++clock;
            const got = reply.json?.messages as { id: string; shard: number }[] | undefined;
            if (!Array.isArray(got) || got.length !== msgs.length || got.some((m, i) => m.id !== msgs[i]?.id)) {
              unexpected.push(`send ${JSON.stringify(msgs.map((m) => m.id))} -> ${JSON.stringify(reply.json)}`);
            }
            for (const m of msgs) {
              sent.set(m.id, { id: m.id, producer: p, n: m.body.n, key: m.key, sendCall, sendReturn, batch });
            }
            break;
          }
          if (reply === undefined) counts.sendLost++;
          else if (reply.status === 503) counts.send503++;
          else unexpected.push(`send ${msgs[0]?.id}.. -> ${reply.status} ${JSON.stringify(reply.json)}`);
          if (Date.now() > giveUp) {
            unexpected.push(`send of batch ${msgs[0]?.id}.. not accepted within ${SEND_GIVE_UP_MS} ms`);
            return;
          }
          await sleep(r.range(50, 250));
        }
        await sleep(r.range(10, 120));
      }
    }

    // ---- consumers ------------------------------------------------------------------------
    /** One receive, recorded; the messages, or undefined when the outcome is unknown. */
    async function receive(consumer: string, body: Record<string, unknown>): Promise<Received[] | undefined> {
      counts.receives++;
      const callAt = ++clock;
      const reply = await send("POST", `/v1/queues/${queue}/receive`, { ...body, consumer });
      const returnAt = ++clock;
      if (reply === undefined || reply.status === 503) {
        counts.receiveUnknown++;
        return undefined;
      }
      if (reply.status !== 200 || !Array.isArray(reply.json?.messages)) {
        unexpected.push(`receive -> ${reply.status} ${JSON.stringify(reply.json)}`);
        return undefined;
      }
      const msgs = reply.json.messages as Received[];
      if (msgs.length === 0) counts.emptyReceives++;
      const ids = new Set<string>();
      for (const m of msgs) {
        if (ids.has(m.id)) unexpected.push(`one receive delivered ${m.id} twice`);
        ids.add(m.id);
        const list = deliveries.get(m.id) ?? [];
        list.push({ call: callAt, return: returnAt, attempts: m.attempts, receipt: m.receipt, consumer });
        deliveries.set(m.id, list);
        counts.deliveries++;
        if (m.attempts > 1) counts.redeliveries++;
        if (JSON.stringify(m.body) !== JSON.stringify(bodies.get(m.id))) {
          unexpected.push(`${m.id} delivered with body ${JSON.stringify(m.body)}`);
        }
      }
      return msgs;
    }

    /** One ack call, recorded. */
    async function ack(receipts: string[]): Promise<void> {
      if (receipts.length === 0) return;
      counts.ackCalls++;
      const callAt = ++clock;
      const reply = await send("POST", `/v1/queues/${queue}/ack`, { receipts });
      const returnAt = ++clock;
      let acked: number | undefined;
      if (reply?.status === 200 && typeof reply.json?.acked === "number") {
        acked = reply.json.acked;
        if (reply.json.acked < receipts.length) counts.ackStale += receipts.length - reply.json.acked;
      } else if (reply === undefined || reply.status === 503) {
        counts.ackUnknown++;
      } else {
        unexpected.push(`ack -> ${reply.status} ${JSON.stringify(reply.json)}`);
      }
      acks.push({ call: callAt, return: returnAt, receipts, acked });
    }

    async function consumer(c: number, r: Rand): Promise<void> {
      const name = `c${c}`;
      while (!stopConsumers && Date.now() < deadline) {
        const msgs = await receive(name, {
          max: r.range(1, 10),
          visibilityMs: r.range(1500, 3000),
          waitMs: r.pick([0, 0, 100, 250, 500]),
        });
        if (msgs === undefined) {
          await sleep(r.range(50, 200));
          continue;
        }
        if (msgs.length === 0) continue;
        await sleep(r.range(0, 40)); // "processing"
        const toAck: string[] = [];
        for (const m of msgs) {
          if (r.chance(1, 8))
            counts.notAcked++; // left to time out: delivered again later
          else toAck.push(m.receipt);
        }
        if (r.chance(1, 2)) await ack(toAck);
        else await Promise.all(toAck.map((receipt) => ack([receipt])));
      }
    }

    // ---- faults ---------------------------------------------------------------------------
    async function faultLoop(r: Rand): Promise<void> {
      await sleep(r.range(1000, 2000));
      const firstKinds = r.shuffle<"crash" | "partition">(["crash", "partition"]);
      while (Date.now() + 4000 < deadline) {
        const kind = firstKinds.shift() ?? r.pick<"crash" | "partition">(["crash", "partition"]);
        const shard = r.int(SHARDS);
        const group = groupOfShard(queue, shard);
        let leader: string | undefined;
        try {
          leader = await leaderOf(group, 5000);
        } catch {
          leader = undefined;
        }
        const holdMs = r.range(1000, 3000);
        const at = `+${Date.now() - started}ms`;
        const did = await injectFault(kind, leader, r, holdMs);
        faults.push(`${at} ${did} (leader of g${group}/shard ${shard}: ${leader ?? "?"}) ${holdMs}ms`);
        await settled(10_000);
        await sleep(r.range(200, 800));
      }
    }

    const faultErrors: string[] = [];
    const faulting = faultLoop(rand.fork()).catch((e: unknown) => {
      faultErrors.push(String(e));
    });
    const producers = Array.from({ length: PRODUCERS }, (_, i) => producer(i + 1, rand.fork()));
    const consumers = Array.from({ length: CONSUMERS }, (_, i) => consumer(i + 1, rand.fork()));
    await Promise.all(producers);
    await faulting;
    stopConsumers = true;
    await Promise.all(consumers);
    const workloadMs = Date.now() - started;
    const workloadDeliveries = counts.deliveries;

    // ---- heal, restart, drain -------------------------------------------------------------
    expect((await post("/v1/admin/heal")).status).toBe(200);
    for (const p of PEERS) expect((await post(`/v1/admin/peers/${p}/restart`)).status).toBe(200);
    expect(await settled(15_000)).toBe(true);

    const drainStarted = Date.now();
    let drained = false;
    let lastStats: unknown;
    let drainDone = false;
    async function drainer(name: string): Promise<void> {
      while (!drainDone && Date.now() < drainStarted + DRAIN_MS) {
        const msgs = await receive(name, { max: 100, visibilityMs: 10_000, waitMs: 300 });
        if (msgs !== undefined && msgs.length > 0) {
          counts.drainDeliveries += msgs.length;
          await ack(msgs.map((m) => m.receipt));
        } else if (msgs === undefined) {
          await sleep(100);
        }
      }
    }
    async function drainWatch(): Promise<void> {
      while (Date.now() < drainStarted + DRAIN_MS) {
        await sleep(500);
        const s = await get(`/v1/queues/${queue}`);
        lastStats = s.json;
        if (s.status === 200 && s.json.visible === 0 && s.json.inflight === 0 && s.json.delayed === 0) {
          drained = true;
          break;
        }
      }
      drainDone = true;
    }
    await Promise.all([drainer("d1"), drainer("d2"), drainWatch()]);
    const drainMs = Date.now() - drainStarted;

    // ---- checks ---------------------------------------------------------------------------
    const accepted = [...sent.values()];
    const neverDelivered = accepted.filter((m) => !deliveries.has(m.id)).map((m) => m.id);
    const strangers = [...deliveries.keys()].filter((id) => !sent.has(id) && !bodies.has(id));
    // Delivered but its send never got a 200 (a producer gave up): allowed, just not counted.
    const deliveredUnaccepted = [...deliveries.keys()].filter((id) => !sent.has(id) && bodies.has(id));

    // Receipt → message id, and the moments each message was certainly acked (an ack that
    // answered 200 acking every receipt it named).
    const idOfReceipt = new Map<string, string>();
    for (const [id, list] of deliveries) for (const d of list) idOfReceipt.set(d.receipt, id);
    const ackedAt = new Map<string, number>(); // the earliest such answer per id
    const ackCallsOf = new Map<string, number[]>(); // every ack call naming a receipt of the id
    for (const a of acks) {
      for (const receipt of a.receipts) {
        const id = idOfReceipt.get(receipt);
        if (id === undefined) continue;
        ackCallsOf.set(id, [...(ackCallsOf.get(id) ?? []), a.call]);
        if (a.acked === a.receipts.length) ackedAt.set(id, Math.min(ackedAt.get(id) ?? Infinity, a.return));
      }
    }

    // 1. No acked message delivered again: a delivery that started after an ack of it answered.
    const afterAck: string[] = [];
    for (const [id, at] of ackedAt) {
      for (const d of deliveries.get(id) ?? []) {
        if (d.call > at)
          afterAck.push(`${id}: acked at ${at}, delivered again [${d.call}, ${d.return}] to ${d.consumer}`);
      }
    }

    // 2. Attempts grow: a delivery that started after another of the same message returned has more attempts.
    const attemptsBackwards: string[] = [];
    for (const [id, list] of deliveries) {
      for (const a of list)
        for (const b of list)
          if (a.return < b.call && b.attempts <= a.attempts)
            attemptsBackwards.push(`${id}: attempts ${a.attempts} then ${b.attempts}`);
      if (new Set(list.map((d) => d.receipt)).size !== list.length) attemptsBackwards.push(`${id}: a receipt reused`);
    }

    // 3. Keys in order. Per producer and key, message n was sent before message n+1 (an earlier
    // batch answered before the next started, or earlier in the same batch: same shard, same entry).
    const chains = new Map<string, SentMsg[]>();
    for (const m of accepted) {
      if (m.key === undefined) continue;
      const k = `p${m.producer}/${m.key}`;
      chains.set(k, [...(chains.get(k) ?? []), m]);
    }
    const orderViolations: string[] = [];
    const strictViolations: string[] = [];
    let keyedPairs = 0;
    for (const [chain, list] of chains) {
      list.sort((a, b) => a.n - b.n);
      for (let i = 0; i + 1 < list.length; i++) {
        const a = list[i] as SentMsg;
        const b = list[i + 1] as SentMsg;
        if (!(a.batch === b.batch || a.sendReturn < b.sendCall)) {
          unexpected.push(`${chain}: ${a.id} and ${b.id} were sent concurrently (a producer is sequential)`);
          continue;
        }
        keyedPairs++;
        const da = deliveries.get(a.id) ?? [];
        const db = deliveries.get(b.id) ?? [];
        if (db.length === 0) continue;
        const firstA = Math.min(...da.map((d) => d.call));
        const firstB = Math.min(...db.map((d) => d.return));
        // Per-key order: b's first delivery never (certainly) before a's first delivery.
        if (da.length === 0 || firstB < firstA) {
          orderViolations.push(
            `${chain}: ${b.id} first delivered (returned ${firstB}) before ${a.id} (called ${firstA})`,
          );
        }
        // The design's stricter rule (shard.ts): b is deliverable only once a has left the shard,
        // and with no dead-lettering only our ack can remove a. So every delivery of b returned
        // after some ack call naming a receipt of a was made.
        const firstAckCallA = Math.min(...(ackCallsOf.get(a.id) ?? [Infinity]));
        for (const d of db) {
          if (d.return < firstAckCallA) {
            strictViolations.push(
              `${chain}: ${b.id} delivered [${d.call}, ${d.return}] before any ack of ${a.id} (first at ${firstAckCallA})`,
            );
          }
        }
      }
    }

    const final = await get(`/v1/queues/${queue}`);
    const distinctDelivered = accepted.filter((m) => deliveries.has(m.id)).length;
    console.log(
      [
        `queue workload seed ${SEED}: ${accepted.length} messages accepted in ${counts.batches} batches ` +
          `(${accepted.filter((m) => m.key !== undefined).length} keyed, ${keyedPairs} ordered keyed pairs checked)`,
        `  sends: ${counts.sendAttempts} attempts, ${counts.send503} answered 503, ${counts.sendLost} without answer`,
        `  receives: ${counts.receives} (${counts.emptyReceives} empty, ${counts.receiveUnknown} unknown); ` +
          `deliveries ${counts.deliveries} (${workloadDeliveries} in the workload, ${counts.drainDeliveries} in the drain), ` +
          `${counts.redeliveries} redeliveries, ${distinctDelivered} distinct accepted ids`,
        `  acks: ${counts.ackCalls} calls (${counts.ackUnknown} unknown), ${counts.ackStale} stale receipts, ` +
          `${counts.notAcked} deliveries deliberately not acked, ${ackedAt.size} ids certainly acked`,
        `  client timeouts ${counts.clientTimeouts}; delivered but never accepted: ${deliveredUnaccepted.length}`,
        `  faults (${faults.length}): ${faults.join("; ")}`,
        `  workload ${workloadMs}ms, drain ${drainMs}ms (${drained ? "empty" : `NOT empty: ${JSON.stringify(lastStats)}`}), ` +
          `total ${Date.now() - started}ms`,
      ].join("\n"),
    );

    expect(faultErrors).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(drained).toBe(true);
    expect(final.json).toMatchObject({ visible: 0, inflight: 0, delayed: 0, dlq: 0 });
    expect(strangers).toEqual([]);
    expect(neverDelivered).toEqual([]);
    expect(afterAck).toEqual([]);
    expect(attemptsBackwards).toEqual([]);
    expect(orderViolations).toEqual([]);
    expect(strictViolations).toEqual([]);
    expect(faults.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThanOrEqual(200);
    expect(keyedPairs).toBeGreaterThan(20);
    expect(counts.redeliveries).toBeGreaterThan(0);
    expect(ackedAt.size).toBeGreaterThan(accepted.length / 2);
  }, 120_000);
});
