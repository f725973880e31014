import { z } from "zod";
import { parseReceipt } from "../shared/queue/placement.js";

// Every request body and every reply of the API, as zod schemas. The routes parse bodies with
// them and check their replies against them at compile time (`satisfies Reply<typeof X>`); the
// client library takes its types from them; the OpenAPI document (workers/openapi.ts) is
// generated from them, each named one a `components/schemas` entry referenced with `$ref`.
//
// Request bodies are strict objects: a field the route does not know (a typo such as `ttl` for
// `ttlMs`) is a 400 naming it, not silently ignored (workers/http.ts adds "did you mean").

/**
 * Names `schema` in the OpenAPI document, with a description and examples of what it accepts
 * or returns (typed here; the OpenAPI tests validate them against the generated JSON Schema).
 */
function named<S extends z.ZodType>(id: string, schema: S, description: string, examples: z.input<S>[] = []): S {
  return schema.meta({ id, description, ...(examples.length > 0 ? { examples } : {}) });
}

/** What a route may answer with schema `S`: `reply satisfies Reply<typeof S>`. */
export type Reply<S extends z.ZodType> = z.output<S>;

/** Names of resources, queues, keys, owners, consumers: 1–200 chars of [A-Za-z0-9._:@/-]. */
export const Name = named(
  "Name",
  z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9._:@/-]+$/, "only letters, digits and . _ : @ / - are allowed"),
  "A resource, queue, key, owner or consumer name: 1–200 characters of [A-Za-z0-9._:@/-].",
  ["orders/42", "worker-7@host"],
);

export const LockMode = named(
  "LockMode",
  z.enum(["exclusive", "shared"]),
  "Any number of shared holders, or exactly one exclusive holder.",
  ["exclusive"],
);

const PeerId = z.string().regex(/^p[1-9][0-9]{0,3}$/, "peer ids are p1, p2, ...");

// ---------------------------------------------------------------------------------------------
// Request bodies

export const AcquireBody = named(
  "AcquireBody",
  z.strictObject({
    owner: Name,
    mode: LockMode.default("exclusive"),
    ttlMs: z.number().int().min(100).max(3_600_000).default(30_000),
    waitMs: z.number().int().min(0).max(60_000).default(0),
  }),
  "Who asks, in which mode, for how long a lease, and how long to wait behind other holders (0: try once).",
  [
    { owner: "worker-7", mode: "exclusive", ttlMs: 30_000, waitMs: 5_000 },
    { owner: "reader-1", mode: "shared" },
  ],
);

export const ReleaseBody = named(
  "ReleaseBody",
  z.strictObject({ owner: Name }),
  "The owner that releases the lock, or withdraws its wait for it.",
  [{ owner: "worker-7" }],
);

export const RenewBody = named(
  "RenewBody",
  z.strictObject({
    owner: Name,
    ttlMs: z.number().int().min(100).max(3_600_000).optional(),
  }),
  "The holder and the new lease length from now (default: the TTL the lease was last given).",
  [{ owner: "worker-7", ttlMs: 30_000 }],
);

export const PeerBody = named(
  "PeerBody",
  z.strictObject({
    id: PeerId,
    /** Multi-process clusters only: where the new node listens (a node started with JOIN sends it itself). */
    url: z.url({ protocol: /^https?$/ }).optional(),
  }),
  "The peer to add to every group; `url` (multi-process clusters only) is where its node listens.",
  [{ id: "p4" }, { id: "p4", url: "http://10.0.0.4:8787" }],
);

export const PartitionBody = named(
  "PartitionBody",
  z.strictObject({
    sides: z.array(z.array(PeerId).min(1)).min(2),
  }),
  "Peers on different sides stop hearing each other, in every group.",
  [{ sides: [["p1", "p2"], ["p3"]] }],
);

export const ClockBody = named(
  "ClockBody",
  z.strictObject({ offsetMs: z.number().int().min(-3_600_000).max(3_600_000) }),
  "How far ahead (or, negative, behind) of real time the peer's clock runs from now on; 0 restores it.",
  [{ offsetMs: 2_000 }],
);

/** Any JSON value (what `JSON.parse` can return); `undefined` is not JSON. */
export const Json = z.unknown().refine((v) => v !== undefined, "required");

export const EnqueueBody = named(
  "EnqueueBody",
  z.strictObject({
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
  }),
  "1..100 messages: any JSON body (≤ 128 KiB serialized); the same `key` keeps order on one shard; a repeated `id` within 5 minutes is not enqueued again.",
  [
    {
      messages: [
        { body: { order: 42 }, key: "customer-7" },
        { body: "hello", id: "msg-1", delayMs: 1_000 },
      ],
    },
  ],
);

