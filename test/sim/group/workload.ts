/**
 * The clients, as async loops over simulated time: lock clients (exclusive or shared, TTLs of
 * 0.8–5 s, waits, renewals, re-acquires and mode changes, a second lock while holding one, some
 * locks left to expire), queue producers (batches of 1–10, with and without key and id, bodies
 * with astral characters; a 503 is answered by resending the same batch with the returned ids)
 * and consumers (receive with max and visibility, sometimes long polls; ack most, nack some,
 * forget some so their visibility runs out) and cache clients (GET, PUT in both propagation modes
 * and DELETE on random nodes, unique values). Each client talks to the Worker over one more hop
 * whose reply can be lost. What clients send and see goes to the checkers.
 */
import type { LockReply, LockRequest } from "../../../shared/locks/lock-service.js";
import type { LockMode } from "../../../shared/locks/types.js";
import type { Delivery } from "../../../shared/queue/types.js";
import type { Rand } from "../../../shared/raft/index.js";
import { randomText } from "../../helpers/random-text.js";
import type { SimCacheNode } from "./cache.js";
import type { CacheChecker } from "./cache-check.js";
import type { LinearLocks } from "./linear.js";
import type { LockChecker } from "./locks.js";
import type { QueueChecker } from "./queues.js";
import type { OutMessage, SimWorker } from "./worker.js";
import type { World } from "./world.js";

export type Phase = "faults" | "drain" | "done";

export interface WorkloadConfig {
  lockClients: number;
  resources: string[];
  producers: number;
  consumers: number;
  queues: string[];
  keys: string[];
  /** Per mille of client ↔ Worker replies lost (during the faults). */
  httpLossPerMille: number;
  /** Per mille of lock requests sent with an Idempotency-Key (resent with it when the reply is lost). */
  idempotencyPerMille: number;
  /** Clients of the linearizability check (linear.ts), two owners each. */
  linearClients: number;
  /** Cache clients: GET, PUT (both propagations) and DELETE of `cacheKeys` on random nodes. */
  cacheClients: number;
  cacheKeys: string[];
}

export interface WorkloadEnv {
  world: World;
  rand: Rand;
  worker: SimWorker;
  locks: LockChecker;
  linear: LinearLocks;
  queues: QueueChecker;
  cache: CacheChecker;
  cacheNodes: readonly SimCacheNode[];
  phase: () => Phase;
  /** While true, clients start nothing new (a quiet spell: idle groups quiesce). */
  quiet?: () => boolean;
  log: (line: () => string) => void;
  onError: (e: unknown) => void;
}

export class Workload {
  /** Lock clients still running (they stop at the drain, after releasing). */
  running = 0;
  private keySeq = 0;
  counts = {
    keyedResends: 0,
    lockOps: 0,
    batches: 0,
    resent: 0,
    abandoned: 0,
    receives: 0,
    acks: 0,
    nacks: 0,
    forgotten: 0,
  };

  constructor(
    private readonly cfg: WorkloadConfig,
    private readonly env: WorkloadEnv,
  ) {}

  start(): void {
    const spawn = (f: () => Promise<void>) => {
      this.running++;
      f().then(
        () => this.running--,
        (e) => this.env.onError(e),
      );
    };
    for (let i = 0; i < this.cfg.lockClients; i++) {
      const rand = this.env.rand.fork();
      spawn(() => this.lockClient(`o${i}`, rand));
    }
    for (let i = 0; i < this.cfg.linearClients; i++) {
      const rand = this.env.rand.fork();
      spawn(() => this.linearClient(i, rand));
    }
    for (let i = 0; i < this.cfg.cacheClients; i++) {
      const rand = this.env.rand.fork();
      spawn(() => this.cacheClient(i, rand));
    }
    for (let i = 0; i < this.cfg.producers; i++) {
      const rand = this.env.rand.fork();
      spawn(() => this.producer(`p${i}`, rand));
    }
    for (let i = 0; i < this.cfg.consumers; i++) {
      const rand = this.env.rand.fork();
      spawn(() => this.consumer(`c${i}`, rand));
    }
  }

