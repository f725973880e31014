import { type Context, Hono } from "hono";
import { clusterShape, queueShards } from "../../shared/cluster.js";
import { groupKey, planEnqueue, receiptShard } from "../../shared/queue/placement.js";
import type { QueueReply, QueueRequest } from "../../shared/queue/queue-service.js";
import type { Delivery } from "../../shared/queue/types.js";
import type { Env } from "../env.js";
import { callGroup, groupOf } from "../groups.js";
import { noQuorum, pathName, readBody, validate } from "../http.js";
import { KEYED_RECEIVE_MAX_BYTES, keyedSeed, requestIdOf } from "../idempotency.js";
import { problem } from "../problem.js";
import {
  AckBody,
  type AckReply,
  type DeleteQueueReply,
  EnqueueBody,
  type EnqueueReply,
  ExtendBody,
  type ExtendReply,
  NackBody,
  type NackReply,
  PeekBody,
  type PeekReply,
  PurgeBody,
  type PurgeReply,
  QueueConfigBody,
  type QueueConfigReply,
  QueueListQuery,
  type QueueListReply,
  type QueueStatsReply,
  ReceiveBody,
  type ReceiveReply,
  RedriveBody,
  type RedriveReply,
  type Reply,
} from "../schemas.js";

const LEADER_DEADLINE_MS = 4000;
/** A message body's serialized size limit (the contract's 128 KiB). */
const MAX_MESSAGE_BYTES = 128 * 1024;
/** Long polls re-check every shard at least this often (a wake on one group covers its shards only). */
const WAIT_SLICE_MS = 2000;

export const queues = new Hono<{ Bindings: Env }>();
type C = Context<{ Bindings: Env }>;

function shardCount(env: Env): number {
  return queueShards(env);
}

/** The group of a queue's shard (a queue and its `.dlq` share groups, so dead-lettering is one apply). */
const groupOfShard = (env: Env, queue: string, shard: number) => groupOf(env, groupKey(queue, shard));

/** Shards by group, keeping the order given. */
function byGroup(env: Env, queue: string, shards: number[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const s of shards) {
    const g = groupOfShard(env, queue, s);
    out.set(g, [...(out.get(g) ?? []), s]);
  }
  return out;
}

/** Every shard of the queue by group, in shard order. */
const allShards = (env: Env, queue: string) =>
  byGroup(
    env,
    queue,
    Array.from({ length: shardCount(env) }, (_, i) => i),
  );

/** One request to one group; undefined when the group has no leader that can commit. */
async function ask(env: Env, group: number, req: QueueRequest, requestId: string): Promise<QueueReply | undefined> {
  const out = await callGroup(env, group, (peer, name) => peer.queues(name, req, requestId), LEADER_DEADLINE_MS);
  return out.ok ? out.value : undefined;
}

queues.post("/:queue/messages", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, EnqueueBody);
  if (!body.ok) return body.response;
  const msgs = body.value.messages;
  for (const [i, m] of msgs.entries()) {
    const size = new TextEncoder().encode(JSON.stringify(m.body)).length;
    if (size > MAX_MESSAGE_BYTES)
      return problem("payload-too-large", `messages.${i}.body is ${size} bytes (limit 131072)`);
  }
  const shards = shardCount(c.env);
  const requestId = requestIdOf(c);
  // With an Idempotency-Key a re-run must pick the same shard and ids as the first attempt.
  const seed = keyedSeed(c);
  let generated = 0;
  const withIds = planEnqueue(
    queue.value,
    msgs,
    shards,
    seed ?? Math.floor(Math.random() * shards),
    seed === undefined ? () => crypto.randomUUID() : () => `${requestId}:${generated++}`,
  );
  const perShard = new Map<number, typeof withIds>();
  for (const m of withIds) perShard.set(m.shard, [...(perShard.get(m.shard) ?? []), m]);
  const replies = await Promise.all(
    [...perShard].map(([shard, list]) =>
      ask(
        c.env,
        groupOfShard(c.env, queue.value, shard),
        {
          op: "enqueue",
          queue: queue.value,
          shard,
          messages: list.map(({ id, body, key, delayMs }) => ({
            id,
            body,
            ...(key ? { key } : {}),
            ...(delayMs ? { delayMs } : {}),
          })),
        },
        `${requestId}:${shard}`,
      ),
    ),
  );
  // A batch on several shards cannot be atomic across groups: when one part failed, the others
  // may be stored. The answer names every id, so the client can retry the same batch with them
  // (deduplication stores each message once); see docs/architecture.md.
  const ids = withIds.map((m) => ({ id: m.id, shard: m.shard }));
  const rejected = replies.find((r) => r?.type === "rejected");
  if (rejected?.type === "rejected") {
    const extra = perShard.size > 1 ? { messages: ids } : {};
    if (rejected.reason === "full") {
      return problem("no-quorum", `shard full, retry later: ${rejected.detail}`, {
        extra,
        headers: { "retry-after": "5" },
      });
    }
    return problem("validation", rejected.detail, { extra });
  }
  if (replies.some((r) => r === undefined)) {
    return problem("no-quorum", "a shard's group has no leader that can commit; retry with the same ids", {
      extra: { messages: ids },
      headers: { "retry-after": "1" },
    });
  }
  const shardOf = new Map<string, number>();
  for (const r of replies) if (r?.type === "enqueued") for (const m of r.messages) shardOf.set(m.id, m.shard);
  return c.json({
    messages: withIds.map((m) => ({ id: m.id, shard: shardOf.get(m.id) ?? m.shard })),
  } satisfies Reply<typeof EnqueueReply>);
});