export const ReceiveBody = named(
  "ReceiveBody",
  z.strictObject({
    max: z.number().int().min(1).max(100).default(1),
    visibilityMs: z.number().int().min(1000).max(43_200_000).optional(),
    waitMs: z.number().int().min(0).max(20_000).default(0),
    consumer: Name.optional(),
  }),
  "Up to `max` messages, each invisible to others for `visibilityMs` (default: the queue's, 30000), waiting up to `waitMs` for one to arrive.",
  [{ max: 10, visibilityMs: 30_000, waitMs: 5_000, consumer: "worker-7" }],
);

export const Receipt = named(
  "Receipt",
  z
    .string()
    .min(1)
    .max(200)
    .refine((r) => parseReceipt(r) !== undefined, "not a receipt this service issued (<shard>:<seq>:<delivery>)"),
  "A delivery's receipt as receive issued it (`<shard>:<seq>:<delivery>`); malformed ones are 400, stale ones count as not done.",
  ["0:17:1"],
);

/** Receipts as this service issues them (`<shard>:<seq>:<delivery>`); well-formed stale ones count as not acked. */
const Receipts = z.array(Receipt).max(1000);

export const AckBody = named("AckBody", z.strictObject({ receipts: Receipts }), "Deliveries to ack.", [
  { receipts: ["0:17:1", "3:5:2"] },
]);

export const NackBody = named(
  "NackBody",
  z.strictObject({
    receipts: Receipts,
    delayMs: z.number().int().min(0).max(43_200_000).optional(),
  }),
  "Deliveries to give back; they are visible again after `delayMs` (default at once).",
  [{ receipts: ["0:17:1"], delayMs: 5_000 }],
);

export const ExtendBody = named(
  "ExtendBody",
  z.strictObject({ receipts: Receipts, visibilityMs: z.number().int().min(0).max(43_200_000) }),
  "Deliveries whose invisibility is extended to `visibilityMs` from now.",
  [{ receipts: ["0:17:1"], visibilityMs: 60_000 }],
);

export const RedriveBody = named(
  "RedriveBody",
  z.strictObject({ max: z.number().int().min(1).max(1_000_000).optional() }),
  "At most `max` messages (default all) to move from `{queue}.dlq` back to the queue.",
  [{ max: 100 }, {}],
);

export const QueueConfigBody = named(
  "QueueConfigBody",
  z.strictObject({
    maxAttempts: z.number().int().min(1).max(1000).optional(),
    visibilityMs: z.number().int().min(1000).max(43_200_000).optional(),
  }),
  "Deliveries before a message moves to `{queue}.dlq` (default 5) and the default visibility timeout (default 30000).",
  [{ maxAttempts: 3, visibilityMs: 60_000 }],
);

export const CachePutBody = named("CachePutBody", z.strictObject({ value: Json }), "Any JSON value (≤ 128 KiB).", [
  { value: { name: "Ada", visits: 3 } },
]);

/** Peers a cache node is cut off from (all of them when absent); `[]` heals. */
export const CachePartitionBody = named(
  "CachePartitionBody",
  z.strictObject({
    peers: z.array(PeerId).optional(),
  }),
  "Raft peers the cache node is cut off from (all of them when absent); `[]` heals.",
  [{ peers: ["p1"] }, {}],
);

// Listing and housekeeping (GET /v1/queues, peek, purge, DELETE /v1/queues/{queue}, GET /v1/locks).

export const PeekBody = named(
  "PeekBody",
  z.strictObject({ max: z.number().int().min(1).max(100).default(10) }),
  "At most `max` visible messages (default 10).",
  [{ max: 10 }],
);

/** Purge takes no options: an empty body (or `{}`). */
export const PurgeBody = named("PurgeBody", z.strictObject({}), "No options: `{}` (or an empty body).", [{}]);

/**
 * `stale=true`: each group's leader answers from its own state, with no quorum round and without
 * waking a quiet group (dashboards, monitoring); it may miss the last moment's changes.
 */
export const StaleRead = z.enum(["true", "false"]).optional();

export const LockListQuery = z.strictObject({ prefix: Name.optional(), stale: StaleRead });
export const QueueListQuery = z.strictObject({ stale: StaleRead });

// ---------------------------------------------------------------------------------------------
// Replies (200, or 202 for membership changes)