  /** Waits out a quiet spell. */
  private async idle(): Promise<void> {
    while (this.env.quiet?.() === true) await this.env.world.sleep(200);
  }

  /** One more hop: client → Worker → client; the reply may be lost (undefined) while faulty. */
  private async http<T>(rand: Rand, f: () => Promise<T>): Promise<T | undefined> {
    const { world } = this.env;
    await world.sleep(rand.range(1, 3));
    const out = await f();
    await world.sleep(rand.range(1, 3));
    if (this.env.phase() === "faults" && rand.chance(this.cfg.httpLossPerMille, 1000)) return undefined;
    return out;
  }

  // ---- locks ----------------------------------------------------------------------------------

  private async lockClient(owner: string, rand: Rand): Promise<void> {
    const { world } = this.env;
    while (this.env.phase() === "faults") {
      await world.sleep(rand.range(10, 400));
      await this.idle();
      await this.holdOnce(owner, rand.pick(this.cfg.resources), rand, 0);
    }
  }

  /**
   * A lock request as a client sends it: with an Idempotency-Key (sometimes), a lost reply is
   * answered by sending the same request with the same key again, up to three times.
   */
  private async lockRequest(rand: Rand, req: LockRequest): Promise<LockReply | undefined> {
    const { world, worker } = this.env;
    if (!rand.chance(this.cfg.idempotencyPerMille, 1000)) return this.http(rand, () => worker.lock(req));
    const key = `${"owner" in req ? req.owner : "view"}-${++this.keySeq}`;
    for (let attempt = 0; ; attempt++) {
      const reply = await this.http(rand, () => worker.lock(req, key));
      if (reply !== undefined || attempt >= 2 || this.env.phase() !== "faults") return reply;
      this.counts.keyedResends++;
      await world.sleep(rand.range(20, 300));
    }
  }

  private async holdOnce(owner: string, resource: string, rand: Rand, depth: number): Promise<void> {
    const { world, locks, log } = this.env;
    let mode: LockMode = rand.chance(7, 10) ? "exclusive" : "shared";
    const ttlMs = rand.range(800, 5000);
    const waitMs = rand.chance(1, 3) ? 0 : rand.range(100, 3000);
    const acquire = async (m: LockMode, ttl: number): Promise<boolean> => {
      const sentAt = world.now;
      locks.acquireSent(owner, resource, sentAt);
      this.counts.lockOps++;
      const reply = await this.lockRequest(rand, { op: "acquire", resource, owner, mode: m, ttlMs: ttl, waitMs });
      log(() => `${owner} acquire ${resource} ${m} ttl ${ttl} wait ${waitMs} (sent ${sentAt}): ${brief(reply)}`);
      if (reply?.type !== "granted") return false;
      locks.granted({ owner, resource, mode: reply.mode, token: reply.fencingToken, ttlMs: ttl }, sentAt, world.now);
      return true;
    };
    if (!(await acquire(mode, ttlMs))) return;
    // Hold for a while, sometimes past the lease.
    await world.sleep(rand.int(Math.floor(ttlMs * 0.6)));
    if (rand.chance(1, 3)) {
      const ttl = rand.range(800, 5000);
      const sentAt = world.now;
      locks.renewSent(owner, resource, ttl, sentAt);
      this.counts.lockOps++;
      const reply = await this.lockRequest(rand, { op: "renew", resource, owner, ttlMs: ttl });
      log(() => `${owner} renew ${resource} ttl ${ttl} (sent ${sentAt}): ${brief(reply)}`);
      if (reply?.type === "renewed") locks.renewed(owner, resource, ttl, sentAt, world.now);
    }
    if (rand.chance(1, 6)) {
      // Re-acquire: the same mode (idempotent, a new TTL) or the other one (upgrade, downgrade).
      if (rand.chance(1, 2)) mode = mode === "exclusive" ? "shared" : "exclusive";
      await acquire(mode, rand.range(800, 5000));
    }
    if (depth === 0 && rand.chance(1, 6)) {
      // A second lock while holding this one (waits across resources can deadlock).
      const other = rand.pick(this.cfg.resources);
      if (other !== resource) await this.holdOnce(owner, other, rand, depth + 1);
    }
    await world.sleep(rand.int(Math.floor(ttlMs * 0.7)));
    if (rand.chance(9, 10)) {
      locks.releaseSent(owner, resource, world.now);
      this.counts.lockOps++;
      const reply = await this.lockRequest(rand, { op: "release", resource, owner });
      log(() => `${owner} release ${resource}: ${brief(reply)}`);
    }
  }

