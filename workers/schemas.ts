import { z } from "zod";
import { parseReceipt } from "../shared/queue/placement.js";

// Request bodies are strict objects: a field the route does not know (a typo such as `ttl` for
// `ttlMs`) is a 400 naming it, not silently ignored (workers/http.ts adds "did you mean").

/** Names of resources, queues, keys, owners, consumers: 1–200 chars of [A-Za-z0-9._:@/-]. */
export const Name = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:@/-]+$/, "only letters, digits and . _ : @ / - are allowed");

export const LockMode = z.enum(["exclusive", "shared"]);

export const AcquireBody = z.strictObject({
  owner: Name,
  mode: LockMode.default("exclusive"),
  ttlMs: z.number().int().min(100).max(3_600_000).default(30_000),
  waitMs: z.number().int().min(0).max(60_000).default(0),
});

export const ReleaseBody = z.strictObject({ owner: Name });

export const RenewBody = z.strictObject({
  owner: Name,
  ttlMs: z.number().int().min(100).max(3_600_000).optional(),
});

export const PeerBody = z.strictObject({
  id: z.string().regex(/^p[1-9][0-9]{0,3}$/, "peer ids are p1, p2, ..."),
  /** Multi-process clusters only: where the new node listens (a node started with JOIN sends it itself). */
  url: z.url({ protocol: /^https?$/ }).optional(),
});

export const PartitionBody = z.strictObject({
  sides: z.array(z.array(z.string().regex(/^p[1-9][0-9]{0,3}$/)).min(1)).min(2),
});

export const ClockBody = z.strictObject({ offsetMs: z.number().int().min(-3_600_000).max(3_600_000) });

export const Holder = z.object({ owner: z.string(), mode: LockMode, expiresAt: z.number() });

export const GrantReply = z.object({
  resource: z.string(),
  owner: z.string(),
  mode: LockMode,
  fencingToken: z.number(),
  expiresAt: z.number(),
});

export const LockViewReply = z.object({
  resource: z.string(),
  mode: LockMode.nullable(),
  holders: z.array(Holder),
  waiters: z.array(z.object({ owner: z.string(), mode: LockMode })),
});

/** Any JSON value (what `JSON.parse` can return); `undefined` is not JSON. */
export const Json = z.unknown().refine((v) => v !== undefined, "required");

export const EnqueueBody = z.strictObject({
  messages: z
    .array(
      z.strictObject({
        body: Json,
        key: Name.optional(),
        id: Name.optional(),
        delayMs: z.number().int().min(0).max(43_200_000).optional(),
      }),
    )
    .min(1)
    .max(100),
});

export const ReceiveBody = z.strictObject({
  max: z.number().int().min(1).max(100).default(1),
  visibilityMs: z.number().int().min(1000).max(43_200_000).optional(),
  waitMs: z.number().int().min(0).max(20_000).default(0),
  consumer: Name.optional(),
});

/** Receipts as this service issues them (`<shard>:<seq>:<delivery>`); well-formed stale ones count as not acked. */
const Receipts = z
  .array(
    z
      .string()
      .min(1)
      .max(200)
      .refine((r) => parseReceipt(r) !== undefined, "not a receipt this service issued (<shard>:<seq>:<delivery>)"),
  )
  .max(1000);

export const AckBody = z.strictObject({ receipts: Receipts });
export const NackBody = z.strictObject({
  receipts: Receipts,
  delayMs: z.number().int().min(0).max(43_200_000).optional(),
});
export const ExtendBody = z.strictObject({ receipts: Receipts, visibilityMs: z.number().int().min(0).max(43_200_000) });
export const RedriveBody = z.strictObject({ max: z.number().int().min(1).max(1_000_000).optional() });
export const QueueConfigBody = z.strictObject({
  maxAttempts: z.number().int().min(1).max(1000).optional(),
  visibilityMs: z.number().int().min(1000).max(43_200_000).optional(),
});

export const CachePutBody = z.strictObject({ value: Json });

/** Peers a cache node is cut off from (all of them when absent); `[]` heals. */
export const CachePartitionBody = z.strictObject({
  peers: z.array(z.string().regex(/^p[1-9][0-9]{0,3}$/, "peer ids are p1, p2, ...")).optional(),
});

const LineState = z.enum(["M", "E", "S"]);

export const CacheGetReply = z.object({
  key: z.string(),
  value: z.unknown(),
  node: z.string(),
  state: LineState,
  hit: z.boolean(),
});

export const CachePutReply = z.object({ key: z.string(), node: z.string(), state: LineState });

export const CacheNodeReply = z.object({
  node: z.string(),
  capacity: z.number(),
  lines: z.array(z.object({ key: z.string(), state: LineState })),
  stats: z.object({
    hits: z.number(),
    misses: z.number(),
    evictions: z.number(),
    invalidations: z.number(),
    writebacks: z.number(),
    updates: z.number(),
    hitRate: z.number(),
  }),
});

// Listing and housekeeping (GET /v1/queues, peek, purge, DELETE /v1/queues/{queue}, GET /v1/locks).

export const PeekBody = z.strictObject({ max: z.number().int().min(1).max(100).default(10) });

/** Purge takes no options: an empty body (or `{}`). */
export const PurgeBody = z.strictObject({});

export const LockListQuery = z.strictObject({ prefix: Name.optional() });

export const QueueListReply = z.object({
  queues: z.array(
    z.object({ queue: z.string(), visible: z.number(), inflight: z.number(), delayed: z.number(), dlq: z.number() }),
  ),
});

export const PeekReply = z.object({
  messages: z.array(
    z.object({
      id: z.string(),
      body: z.unknown(),
      key: z.string().optional(),
      attempts: z.number(),
      enqueuedAt: z.number(),
    }),
  ),
});

export const PurgeReply = z.object({ purged: z.number() });

export const DeleteQueueReply = z.object({ deleted: z.literal(true) });

export const LockListReply = z.object({
  locks: z.array(
    z.object({
      resource: z.string(),
      mode: LockMode.nullable(),
      holders: z.array(Holder),
      waiters: z.array(z.object({ owner: z.string(), mode: LockMode })),
    }),
  ),
  truncated: z.boolean(),
});