export const Holder = named(
  "Holder",
  z.object({ owner: z.string(), mode: LockMode, expiresAt: z.number() }),
  "An owner holding a lock, and when its lease ends (epoch ms).",
  [{ owner: "worker-7", mode: "exclusive", expiresAt: 1_767_225_600_000 }],
);

export const Waiter = named(
  "Waiter",
  z.object({ owner: z.string(), mode: LockMode }),
  "An owner waiting for a lock (waiters are served first come, first served).",
  [{ owner: "worker-8", mode: "exclusive" }],
);

export const GrantReply = named(
  "GrantReply",
  z.object({
    resource: z.string(),
    owner: z.string(),
    mode: LockMode,
    fencingToken: z.number(),
    expiresAt: z.number(),
  }),
  "The lock is granted: `fencingToken` strictly increases per resource; the lease ends at `expiresAt` (epoch ms).",
  [{ resource: "orders/42", owner: "worker-7", mode: "exclusive", fencingToken: 17, expiresAt: 1_767_225_600_000 }],
);

export const ReleaseReply = named(
  "ReleaseReply",
  z.object({ released: z.boolean(), withdrawn: z.boolean().optional() }),
  "`released: true`: the owner held the lock and no longer does. `released: false, withdrawn: true`: the owner was still waiting; its wait is withdrawn and it will never be granted.",
  [{ released: true }, { released: false, withdrawn: true }],
);

export const RenewReply = named("RenewReply", z.object({ expiresAt: z.number() }), "The lease's new end (epoch ms).", [
  { expiresAt: 1_767_225_630_000 },
]);

export const LockViewReply = named(
  "LockViewReply",
  z.object({
    resource: z.string(),
    mode: LockMode.nullable(),
    holders: z.array(Holder),
    waiters: z.array(Waiter),
  }),
  "A lock's holders and waiters; `mode` is null when nobody holds it.",
  [
    {
      resource: "orders/42",
      mode: "exclusive",
      holders: [{ owner: "worker-7", mode: "exclusive", expiresAt: 1_767_225_600_000 }],
      waiters: [{ owner: "worker-8", mode: "exclusive" }],
    },
  ],
);

export const LockListReply = named(
  "LockListReply",
  z.object({ locks: z.array(LockViewReply), truncated: z.boolean() }),
  "Held or waited-for locks sorted by resource; `truncated` when there were more than 1000.",
  [
    {
      locks: [
        {
          resource: "orders/42",
          mode: "shared",
          holders: [{ owner: "reader-1", mode: "shared", expiresAt: 1_767_225_600_000 }],
          waiters: [],
        },
      ],
      truncated: false,
    },
  ],
);

export const EnqueueReply = named(
  "EnqueueReply",
  z.object({ messages: z.array(z.object({ id: z.string(), shard: z.number() })) }),
  "Each message's id (given or generated) and shard, in the order sent. Resending the batch with these ids stores nothing twice.",
  [
    {
      messages: [
        { id: "7f3c1a52-3f0e-4a8e-9b7d-0c1d2e3f4a5b", shard: 2 },
        { id: "msg-1", shard: 0 },
      ],
    },
  ],
);

export const ReceivedMessage = named(
  "ReceivedMessage",
  z.object({
    id: z.string(),
    body: z.unknown(),
    key: z.string().optional(),
    receipt: z.string(),
    attempts: z.number(),
    enqueuedAt: z.number(),
  }),
  "A delivery: ack it with `receipt` before its visibility ends, or it is delivered again; `attempts` counts deliveries, this one included.",
  [
    {
      id: "msg-1",
      body: { order: 42 },
      key: "customer-7",
      receipt: "0:17:1",
      attempts: 1,
      enqueuedAt: 1_767_225_500_000,
    },
  ],
);

export const ReceiveReply = named(
  "ReceiveReply",
  z.object({ messages: z.array(ReceivedMessage) }),
  "The messages delivered (an empty list when none came within `waitMs`).",
  [
    {
      messages: [{ id: "msg-1", body: "hello", receipt: "0:17:1", attempts: 1, enqueuedAt: 1_767_225_500_000 }],
    },
    { messages: [] },
  ],
);

export const AckReply = named("AckReply", z.object({ acked: z.number() }), "How many deliveries were acked.", [
  { acked: 2 },
]);

export const NackReply = named(
  "NackReply",
  z.object({ released: z.number() }),
  "How many deliveries were given back.",
  [{ released: 1 }],
);