  private async linearClient(id: number, rand: Rand): Promise<void> {
    const { world, worker, linear } = this.env;
    while (this.env.phase() === "faults") {
      await world.sleep(rand.range(10, 300));
      await this.idle();
      await linear.step(id, `lin${id}.${rand.int(2)}`, rand, (req) => this.http(rand, () => worker.lock(req)));
    }
  }

  // ---- cache ----------------------------------------------------------------------------------

  /**
   * GET, PUT and DELETE on a random node, each value written once (`c<client>.<n>`). Bursts on
   * one key and node now and then, so that E → M writes and hits happen, not only misses.
   */
  private async cacheClient(id: number, rand: Rand): Promise<void> {
    const { world, worker, cache, cacheNodes, log } = this.env;
    let n = 0;
    while (this.env.phase() === "faults") {
      await world.sleep(rand.range(10, 250));
      await this.idle();
      const key = rand.pick(this.cfg.cacheKeys);
      const node = rand.pick(cacheNodes);
      const burst = rand.chance(1, 4) ? rand.range(2, 4) : 1;
      for (let b = 0; b < burst && this.env.phase() === "faults"; b++) {
        const pick = rand.int(20);
        const requestId = `cc${id}.${++n}`;
        if (pick < 10) {
          const done = cache.begin(id, { op: "get", key, node: node.name });
          const reply = await this.http(rand, () => worker.cacheCall(node, (x) => x.get(key)));
          done(reply);
          log(() => `c${id} GET ${key} on ${node.name}: ${reply === undefined ? "lost" : JSON.stringify(reply)}`);
        } else if (pick < 17) {
          const value = JSON.stringify(`c${id}.${n}`);
          const propagation = pick < 14 ? "invalidate" : "update";
          const done = cache.begin(id, { op: "put", key, value, node: node.name, propagation, requestId });
          const reply = await this.http(rand, () =>
            worker.cacheCall(node, (x) => x.put(key, value, propagation, requestId)),
          );
          done(reply);
          log(
            () =>
              `c${id} PUT ${key} ${value} ${propagation} on ${node.name}: ${reply === undefined ? "lost" : JSON.stringify(reply)}`,
          );
        } else {
          const done = cache.begin(id, { op: "delete", key, node: node.name, requestId });
          const reply = await this.http(rand, () => worker.cacheCall(node, (x) => x.delete(key, requestId)));
          done(reply);
          log(() => `c${id} DELETE ${key} on ${node.name}: ${reply === undefined ? "lost" : JSON.stringify(reply)}`);
        }
        if (b + 1 < burst) await world.sleep(rand.range(1, 30));
      }
    }
  }

  // ---- queues ---------------------------------------------------------------------------------