/** Rotates the first shard of receives in this isolate, so no shard starves. */
let nextStart = 0;

queues.post("/:queue/receive", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, ReceiveBody);
  if (!body.ok) return body.response;
  const { max, visibilityMs, waitMs, consumer } = body.value;
  const shards = shardCount(c.env);
  const seed = keyedSeed(c);
  const start = (seed ?? nextStart++) % shards;
  const order = Array.from({ length: shards }, (_, i) => (start + i) % shards);
  const groups = byGroup(c.env, queue.value, order);
  const requestId = requestIdOf(c);
  const deadline = Date.now() + waitMs;
  const messages: Delivery[] = [];
  // With an Idempotency-Key the answer is stored in one Raft entry: its bodies are bounded.
  const maxBytes = seed === undefined ? undefined : KEYED_RECEIVE_MAX_BYTES;
  let bytes = 0;
  for (let round = 0; ; round++) {
    let failed = false;
    for (const [group, list] of groups) {
      const left = max - messages.length;
      if (left <= 0 || (maxBytes !== undefined && bytes >= maxBytes)) break;
      const req: QueueRequest = {
        op: "receive",
        queue: queue.value,
        shards: list,
        max: left,
        ...(maxBytes !== undefined ? { maxBytes: maxBytes - bytes } : {}),
        visibilityMs,
        consumer,
      };
      const reply = await ask(c.env, group, req, `${requestId}:${round}:${group}`);
      if (reply?.type === "deliveries") {
        messages.push(...reply.messages);
        for (const m of reply.messages) bytes += m.body.length;
      } else failed = true;
    }
    // Nothing received and a group could not answer: say so rather than "empty".
    if (messages.length === 0 && failed) return noQuorum();
    const remaining = deadline - Date.now();
    if (messages.length > 0 || remaining <= 0) break;
    // Long poll: every group parks the wait until one of its shards gets a message (or a slice ends).
    const timeoutMs = Math.min(remaining, WAIT_SLICE_MS);
    await Promise.race(
      [...groups].map(([group, list]) =>
        ask(c.env, group, { op: "wait", queue: queue.value, shards: list, timeoutMs }, crypto.randomUUID()),
      ),
    );
  }
  return c.json({
    messages: messages.map((m) => ({
      id: m.id,
      body: JSON.parse(m.body) as unknown,
      ...(m.key !== undefined ? { key: m.key } : {}),
      receipt: m.receipt,
      attempts: m.attempts,
      enqueuedAt: m.enqueuedAt,
    })),
  } satisfies Reply<typeof ReceiveReply>);
});