export const ExtendReply = named(
  "ExtendReply",
  z.object({ extended: z.number() }),
  "How many deliveries had their visibility extended.",
  [{ extended: 1 }],
);

export const RedriveReply = named(
  "RedriveReply",
  z.object({ moved: z.number() }),
  "How many messages moved from the DLQ back to the queue.",
  [{ moved: 12 }],
);

export const QueueConfigReply = named(
  "QueueConfigReply",
  z.object({ queue: z.string(), maxAttempts: z.number(), visibilityMs: z.number() }),
  "The queue's configuration after the change.",
  [{ queue: "orders", maxAttempts: 3, visibilityMs: 60_000 }],
);

export const QueueStatsReply = named(
  "QueueStatsReply",
  z.object({
    queue: z.string(),
    visible: z.number(),
    inflight: z.number(),
    delayed: z.number(),
    dlq: z.number(),
    shards: z.array(z.object({ shard: z.number(), visible: z.number(), inflight: z.number() })),
  }),
  "Message counts summed over the queue's shards (`dlq`: messages in `{queue}.dlq`), and per shard.",
  [
    {
      queue: "orders",
      visible: 5,
      inflight: 1,
      delayed: 0,
      dlq: 2,
      shards: [
        { shard: 0, visible: 3, inflight: 1 },
        { shard: 1, visible: 2, inflight: 0 },
      ],
    },
  ],
);

export const QueueSummary = named(
  "QueueSummary",
  z.object({ queue: z.string(), visible: z.number(), inflight: z.number(), delayed: z.number(), dlq: z.number() }),
  "A queue's message counts summed over its shards.",
  [{ queue: "orders", visible: 5, inflight: 1, delayed: 0, dlq: 2 }],
);

export const QueueListReply = named(
  "QueueListReply",
  z.object({ queues: z.array(QueueSummary) }),
  "Every queue known on any group, sorted by name.",
  [{ queues: [{ queue: "orders", visible: 5, inflight: 1, delayed: 0, dlq: 2 }] }],
);

export const PeekedMessage = named(
  "PeekedMessage",
  z.object({
    id: z.string(),
    body: z.unknown(),
    key: z.string().optional(),
    attempts: z.number(),
    enqueuedAt: z.number(),
  }),
  "A visible message, not delivered: no receipt, no attempt counted.",
  [{ id: "msg-1", body: { order: 42 }, attempts: 0, enqueuedAt: 1_767_225_500_000 }],
);

export const PeekReply = named(
  "PeekReply",
  z.object({ messages: z.array(PeekedMessage) }),
  "Up to `max` visible messages.",
  [{ messages: [{ id: "msg-1", body: { order: 42 }, attempts: 0, enqueuedAt: 1_767_225_500_000 }] }],
);

export const PurgeReply = named("PurgeReply", z.object({ purged: z.number() }), "How many messages were dropped.", [
  { purged: 5 },
]);

export const DeleteQueueReply = named(
  "DeleteQueueReply",
  z.object({ deleted: z.literal(true) }),
  "The queue, its messages and its config are gone (its `.dlq` stays).",
  [{ deleted: true }],
);

const LineState = named("LineState", z.enum(["M", "E", "S"]), "A cache line's MESI state (I: no line).", ["E"]);

export const CacheGetReply = named(
  "CacheGetReply",
  z.object({
    key: z.string(),
    value: z.unknown(),
    node: z.string(),
    state: LineState,
    hit: z.boolean(),
  }),
  "The value as `node` serves it, the state of its line there, and whether it was a hit.",
  [{ key: "user:7", value: { name: "Ada" }, node: "n1", state: "S", hit: true }],
);

export const CachePutReply = named(
  "CachePutReply",
  z.object({ key: z.string(), node: z.string(), state: LineState }),
  "The node that wrote the value and its line's state (M).",
  [{ key: "user:7", node: "n1", state: "M" }],
);

export const CacheDeleteReply = named(
  "CacheDeleteReply",
  z.object({ deleted: z.boolean() }),
  "Whether the key had a value.",
  [{ deleted: true }],
);

export const CacheNodeReply = named(
  "CacheNodeReply",
  z.object({
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
  }),
  "A cache node's valid lines and its counters since it last started.",
  [
    {
      node: "n1",
      capacity: 1024,
      lines: [{ key: "user:7", state: "S" }],
      stats: { hits: 9, misses: 3, evictions: 0, invalidations: 1, writebacks: 0, updates: 0, hitRate: 0.75 },
    },
  ],
);