  private async producer(name: string, rand: Rand): Promise<void> {
    const { world, worker, queues, log } = this.env;
    let n = 0;
    while (this.env.phase() === "faults") {
      await world.sleep(rand.range(30, 500));
      await this.idle();
      const queue = rand.pick(this.cfg.queues);
      let batch: OutMessage[] = Array.from({ length: rand.range(1, 10) }, () => {
        const m: OutMessage = { body: { from: name, n: ++n, text: randomText(rand, 6) } };
        if (rand.chance(1, 3)) m.key = rand.pick(this.cfg.keys);
        if (rand.chance(1, 4)) m.id = `${name}-${n}`;
        if (m.key === undefined && rand.chance(1, 10)) m.delayMs = rand.range(1, 1500);
        if (rand.chance(1, 5)) m.body = randomText(rand, 12);
        return m;
      });
      this.counts.batches++;
      for (let attempt = 0; ; attempt++) {
        const ans = await this.http(rand, () => worker.enqueue(queue, batch));
        log(
          () => `${name} enqueue ${batch.length} to ${queue} (attempt ${attempt + 1}): ${ans?.status ?? "reply lost"}`,
        );
        if (ans === undefined) break; // outcome and ids unknown: give this batch up
        if (ans.status === 200) {
          queues.batchAccepted(
            name,
            queue,
            batch.map((m, i) => ({ ...m, id: ans.messages[i]?.id ?? "" })),
          );
          break;
        }
        if (ans.status === 400) throw new Error(`enqueue refused: ${ans.detail}`);
        if (attempt >= 7) {
          this.counts.abandoned++;
          break;
        }
        // 503: resend the same batch with the ids it was given (deduplication stores each once).
        const ids = ans.messages;
        batch = batch.map((m, i) => ({ ...m, id: ids[i]?.id ?? m.id }));
        this.counts.resent++;
        await world.sleep(rand.range(100, 1000));
      }
    }
  }

  private async consumer(name: string, rand: Rand): Promise<void> {
    const { world, worker, queues, log } = this.env;
    let turn = 0;
    while (this.env.phase() !== "done") {
      const draining = this.env.phase() === "drain";
      await world.sleep(draining ? rand.range(5, 40) : rand.range(20, 300));
      await this.idle();
      const queue = draining
        ? (this.cfg.queues[turn++ % this.cfg.queues.length] as string)
        : rand.pick(this.cfg.queues);
      const max = draining ? 10 : rand.range(1, 10);
      const visibilityMs = rand.range(1000, 5000);
      const waitMs = !draining && rand.chance(1, 4) ? rand.range(200, 1500) : 0;
      const sentAt = world.now;
      this.counts.receives++;
      const ans = await this.http(rand, () => worker.receive(queue, { max, visibilityMs, waitMs }));
      log(
        () =>
          `${name} receive ${queue} max ${max}: ${ans === undefined ? "reply lost" : ans.status === 200 ? ans.messages.map((m) => m.id).join(" ") || "empty" : 503}`,
      );
      if (ans?.status !== 200 || ans.messages.length === 0) continue;
      const byGroup = new Map<number, Delivery[]>();
      for (const m of ans.messages) byGroup.set(m.group, [...(byGroup.get(m.group) ?? []), m]);
      for (const [group, list] of byGroup) queues.delivered(queue, group, list, sentAt, world.now);
      const toAck: { id: string; receipt: string }[] = [];
      const toNack: { id: string; receipt: string }[] = [];
      for (const m of ans.messages) {
        const r = { id: m.id, receipt: m.receipt };
        if (draining || rand.chance(8, 10)) toAck.push(r);
        else if (rand.chance(2, 5)) toNack.push(r);
        else this.counts.forgotten++;
      }
      if (!draining)
        await world.sleep(rand.chance(1, 10) ? rand.range(visibilityMs, visibilityMs * 2) : rand.int(visibilityMs / 2));
      if (toAck.length > 0) {
        this.counts.acks++;
        const n = await this.http(rand, () => worker.settle("ack", queue, toAck));
        log(() => `${name} ack ${toAck.length} on ${queue}: ${n ?? "503 or lost"}`);
      }
      if (toNack.length > 0) {
        this.counts.nacks++;
        const delayMs = rand.chance(1, 2) ? rand.range(0, 1000) : undefined;
        await this.http(rand, () => worker.settle("nack", queue, toNack, delayMs));
      }
    }
  }
}

function brief(reply: { type: string; fencingToken?: number } | undefined): string {
  if (reply === undefined) return "503 or lost";
  return reply.type === "granted" ? `granted token ${reply.fencingToken}` : reply.type;
}