/** ack / nack / extend: receipts go to their shard's group; unknown receipts count as not done. */
async function byReceipts(
  c: C,
  queue: string,
  receipts: string[],
  make: (shard: number, receipts: string[]) => QueueRequest,
): Promise<number | undefined> {
  const perShard = new Map<number, string[]>();
  for (const r of receipts) {
    const shard = receiptShard(r);
    if (shard !== undefined && shard < shardCount(c.env)) perShard.set(shard, [...(perShard.get(shard) ?? []), r]);
  }
  const requestId = requestIdOf(c);
  const replies = await Promise.all(
    [...perShard].map(([shard, list]) =>
      ask(c.env, groupOfShard(c.env, queue, shard), make(shard, list), `${requestId}:${shard}`),
    ),
  );
  if (replies.some((r) => r === undefined)) return undefined;
  let n = 0;
  for (const r of replies) {
    if (r?.type === "acked") n += r.acked;
    if (r?.type === "released") n += r.released;
    if (r?.type === "extended") n += r.extended;
  }
  return n;
}

queues.post("/:queue/ack", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, AckBody);
  if (!body.ok) return body.response;
  const n = await byReceipts(c, queue.value, body.value.receipts, (shard, receipts) => ({
    op: "ack",
    queue: queue.value,
    shard,
    receipts,
  }));
  return n === undefined ? noQuorum() : c.json({ acked: n } satisfies Reply<typeof AckReply>);
});

queues.post("/:queue/nack", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, NackBody);
  if (!body.ok) return body.response;
  const { delayMs } = body.value;
  const n = await byReceipts(c, queue.value, body.value.receipts, (shard, receipts) => ({
    op: "nack",
    queue: queue.value,
    shard,
    receipts,
    ...(delayMs !== undefined ? { delayMs } : {}),
  }));
  return n === undefined ? noQuorum() : c.json({ released: n } satisfies Reply<typeof NackReply>);
});

queues.post("/:queue/extend", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, ExtendBody);
  if (!body.ok) return body.response;
  const { visibilityMs } = body.value;
  const n = await byReceipts(c, queue.value, body.value.receipts, (shard, receipts) => ({
    op: "extend",
    queue: queue.value,
    shard,
    receipts,
    visibilityMs,
  }));
  return n === undefined ? noQuorum() : c.json({ extended: n } satisfies Reply<typeof ExtendReply>);
});

queues.post("/:queue/redrive", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, RedriveBody);
  if (!body.ok) return body.response;
  let left = body.value.max ?? Number.POSITIVE_INFINITY;
  let moved = 0;
  const requestId = requestIdOf(c);
  for (let shard = 0; shard < shardCount(c.env) && left > 0; shard++) {
    const req: QueueRequest = {
      op: "redrive",
      queue: queue.value,
      shard,
      ...(Number.isFinite(left) ? { max: left } : {}),
    };
    const reply = await ask(c.env, groupOfShard(c.env, queue.value, shard), req, `${requestId}:${shard}`);
    if (reply === undefined) return noQuorum();
    if (reply.type === "redriven") {
      moved += reply.moved;
      left -= reply.moved;
    }
  }
  return c.json({ moved } satisfies Reply<typeof RedriveReply>);
});

queues.put("/:queue", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, QueueConfigBody);
  if (!body.ok) return body.response;
  // Every group holding a shard of the queue keeps the config its receives apply.
  const groups = byGroup(
    c.env,
    queue.value,
    Array.from({ length: shardCount(c.env) }, (_, i) => i),
  );
  const requestId = requestIdOf(c);
  const replies = await Promise.all(
    [...groups.keys()].map((g) =>
      ask(c.env, g, { op: "configure", queue: queue.value, ...body.value }, `${requestId}:${g}`),
    ),
  );
  const done = replies.find((r) => r?.type === "configured");
  if (replies.some((r) => r === undefined) || done?.type !== "configured") return noQuorum();
  return c.json({
    queue: queue.value,
    maxAttempts: done.maxAttempts,
    visibilityMs: done.visibilityMs,
  } satisfies Reply<typeof QueueConfigReply>);
});

