/**
 * The Worker, as workers/groups.ts and workers/routes/{locks,queues}.ts behave, over simulated
 * Workers RPC: `callGroup` (one request id for every attempt of one request; the hinted leader
 * first, then not-leader hints, then the next peer; a pause after each round; 503 after 4 s; a
 * timeout after proposing is not retried), consistent-hash placement of resources and queue
 * shards, enqueue split by shard (`planEnqueue`, or the rule before the fix for the planted bug
 * placeByOrigin), receive over the groups in rotating order, ack and nack split by receipt shard.
 * It reports what each group answered to the queue checker (which needs per-part answers).
 */
import type { PeerReply } from "../../../objects/raft-peer.js";
import { hash32 } from "../../../shared/hashing/hash.js";
import { HashRing } from "../../../shared/hashing/ring.js";
import type { LockReply, LockRequest } from "../../../shared/locks/lock-service.js";
import { groupKey, planEnqueue, receiptShard } from "../../../shared/queue/placement.js";
import type { QueueReply, QueueRequest } from "../../../shared/queue/queue-service.js";
import type { Delivery } from "../../../shared/queue/types.js";
import type { NodeId, Rand } from "../../../shared/raft/index.js";
import type { SimCacheNode } from "./cache.js";
import { answeredBy, type Bug, type SimPeer } from "./peer.js";
import type { QueueChecker } from "./queues.js";
import type { ReplicaChecker } from "./replicas.js";
import { type Leg, rpc } from "./rpc.js";
import type { Actor, World } from "./world.js";

/** How long the Worker looks for a leader that can commit before answering 503. */
export const LEADER_DEADLINE_MS = 4000;
const WAIT_SLICE_MS = 2000;

export interface OutMessage {
  body: unknown;
  key?: string;
  id?: string;
  delayMs?: number;
}

export type EnqueueAnswer =
  | { status: 200; messages: { id: string; shard: number }[] }
  | { status: 503; messages: { id: string; shard: number }[] }
  | { status: 400; detail: string };

export type ReceiveAnswer = { status: 200; messages: (Delivery & { group: number })[] } | { status: 503 };

export interface LinkFaults {
  minDelay: number;
  maxDelay: number;
  /** Per mille of requests, and of replies, lost between the Worker and a peer. */
  lossPerMille: number;
}

export interface WorkerEnv {
  world: World;
  rand: Rand;
  groups: readonly (readonly SimPeer[])[];
  shards: number;
  link: LinkFaults;
  bug: Bug | undefined;
  queues: QueueChecker;
  replicas: ReplicaChecker;
  log: (line: () => string) => void;
}

/**
 * The placement rule before the fix of issue 8, fault 2: a message without key or id goes to the
 * batch's shard and gets a new id, but the same message resent with that id goes to hash(id).
 */
export function planEnqueueBeforeFix<M extends { key?: string; id?: string }>(
  _queue: string,
  messages: readonly M[],
  shards: number,
  batchShard: number,
  newId: () => string,
): (M & { id: string; shard: number })[] {
  const rest = ((batchShard % shards) + shards) % shards;
  return messages.map((m) => {
    const shard = m.key !== undefined ? hash32(m.key) % shards : m.id !== undefined ? hash32(m.id) % shards : rest;
    return { ...m, id: m.id ?? newId(), shard };
  });
}

export class SimWorker {
  private readonly leaderHints = new Map<number, NodeId>();
  private readonly ring: HashRing;
  private nextStart = 0;
  private requestSeq = 0;
  private idSeq = 0;
  /** Off once the faults heal. */
  faulty = true;
  calls = 0;

  constructor(private readonly env: WorkerEnv) {
    this.ring = new HashRing(env.groups.map((_, g) => `g${g}`));
  }

  groupOf(key: string): number {
    return Number(this.ring.lookup(key).slice(1));
  }

  groupOfShard(queue: string, shard: number): number {
    return this.groupOf(groupKey(queue, shard));
  }

  private newRequestId(): string {
    return `r${++this.requestSeq}`;
  }

  private newMessageId(): string {
    return `m${++this.idSeq}-${this.env.rand.uint32().toString(36)}`;
  }

  private leg(): Leg {
    const { rand, link } = this.env;
    return {
      delay: () => (this.faulty ? rand.range(link.minDelay, link.maxDelay) : link.minDelay),
      lost: () => this.faulty && rand.chance(link.lossPerMille, 1000),
    };
  }