export const PeerStatus = named(
  "PeerStatus",
  z.object({
    id: z.string(),
    role: z.string().meta({ description: "leader, follower, candidate, preCandidate, learner, or down" }),
    matchIndex: z.number(),
    lastContactMs: z.number().nullable(),
  }),
  "A member of a group as its leader sees it: how far its log matches, and how long since it answered (null: unknown).",
  [{ id: "p2", role: "follower", matchIndex: 1041, lastContactMs: 12 }],
);

export const GroupStatus = named(
  "GroupStatus",
  z.object({
    group: z.string(),
    leader: z.string().nullable(),
    term: z.number(),
    commitIndex: z.number(),
    peers: z.array(PeerStatus),
  }),
  "A Raft group: its leader (null during an election), term, commit index and members.",
  [
    {
      group: "g0",
      leader: "p1",
      term: 3,
      commitIndex: 1042,
      peers: [
        { id: "p1", role: "leader", matchIndex: 1042, lastContactMs: null },
        { id: "p2", role: "follower", matchIndex: 1041, lastContactMs: 12 },
        { id: "p3", role: "down", matchIndex: 980, lastContactMs: 5_400 },
      ],
    },
  ],
);

export const ClusterStatusReply = named(
  "ClusterStatusReply",
  z.object({ groups: z.array(GroupStatus) }),
  "Every Raft group of the cluster.",
  [
    {
      groups: [
        {
          group: "g0",
          leader: "p1",
          term: 3,
          commitIndex: 1042,
          peers: [{ id: "p1", role: "leader", matchIndex: 1042, lastContactMs: null }],
        },
      ],
    },
  ],
);

export const MembershipReply = named(
  "MembershipReply",
  z.object({
    accepted: z.literal(true),
    change: z.string().meta({ description: "`addLearner` (POST) or `remove` (DELETE)" }),
    peer: z.string(),
  }),
  "Every group committed the change: an added peer is a learner until its leader promotes it, once caught up.",
  [{ accepted: true, change: "addLearner", peer: "p4" }],
);

export const PartitionReply = named(
  "PartitionReply",
  z.object({ partitioned: z.array(z.array(z.string())) }),
  "The sides now cut off from each other.",
  [{ partitioned: [["p1", "p2"], ["p3"]] }],
);

export const HealReply = named("HealReply", z.object({ healed: z.literal(true) }), "Every link is restored.", [
  { healed: true },
]);

export const CrashReply = named("CrashReply", z.object({ crashed: z.string() }), "The peer crashed in every group.", [
  { crashed: "p2" },
]);

export const RestartReply = named(
  "RestartReply",
  z.object({ restarted: z.string() }),
  "The peer restarted from its storage in every group.",
  [{ restarted: "p2" }],
);

export const ClockReply = named(
  "ClockReply",
  z.object({ peer: z.string(), offsetMs: z.number() }),
  "The peer's clock offset from now on.",
  [{ peer: "p2", offsetMs: 2_000 }],
);

export const CacheFaultReply = named(
  "CacheFaultReply",
  z.object({ node: z.string(), crashed: z.literal(true).optional(), restarted: z.literal(true).optional() }),
  "The cache node crashed (or restarted).",
  [{ node: "n2", crashed: true }],
);

export const CachePartitionReply = named(
  "CachePartitionReply",
  z.object({ node: z.string(), blocked: z.array(z.string()) }),
  "The peers the cache node is now cut off from (empty: healed).",
  [{ node: "n2", blocked: ["p1", "p2", "p3"] }],
);

export const HealthReply = named("HealthReply", z.object({ ok: z.literal(true) }), "The process serves.", [
  { ok: true },
]);

export const ReadyReply = named(
  "ReadyReply",
  z.object({ ready: z.literal(true), groups: z.number() }),
  "Every group has a leader.",
  [{ ready: true, groups: 4 }],
);

export const IndexReply = named(
  "IndexReply",
  z.object({
    service: z.string(),
    version: z.string(),
    description: z.string(),
    links: z.record(z.string(), z.string()),
  }),
  "What the service is and where to look next.",
  [
    {
      service: "raft-locks",
      version: "v1",
      description: "Raft-replicated locks, queues and a coherent cache over HTTP",
      links: { openapi: "/openapi.json", dashboard: "/dashboard", problems: "/problems" },
    },
  ],
);