queues.get("/:queue", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const groups = byGroup(
    c.env,
    queue.value,
    Array.from({ length: shardCount(c.env) }, (_, i) => i),
  );
  const replies = await Promise.all(
    [...groups].map(([g, shards]) => ask(c.env, g, { op: "stats", queue: queue.value, shards }, crypto.randomUUID())),
  );
  if (replies.some((r) => r?.type !== "stats")) return noQuorum();
  const shards = replies.flatMap((r) => (r?.type === "stats" ? r.shards : [])).sort((a, b) => a.shard - b.shard);
  const sum = (k: "visible" | "inflight" | "delayed" | "dlq") => shards.reduce((n, s) => n + s[k], 0);
  return c.json({
    queue: queue.value,
    visible: sum("visible"),
    inflight: sum("inflight"),
    delayed: sum("delayed"),
    dlq: sum("dlq"),
    shards: shards.map(({ shard, visible, inflight }) => ({ shard, visible, inflight })),
  } satisfies Reply<typeof QueueStatsReply>);
});

/** Every queue any group knows (messages, a DLQ or a config), counts summed over its shards. */
queues.get("/", async (c) => {
  const query = validate(QueueListQuery, c.req.query(), "query");
  if (!query.ok) return query.response;
  const stale = query.value.stale === "true";
  const { groups } = clusterShape(c.env);
  const replies = await Promise.all(
    Array.from({ length: groups }, (_, g) => ask(c.env, g, { op: "list", stale }, crypto.randomUUID())),
  );
  const byName = new Map<string, { queue: string; visible: number; inflight: number; delayed: number; dlq: number }>();
  for (const r of replies) {
    if (r?.type !== "queues") return noQuorum();
    for (const q of r.queues) {
      const sum = byName.get(q.queue) ?? { queue: q.queue, visible: 0, inflight: 0, delayed: 0, dlq: 0 };
      sum.visible += q.visible;
      sum.inflight += q.inflight;
      sum.delayed += q.delayed;
      sum.dlq += q.dlq;
      byName.set(q.queue, sum);
    }
  }
  return c.json({
    queues: [...byName.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0)),
  } satisfies Reply<typeof QueueListReply>);
});

/** Visible messages without delivering them: a read on each group's leader (ReadIndex), no log entry. */
queues.post("/:queue/peek", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, PeekBody);
  if (!body.ok) return body.response;
  const { max } = body.value;
  const messages: Extract<QueueReply, { type: "peeked" }>["messages"] = [];
  for (const [group, shards] of allShards(c.env, queue.value)) {
    const left = max - messages.length;
    if (left <= 0) break;
    const reply = await ask(c.env, group, { op: "peek", queue: queue.value, shards, max: left }, crypto.randomUUID());
    if (reply?.type !== "peeked") return noQuorum();
    messages.push(...reply.messages);
  }
  return c.json({
    messages: messages.map((m) => ({
      id: m.id,
      body: JSON.parse(m.body) as unknown,
      ...(m.key !== undefined ? { key: m.key } : {}),
      attempts: m.attempts,
      enqueuedAt: m.enqueuedAt,
    })),
  } satisfies Reply<typeof PeekReply>);
});

/** Drops every message of the queue (visible, in flight, delayed) on every shard; its DLQ stays. */
queues.post("/:queue/purge", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const body = await readBody(c, PurgeBody);
  if (!body.ok) return body.response;
  const requestId = requestIdOf(c);
  const replies = await Promise.all(
    Array.from({ length: shardCount(c.env) }, (_, shard) =>
      ask(
        c.env,
        groupOfShard(c.env, queue.value, shard),
        { op: "purge", queue: queue.value, shard },
        `${requestId}:${shard}`,
      ),
    ),
  );
  let purged = 0;
  for (const r of replies) {
    if (r?.type !== "purged") return noQuorum();
    purged += r.purged;
  }
  return c.json({ purged } satisfies Reply<typeof PurgeReply>);
});

/** Forgets the queue, its DLQ and its config on every group holding its shards; a later send re-creates it. */
queues.delete("/:queue", async (c) => {
  const queue = pathName(c, "queue");
  if (!queue.ok) return queue.response;
  const requestId = requestIdOf(c);
  const replies = await Promise.all(
    [...allShards(c.env, queue.value).keys()].map((g) =>
      ask(c.env, g, { op: "delete", queue: queue.value }, `${requestId}:${g}`),
    ),
  );
  if (replies.some((r) => r?.type !== "deleted")) return noQuorum();
  return c.json({ deleted: true } satisfies Reply<typeof DeleteQueueReply>);
});