  /**
   * workers/groups.ts callGroup. `from`: called by a cache node (objects/cache-node.ts calls
   * callGroup itself): its links to the peers, and it owns the replies and the pauses (a crashed
   * node never hears back).
   */
  async callGroup<T>(
    group: number,
    call: (peer: SimPeer) => Promise<PeerReply<T>>,
    deadlineMs = LEADER_DEADLINE_MS,
    from?: { caller: Actor; legs: (peer: SimPeer) => { out: Leg; back: Leg } },
  ): Promise<{ ok: true; value: T } | { ok: false; reason: "no-quorum" }> {
    const peers = this.env.groups[group] as readonly SimPeer[];
    const world = this.env.world;
    const until = world.now + deadlineMs;
    let next = this.leaderHints.get(group) ?? 1;
    for (let attempt = 0; ; attempt++) {
      const id = next;
      const peer = peers[id - 1] as SimPeer;
      let reply: PeerReply<T> | undefined;
      this.calls++;
      const legs = from?.legs(peer) ?? { out: this.leg(), back: this.leg() };
      try {
        reply = await rpc(world, legs.out, legs.back, peer, () => call(peer), from?.caller);
      } catch {
        reply = undefined; // unreachable: try another peer
      }
      if (reply?.ok) {
        this.leaderHints.set(group, id);
        return reply;
      }
      if (reply?.error === "timeout") return { ok: false, reason: "no-quorum" };
      if (reply?.error === "failed" || reply?.error === "misconfigured") return { ok: false, reason: "no-quorum" };
      if (world.now >= until) return { ok: false, reason: "no-quorum" };
      const hint = reply?.error === "not-leader" ? reply.leader : 0;
      next = hint !== 0 && hint !== id ? hint : (id % peers.length) + 1;
      if ((attempt + 1) % peers.length === 0) await world.sleep(50, from?.caller);
    }
  }

  // ---- cache ----------------------------------------------------------------------------------

  /**
   * workers/routes/cache.ts: a request for a cache node goes to its Durable Object, which serves
   * it (shared/cache/node.ts). Undefined when the call failed (the node crashed while serving it,
   * or a leg was lost): a 500 whose outcome is unknown.
   */
  async cacheCall<T>(node: SimCacheNode, serve: (node: SimCacheNode) => Promise<T>): Promise<T | undefined> {
    this.calls++;
    try {
      return await rpc(this.env.world, this.leg(), this.leg(), node, () => serve(node));
    } catch {
      return undefined;
    }
  }

  // ---- locks ----------------------------------------------------------------------------------

  /**
   * A lock request; undefined is a 503. With an Idempotency-Key, as workers/idempotency.ts does it
   * (simplified: the stored answer is the reply itself): `begin` on the key's group, then the
   * request under an id derived from the key, then `finish` with the answer; a repeat of the key
   * gets the first answer.
   */
  async lock(req: LockRequest, idempotencyKey?: string): Promise<LockReply | undefined> {
    if (idempotencyKey === undefined) return this.lockAs(req, this.newRequestId());
    const key = idempotencyKey;
    const fp = JSON.stringify(req);
    const group = this.groupOf(`idem/${key}`);
    const begun = await this.callGroup(group, (peer) => peer.idempotency({ op: "begin", key, fp }));
    if (!begun.ok) return undefined;
    const b = begun.value;
    if (b.kind === "done") return JSON.parse(b.body) as LockReply;
    if (b.kind !== "new" && b.kind !== "running") throw new Error(`idempotency begin answered ${b.kind}`);
    const reply = await this.lockAs(req, `k:${key}:${b.at}`);
    if (reply === undefined) return undefined; // a 5xx is not stored: a retry runs the request again
    const finished = await this.callGroup(group, (peer) =>
      peer.idempotency({ op: "finish", key, fp, answer: { status: 200, json: reply } }),
    );
    if (!finished.ok) return undefined;
    const f = finished.value;
    return f.kind === "done" ? (JSON.parse(f.body) as LockReply) : reply;
  }

  private async lockAs(req: LockRequest, requestId: string): Promise<LockReply | undefined> {
    const out = await this.callGroup(this.groupOf(req.resource), (peer) => peer.lock(req, requestId));
    return out.ok ? out.value : undefined;
  }

  // ---- queues ---------------------------------------------------------------------------------

  private async ask(group: number, req: QueueRequest, requestId: string): Promise<QueueReply | undefined> {
    const out = await this.callGroup(group, (peer) => peer.queues(req, requestId));
    return out.ok ? out.value : undefined;
  }