export const ProblemPage = named(
  "ProblemPage",
  z.object({ type: z.string(), title: z.string(), status: z.number(), description: z.string() }),
  "What a problem type means and what to do about it.",
  [
    {
      type: "/problems/no-quorum",
      title: "No quorum",
      status: 503,
      description: "The Raft group that owns the key has no leader that can commit right now. Retry after Retry-After.",
    },
  ],
);

export const ProblemIndex = named(
  "ProblemIndex",
  z.object({ problems: z.array(ProblemPage) }),
  "Every problem type this service answers, with its page.",
  [
    {
      problems: [
        {
          type: "/problems/not-holder",
          title: "Not the holder",
          status: 409,
          description: "The owner does not hold the lock (it was never granted, was released, or its lease expired).",
        },
      ],
    },
  ],
);

export const OpenApiReply = named(
  "OpenApiReply",
  z.looseObject({
    openapi: z.string(),
    info: z.looseObject({ title: z.string(), version: z.string() }),
    paths: z.record(z.string(), z.unknown()),
  }),
  "An OpenAPI 3.1 document (this one).",
  [{ openapi: "3.1.0", info: { title: "raft-locks", version: "1" }, paths: {} }],
);

// ---------------------------------------------------------------------------------------------
// Problems (RFC 9457, `application/problem+json`): workers/problem.ts builds them.

const problemFields = {
  type: z.string().meta({ description: "A URI, `/problems/<name>`; GET on it explains the problem." }),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
};

/** A problem of `type` with its own fields (extension members): a literal type and status to tell them apart. */
function problemOf<T extends z.ZodRawShape>(name: string, status: number, fields: T) {
  return z.looseObject({
    ...problemFields,
    type: z.literal(`/problems/${name}`),
    status: z.literal(status),
    ...fields,
  });
}

export const Problem = named(
  "Problem",
  z.looseObject(problemFields),
  "Any error (RFC 9457). Problems of some types carry more fields (see the specific schemas).",
  [{ type: "/problems/not-found", title: "Not found", status: 404, detail: "no route for GET /v1/nope" }],
);

export const ValidationProblem = named(
  "ValidationProblem",
  problemOf("validation", 400, {
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
  "The request is malformed; `errors` lists each bad field (an unknown one with a guess at the one meant).",
  [
    {
      type: "/problems/validation",
      title: "Invalid request",
      status: 400,
      detail: "body: unknown field `ttl` (did you mean `ttlMs`?)",
      errors: [{ path: "", message: "unknown field `ttl` (did you mean `ttlMs`?)" }],
    },
  ],
);

export const LockConflictProblem = named(
  "LockConflictProblem",
  problemOf("lock-conflict", 409, { holders: z.array(Holder), waitedMs: z.number() }),
  "Not granted within `waitMs`: `holders` hold it; `waitedMs` is how long this request waited (0 for a try-lock).",
  [
    {
      type: "/problems/lock-conflict",
      title: "Lock conflict",
      status: 409,
      detail: "orders/42 is still held by others after waiting 5003 ms",
      holders: [{ owner: "worker-7", mode: "exclusive", expiresAt: 1_767_225_600_000 }],
      waitedMs: 5003,
    },
  ],
);

export const DeadlockProblem = named(
  "DeadlockProblem",
  problemOf("deadlock", 409, { cycle: z.array(z.string()) }),
  "Waiting would close a cycle in the wait-for graph (`cycle`, owners); this request is the victim.",
  [
    {
      type: "/problems/deadlock",
      title: "Deadlock",
      status: 409,
      detail: "waiting for orders/42 would deadlock",
      cycle: ["worker-7", "worker-8"],
    },
  ],
);

export const NotHolderProblem = named(
  "NotHolderProblem",
  problemOf("not-holder", 409, {}),
  "The owner does not hold the lock (never granted, released, or expired).",
  [{ type: "/problems/not-holder", title: "Not the holder", status: 409, detail: "worker-7 does not hold orders/42" }],
);

export const NoQuorumProblem = named(
  "NoQuorumProblem",
  problemOf("no-quorum", 503, {
    messages: z
      .array(z.object({ id: z.string(), shard: z.number() }))
      .optional()
      .meta({ description: "Enqueue only: the ids of the batch, to resend it with (nothing is stored twice)." }),
  }),
  "The owning Raft group has no leader that can commit: retry after `Retry-After` seconds with the same Idempotency-Key.",
  [
    {
      type: "/problems/no-quorum",
      title: "No quorum",
      status: 503,
      detail: "the owning Raft group has no leader that can commit",
    },
  ],
);