  async enqueue(queue: string, msgs: readonly OutMessage[]): Promise<EnqueueAnswer> {
    const { world, queues, shards } = this.env;
    const plan = this.env.bug === "placeByOrigin" ? planEnqueueBeforeFix : planEnqueue;
    const withIds = plan(queue, msgs, shards, this.env.rand.int(shards), () => this.newMessageId());
    for (const m of withIds) queues.planned(queue, m.id, JSON.stringify(m.body), m.key);
    const perShard = new Map<number, typeof withIds>();
    for (const m of withIds) perShard.set(m.shard, [...(perShard.get(m.shard) ?? []), m]);
    const requestId = this.newRequestId();
    const replies = await Promise.all(
      [...perShard].map(async ([shard, list]) => {
        const reply = await this.ask(
          this.groupOfShard(queue, shard),
          {
            op: "enqueue",
            queue,
            shard,
            messages: list.map(({ id, body, key, delayMs }) => ({
              id,
              body,
              ...(key !== undefined ? { key } : {}),
              ...(delayMs ? { delayMs } : {}),
            })),
          },
          `${requestId}:${shard}`,
        );
        if (reply?.type === "enqueued") {
          queues.stored(
            queue,
            reply.messages.map((m) => m.id),
            world.now,
          );
        }
        return reply;
      }),
    );
    const ids = withIds.map((m) => ({ id: m.id, shard: m.shard }));
    const rejected = replies.find((r) => r?.type === "rejected");
    if (rejected?.type === "rejected") return { status: 400, detail: rejected.detail };
    if (replies.some((r) => r === undefined)) return { status: 503, messages: ids };
    const shardOf = new Map<string, number>();
    for (const r of replies) if (r?.type === "enqueued") for (const m of r.messages) shardOf.set(m.id, m.shard);
    return { status: 200, messages: withIds.map((m) => ({ id: m.id, shard: shardOf.get(m.id) ?? m.shard })) };
  }

  async receive(queue: string, o: { max: number; visibilityMs: number; waitMs: number }): Promise<ReceiveAnswer> {
    const { world, shards } = this.env;
    const start = this.nextStart++ % shards;
    const order = Array.from({ length: shards }, (_, i) => (start + i) % shards);
    const groups = new Map<number, number[]>();
    for (const s of order) {
      const g = this.groupOfShard(queue, s);
      groups.set(g, [...(groups.get(g) ?? []), s]);
    }
    const requestId = this.newRequestId();
    const deadline = world.now + o.waitMs;
    const messages: (Delivery & { group: number })[] = [];
    for (let round = 0; ; round++) {
      let failed = false;
      for (const [group, list] of groups) {
        const left = o.max - messages.length;
        if (left <= 0) break;
        const id = `${requestId}:${round}:${group}`;
        const sentAt = world.now;
        const req: QueueRequest = { op: "receive", queue, shards: list, max: left, visibilityMs: o.visibilityMs };
        const reply = await this.ask(group, req, id);
        if (reply?.type === "deliveries") {
          messages.push(...reply.messages.map((m) => ({ ...m, group })));
          const { replicas } = this.env;
          this.env.queues.receiveAnswered(
            queue,
            group,
            answeredBy.get(reply),
            id,
            reply.messages,
            sentAt,
            replicas.suspects,
            (rid) => replicas.wasCommitted(group, rid),
          );
        } else failed = true;
      }
      if (messages.length === 0 && failed) return { status: 503 };
      const remaining = deadline - world.now;
      if (messages.length > 0 || remaining <= 0) break;
      const timeoutMs = Math.min(remaining, WAIT_SLICE_MS);
      await Promise.race(
        [...groups].map(([group, list]) =>
          this.ask(group, { op: "wait", queue, shards: list, timeoutMs }, this.newRequestId()),
        ),
      );
    }
    return { status: 200, messages };
  }

  /**
   * ack / nack: receipts go to their shard's group. Returns the count, or undefined for a 503;
   * tells the checker what each group answered about which receipts.
   */
  async settle(
    op: "ack" | "nack",
    queue: string,
    receipts: readonly { id: string; receipt: string }[],
    delayMs?: number,
  ): Promise<number | undefined> {
    const perShard = new Map<number, { id: string; receipt: string }[]>();
    for (const r of receipts) {
      const shard = receiptShard(r.receipt);
      if (shard !== undefined && shard < this.env.shards) perShard.set(shard, [...(perShard.get(shard) ?? []), r]);
    }
    const requestId = this.newRequestId();
    const replies = await Promise.all(
      [...perShard].map(async ([shard, list]) => {
        const group = this.groupOfShard(queue, shard);
        const rs = list.map((r) => r.receipt);
        const req: QueueRequest =
          op === "ack"
            ? { op, queue, shard, receipts: rs }
            : { op, queue, shard, receipts: rs, ...(delayMs !== undefined ? { delayMs } : {}) };
        const reply = await this.ask(group, req, `${requestId}:${shard}`);
        if (reply?.type === "acked") this.env.queues.ackAnswered(queue, list, reply.acked, this.env.world.now);
        return reply;
      }),
    );
    if (replies.some((r) => r === undefined)) return undefined;
    let n = 0;
    for (const r of replies) {
      if (r?.type === "acked") n += r.acked;
      if (r?.type === "released") n += r.released;
    }
    return n;
  }

  /** PUT /v1/queues/{queue}: every group holding a shard stores the config. */
  async configure(queue: string, maxAttempts: number): Promise<boolean> {
    const groups = new Set(Array.from({ length: this.env.shards }, (_, s) => this.groupOfShard(queue, s)));
    const requestId = this.newRequestId();
    const replies = await Promise.all(
      [...groups].map((g) => this.ask(g, { op: "configure", queue, maxAttempts }, `${requestId}:${g}`)),
    );
    return replies.every((r) => r?.type === "configured");
  }
}
