// The OpenAPI 3.1 document of every route, served at /openapi.json and exported to docs/openapi.yaml
// (`npm run openapi`). Every request body, reply and problem is a named zod schema of
// workers/schemas.ts: `z.toJSONSchema` turns them into `components/schemas`, and operations point
// at them with `$ref`, so no JSON Schema is written here by hand. The examples of an operation are
// the examples of its schemas (typed in schemas.ts, validated by the OpenAPI tests).
import { z } from "zod";
import { type ProblemType, problemPage } from "./problem.js";
import * as S from "./schemas.js";

/** The problem answers operations list by name; each is a `components/responses` entry. */
const PROBLEMS = {
  Invalid: { status: 400, schemas: [S.ValidationProblem] },
  Unauthorized: { status: 401, schemas: [S.Problem], type: "unauthorized" },
  Forbidden: { status: 403, schemas: [S.Problem], type: "forbidden" },
  NotFound: { status: 404, schemas: [S.Problem], type: "not-found" },
  AcquireConflict: { status: 409, schemas: [S.LockConflictProblem, S.DeadlockProblem] },
  NotHolder: { status: 409, schemas: [S.NotHolderProblem] },
  PayloadTooLarge: { status: 413, schemas: [S.Problem], type: "payload-too-large" },
  IdempotencyKeyReused: { status: 422, schemas: [S.Problem], type: "idempotency-key-reused" },
  NoQuorum: { status: 503, schemas: [S.NoQuorumProblem] },
} satisfies Record<string, { status: number; schemas: z.ZodType[]; type?: ProblemType }>;

type ProblemName = keyof typeof PROBLEMS;

interface Op {
  summary: string;
  description: string;
  body?: z.ZodType;
  ok?: z.ZodType;
  status?: number;
  errors?: ProblemName[];
  parameters?: unknown[];
}

/** The id a schema is named with in schemas.ts (every body and reply must have one). */
function idOf(schema: z.ZodType): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (id === undefined) throw new Error("a request body or reply schema without an id: name it in schemas.ts");
  return id;
}

const ref = (schema: z.ZodType) => ({ $ref: `#/components/schemas/${idOf(schema)}` });

/** A media type: the schema by reference, and the schema's examples as named examples. */
function media(schema: z.ZodType) {
  const examples = (z.globalRegistry.get(schema)?.examples ?? []) as unknown[];
  return {
    schema: ref(schema),
    examples: Object.fromEntries(examples.map((value, i) => [`${idOf(schema)}${i + 1}`, { value }])),
  };
}

function operation(op: Op) {
  const responses: Record<string, unknown> = {
    [String(op.status ?? 200)]: {
      description: op.ok ? (z.globalRegistry.get(op.ok)?.description ?? "OK") : "OK",
      ...(op.ok ? { content: { "application/json": media(op.ok) } } : {}),
    },
  };
  for (const name of op.errors ?? []) responses[PROBLEMS[name].status] = problemRef(name);
  return {
    summary: op.summary,
    description: op.description,
    ...(op.parameters ? { parameters: op.parameters } : {}),
    ...(op.body ? { requestBody: { required: true, content: { "application/json": media(op.body) } } } : {}),
    responses,
  };
}

const problemRef = (name: ProblemName) => ({ $ref: `#/components/responses/${name}` });

/** `components/responses`: each problem answer, its schema(s) and examples. */
function problemResponses() {
  const out: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(PROBLEMS) as [ProblemName, (typeof PROBLEMS)[ProblemName]][]) {
    const page = "type" in p ? problemPage(p.type) : undefined;
    const examples = page
      ? // A generic Problem: its example is the problem's own page (type, title, status; the explanation as detail).
        { [name]: { value: { type: page.type, title: page.title, status: page.status, detail: page.description } } }
      : Object.fromEntries(p.schemas.flatMap((s) => Object.entries(media(s).examples)));
    const schema = p.schemas.length === 1 ? ref(p.schemas[0] as z.ZodType) : { oneOf: p.schemas.map(ref) };
    out[name] = {
      description: page
        ? `${page.title}: ${page.description}`
        : p.schemas.map((s) => z.globalRegistry.get(s)?.description).join(" Or: "),
      ...(p.status === 503
        ? {
            headers: {
              "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer" } },
            },
          }
        : {}),
      content: { "application/problem+json": { schema, examples } },
    };
  }
  return out;
}

/**
 * `components/schemas`: every named schema. Request bodies are given as a client writes them
 * (`io: "input"`: fields with a default are optional); replies as the service sends them.
 */
function schemaComponents(bodies: Set<string>): Record<string, unknown> {
  const generate = (io: "input" | "output") =>
    z.toJSONSchema(z.globalRegistry, { io, uri: (id) => `#/components/schemas/${id}` }).schemas;
  const input = generate("input");
  const output = generate("output");
  const out: Record<string, unknown> = {};
  for (const [id, schema] of Object.entries(output)) {
    if (id === "__shared") throw new Error("an unnamed schema was extracted: name it in schemas.ts");
    // Each entry is generated as a document of its own: drop its `$schema` and `$id`.
    const { $schema: _s, $id: _i, ...rest } = (bodies.has(id) ? input[id] : schema) as Record<string, unknown>;
    out[id] = rest;
  }
  return out;
}

const nameParam = (n: string) => ({ name: n, in: "path", required: true, schema: ref(S.Name) });
const peerParam = {
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^p[1-9][0-9]{0,3}$" },
};
const cacheNodeParam = (where: "path" | "query") => ({
  name: "node",
  in: where,
  required: where === "path",
  description: "A cache node, n1..nN (CACHE_NODES).",
  schema: { type: "string", pattern: "^n[1-9][0-9]*$" },
});

const idempotencyKey = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "1–200 characters. A request repeating a key seen in the last 10 minutes is not applied again and gets the " +
    "first answer (status and body, with `idempotent-replayed: true`); the same key with another method, path or " +
    "body is 422 idempotency-key-reused.",
  schema: { type: "string", minLength: 1, maxLength: 200 },
};

type Doc = ReturnType<typeof document>;

/**
 * Every POST, PUT and DELETE accepts `Idempotency-Key` and may answer 422 `idempotency-key-reused`
 * (a 400 for an invalid key, a 503 while the key's group has no quorum or its table is full).
 */
function withIdempotency(doc: Doc): Doc {
  for (const item of Object.values(doc.paths) as Record<string, unknown>[]) {
    for (const method of ["post", "put", "delete"]) {
      const op = item[method] as { parameters?: unknown[]; responses: Record<string, unknown> } | undefined;
      if (op === undefined) continue;
      op.parameters = [...(op.parameters ?? []), { $ref: "#/components/parameters/IdempotencyKey" }];
      for (const name of ["Invalid", "IdempotencyKeyReused", "NoQuorum"] as const) {
        op.responses[PROBLEMS[name].status] ??= problemRef(name);
      }
    }
  }
  return doc;
}

/**
 * Every operation gets a tag (the part of the API: locks, queues, cache, cluster, admin; service
 * for the rest) and an operationId derived from its method and path, unique because they are:
 * `POST /v1/locks/{resource}/acquire` is `postLocksByResourceAcquire`.
 */
function withOperationIds(doc: Doc): Doc {
  const camel = (s: string) =>
    s.charAt(0).toUpperCase() + s.slice(1).replace(/[^A-Za-z0-9]+(.)/g, (_, c) => c.toUpperCase());
  for (const [path, item] of Object.entries(doc.paths) as [string, Record<string, unknown>][]) {
    const segments = path.split("/").filter((s) => s !== "" && s !== "v1");
    const tag = path.startsWith("/v1/") ? (segments[0] ?? "service") : "service";
    const words = segments.map((s) => (s.startsWith("{") ? `By${camel(s.slice(1, -1))}` : camel(s)));
    for (const method of ["get", "put", "post", "delete", "patch"]) {
      const op = item[method] as Record<string, unknown> | undefined;
      if (op === undefined) continue;
      op.operationId = method + (words.length > 0 ? words.join("") : "Index");
      op.tags = [tag];
    }
  }
  return doc;
}

/** The OpenAPI 3.1 document of every route. */
export function openApiDocument() {
  return withOperationIds(withIdempotency(document()));
}

/** The request body schemas of `paths` (their components are generated as input). */
function bodyIds(paths: Record<string, Record<string, unknown>>): Set<string> {
  const ids = new Set<string>();
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item) as {
      requestBody?: { content: Record<string, { schema: { $ref: string } }> };
    }[]) {
      const schema = op?.requestBody?.content["application/json"]?.schema;
      if (schema !== undefined) ids.add(schema.$ref.split("/").pop() as string);
    }
  }
  return ids;
}

function document() {
  const p = paths();
  return {
    openapi: "3.1.0",
    info: {
      title: "raft-locks",
      version: "1",
      description:
        "Raft-replicated locks, queues and a coherent cache over HTTP. Limits, errors, retries and guarantees: " +
        "docs/api.md. Errors are RFC 9457 problems whose `type` URI (`/problems/<name>`) answers a page about them.",
    },
    tags: [
      { name: "locks", description: "Leases with fencing tokens, shared or exclusive, FIFO waits, deadlock detection" },
      { name: "queues", description: "Sharded at-least-once queues with visibility timeouts and dead-letter queues" },
      { name: "cache", description: "A MESI-coherent cache in front of the replicated store" },
      { name: "cluster", description: "Raft groups and membership" },
      { name: "admin", description: "Fault injection (FAULT_INJECTION=true only; admin token)" },
      { name: "service", description: "Index, health, metrics, this document, problem pages, dashboard" },
    ],
    components: {
      schemas: schemaComponents(bodyIds(p)),
      responses: problemResponses(),
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      parameters: { IdempotencyKey: idempotencyKey },
    },
    security: [{ bearer: [] }],
    paths: p,
  };
}

/** `?stale=true` on the listings (workers/schemas.ts StaleRead). */
const staleParameter = {
  name: "stale",
  in: "query",
  required: false,
  description:
    "`true`: each group's leader answers from its own state, with no quorum round and without waking a quiet " +
    "group (dashboards, monitoring); it may miss the last moment's changes. Default: a linearizable read.",
  schema: { type: "string", enum: ["true", "false"] },
};

/** Service routes: no token, not under /v1. */
const open = (op: Op, extra: Record<string, unknown> = {}) => ({ ...operation(op), security: [], ...extra });

const text = (description: string, type: string) => ({
  "200": { description, content: { [type]: { schema: { type: "string" } } } },
});

function paths(): Record<string, Record<string, unknown>> {
  const lockErrors: ProblemName[] = ["Invalid", "Unauthorized", "NoQuorum"];
  const queueErrors: ProblemName[] = ["Invalid", "Unauthorized", "NoQuorum"];
  const adminErrors: ProblemName[] = ["Unauthorized", "Forbidden", "NotFound"];
  return {
    "/v1/locks/{resource}/acquire": {
      parameters: [nameParam("resource")],
      post: operation({
        summary: "Acquire a lock",
        description:
          "Grants the lock to `owner` in `mode` for `ttlMs`, waiting up to `waitMs` behind conflicting holders " +
          "(first come, first served). Re-acquiring in the same mode is idempotent (same token, TTL extended); a " +
          "sole shared holder asking for exclusive upgrades. 409 lock-conflict when not granted in time, deadlock " +
          "when waiting would close a cycle. On Cloudflare, a client that disconnects while waiting withdraws its wait.",
        body: S.AcquireBody,
        ok: S.GrantReply,
        errors: [...lockErrors, "AcquireConflict"],
      }),
    },
    "/v1/locks/{resource}/release": {
      parameters: [nameParam("resource")],
      post: operation({
        summary: "Release a lock, or withdraw a wait",
        description:
          "Releases the owner's lease; the next waiters are granted. An owner that is still waiting (not holding) " +
          "withdraws its wait instead: `released: false, withdrawn: true`, and it is never granted.",
        body: S.ReleaseBody,
        ok: S.ReleaseReply,
        errors: [...lockErrors, "NotHolder"],
      }),
    },
    "/v1/locks/{resource}/renew": {
      parameters: [nameParam("resource")],
      post: operation({
        summary: "Renew a lease",
        description: "Extends a live lease to `ttlMs` from now (default: its last TTL); 409 not-holder once expired.",
        body: S.RenewBody,
        ok: S.RenewReply,
        errors: [...lockErrors, "NotHolder"],
      }),
    },
    "/v1/locks": {
      get: operation({
        summary: "List locks",
        description:
          "Locks held or waited for on every group, sorted by resource: at most 1000, then `truncated`. " +
          "`prefix` keeps the resources whose name starts with it.",
        ok: S.LockListReply,
        errors: lockErrors,
        parameters: [
          {
            name: "prefix",
            in: "query",
            required: false,
            description: "Only resources whose name starts with this.",
            schema: ref(S.Name),
          },
          staleParameter,
        ],
      }),
    },
    "/v1/locks/{resource}": {
      parameters: [nameParam("resource")],
      get: operation({
        summary: "Lock state",
        description: "The lock's holders and waiters, a linearizable read on the group's leader.",
        ok: S.LockViewReply,
        errors: lockErrors,
      }),
    },
    "/v1/queues/{queue}/messages": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Send messages",
        description:
          "Enqueues 1..100 messages. Messages with one `key` go to one shard and are delivered in order. A repeated " +
          "`id` within 5 minutes is accepted and not stored again, so a batch can be resent with the ids of its " +
          "first answer (or of its 503, which lists them when the batch spans shards).",
        body: S.EnqueueBody,
        ok: S.EnqueueReply,
        errors: [...queueErrors, "PayloadTooLarge"],
      }),
    },
    "/v1/queues/{queue}/receive": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Receive messages",
        description:
          "Delivers up to `max` visible messages, each invisible to others until acked or until `visibilityMs` " +
          "passes (then it is delivered again: at least once). Waits up to `waitMs` for one (long polling). After " +
          "`maxAttempts` deliveries a message moves to `{queue}.dlq`.",
        body: S.ReceiveBody,
        ok: S.ReceiveReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues/{queue}/ack": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Ack deliveries",
        description: "Acks deliveries by receipt: an acked message is never delivered again. Stale receipts count 0.",
        body: S.AckBody,
        ok: S.AckReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues/{queue}/nack": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Give deliveries back",
        description: "The messages are visible again after `delayMs` (default at once). Stale receipts count 0.",
        body: S.NackBody,
        ok: S.NackReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues/{queue}/extend": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Extend visibility",
        description: "Deliveries stay invisible for `visibilityMs` from now. Stale receipts count 0.",
        body: S.ExtendBody,
        ok: S.ExtendReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues/{queue}/redrive": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Redrive the dead-letter queue",
        description: "Moves up to `max` messages (default all) from `{queue}.dlq` back to `{queue}`.",
        body: S.RedriveBody,
        ok: S.RedriveReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues": {
      get: operation({
        summary: "List queues",
        description: "Every queue known on any group, with its counts summed over its shards (DLQs under their queue).",
        ok: S.QueueListReply,
        errors: ["Invalid", "Unauthorized", "NoQuorum"],
        parameters: [staleParameter],
      }),
    },
    "/v1/queues/{queue}/peek": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Peek at messages",
        description: "Up to `max` visible messages, without delivering them (no receipt, no attempt counted; a read).",
        body: S.PeekBody,
        ok: S.PeekReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues/{queue}/purge": {
      parameters: [nameParam("queue")],
      post: operation({
        summary: "Purge a queue",
        description:
          "Drops the queue's visible and delayed messages on every shard; deliveries in flight finish; the DLQ stays.",
        body: S.PurgeBody,
        ok: S.PurgeReply,
        errors: queueErrors,
      }),
    },
    "/v1/queues/{queue}": {
      parameters: [nameParam("queue")],
      delete: operation({
        summary: "Delete a queue",
        description: "Forgets the queue, its messages and its config (its `.dlq` stays); a later send re-creates it.",
        ok: S.DeleteQueueReply,
        errors: queueErrors,
      }),
      put: operation({
        summary: "Configure a queue",
        description: "Sets `maxAttempts` (deliveries before the DLQ) and the default `visibilityMs` of receives.",
        body: S.QueueConfigBody,
        ok: S.QueueConfigReply,
        errors: queueErrors,
      }),
      get: operation({
        summary: "Queue statistics",
        description: "Visible, in-flight, delayed and dead-lettered message counts, in total and per shard.",
        ok: S.QueueStatsReply,
        errors: queueErrors,
      }),
    },
    "/v1/cache/{key}": {
      parameters: [nameParam("key"), cacheNodeParam("query")],
      get: operation({
        summary: "Read a cached value",
        description:
          "Reads through the node's cache: a hit in M, E or S is served by the node alone, a miss reads the " +
          "replicated store. Once a PUT or DELETE has answered, no node returns an older value.",
        ok: S.CacheGetReply,
        errors: ["Invalid", "Unauthorized", "NotFound", "NoQuorum"],
      }),
      put: operation({
        summary: "Write a value",
        description:
          "Writes through the node: silent in E or M; otherwise every other holder is invalidated, or with " +
          "`propagation=update` given the new value (S).",
        body: S.CachePutBody,
        ok: S.CachePutReply,
        errors: ["Invalid", "Unauthorized", "NotFound", "PayloadTooLarge", "NoQuorum"],
        parameters: [
          {
            name: "propagation",
            in: "query",
            required: false,
            description: "`invalidate` (default) drops other holders' lines; `update` gives them the new value (S).",
            schema: { type: "string", enum: ["invalidate", "update"] },
          },
        ],
      }),
      delete: operation({
        summary: "Delete a key",
        description: "Deletes the key everywhere: every node's line and the stored value.",
        ok: S.CacheDeleteReply,
        errors: ["Invalid", "Unauthorized", "NotFound", "NoQuorum"],
      }),
    },
    "/v1/cache/nodes/{node}": {
      parameters: [cacheNodeParam("path")],
      get: operation({
        summary: "A cache node",
        description: "The node's valid lines with their MESI states, and its counters.",
        ok: S.CacheNodeReply,
        errors: ["Unauthorized", "NotFound", "NoQuorum"],
      }),
    },
    "/v1/cluster": {
      get: operation({
        summary: "Cluster status",
        description: "Every Raft group: its leader, term, commit index, and each member's role and progress.",
        ok: S.ClusterStatusReply,
        errors: ["Unauthorized"],
      }),
    },
    "/v1/cluster/peers": {
      post: operation({
        summary: "Add a peer",
        description: "Adds a peer to every group (admin): a learner first, a voter once caught up.",
        body: S.PeerBody,
        ok: S.MembershipReply,
        status: 202,
        errors: ["Invalid", "Unauthorized", "Forbidden", "NoQuorum"],
      }),
    },
    "/v1/cluster/peers/{id}": {
      parameters: [peerParam],
      delete: operation({
        summary: "Remove a peer",
        description: "Removes a peer from every group (admin).",
        ok: S.MembershipReply,
        status: 202,
        errors: ["Invalid", "Unauthorized", "Forbidden", "NoQuorum"],
      }),
    },
    "/v1/admin/partition": {
      post: operation({
        summary: "Partition peers",
        description:
          "Peers on different sides stop hearing each other, in every group, until healed (fault injection).",
        body: S.PartitionBody,
        ok: S.PartitionReply,
        errors: ["Invalid", ...adminErrors],
      }),
    },
    "/v1/admin/heal": {
      post: operation({
        summary: "Heal every partition",
        description: "Restores every link between peers and cache nodes (fault injection).",
        ok: S.HealReply,
        errors: adminErrors,
      }),
    },
    "/v1/admin/peers/{id}/crash": {
      parameters: [peerParam],
      post: operation({
        summary: "Crash a peer",
        description: "The peer loses its memory and stops answering, in every group (fault injection).",
        ok: S.CrashReply,
        errors: adminErrors,
      }),
    },
    "/v1/admin/peers/{id}/clock": {
      parameters: [peerParam],
      post: operation({
        summary: "Skew a peer's clock",
        description:
          "The peer's clock runs `offsetMs` ahead of (or behind) real time from now on, in every group; 0 restores " +
          "it. Survives the peer's crash and restart (fault injection).",
        body: S.ClockBody,
        ok: S.ClockReply,
        errors: ["Invalid", ...adminErrors],
      }),
    },
    "/v1/admin/peers/{id}/restart": {
      parameters: [peerParam],
      post: operation({
        summary: "Restart a peer",
        description: "The crashed peer recovers from its durable storage, in every group (fault injection).",
        ok: S.RestartReply,
        errors: adminErrors,
      }),
    },
    "/v1/admin/cache/{node}/crash": {
      parameters: [cacheNodeParam("path")],
      post: operation({
        summary: "Crash a cache node",
        description: "The node loses its lines and counters; dirty values stay in the store (fault injection).",
        ok: S.CacheFaultReply,
        errors: adminErrors,
      }),
    },
    "/v1/admin/cache/{node}/restart": {
      parameters: [cacheNodeParam("path")],
      post: operation({
        summary: "Restart a cache node",
        description: "The crashed node serves again, with an empty cache (fault injection).",
        ok: S.CacheFaultReply,
        errors: adminErrors,
      }),
    },
    "/v1/admin/cache/{node}/partition": {
      parameters: [cacheNodeParam("path")],
      post: operation({
        summary: "Partition a cache node",
        description: "Cuts the node off from Raft peers (default all; `[]` heals) (fault injection).",
        body: S.CachePartitionBody,
        ok: S.CachePartitionReply,
        errors: ["Invalid", ...adminErrors],
      }),
    },
    "/healthz": {
      get: open({ summary: "Liveness", description: "200 while the process serves.", ok: S.HealthReply }),
    },
    "/readyz": {
      get: open({
        summary: "Readiness",
        description: "200 once every group has a leader, else 503 no-quorum naming the groups without one.",
        ok: S.ReadyReply,
        errors: ["NoQuorum"],
      }),
    },
    "/metrics": {
      get: {
        ...open({ summary: "Prometheus metrics", description: "Requests, Raft, queue and cache counters." }),
        responses: text("Prometheus text exposition 0.0.4", "text/plain"),
      },
    },
    "/openapi.json": {
      get: open({
        summary: "This document",
        description: "The OpenAPI 3.1 document, generated from the zod schemas of the routes.",
        ok: S.OpenApiReply,
      }),
    },
    "/": {
      get: open({
        summary: "Service index",
        description: "What the service is, its version, and links: OpenAPI, dashboard, health, metrics, problems.",
        ok: S.IndexReply,
      }),
    },
    "/problems": {
      get: open({
        summary: "Problem types",
        description: "Every problem type this service answers (the `type` of its errors), each with its page.",
        ok: S.ProblemIndex,
      }),
    },
    "/problems/{name}": {
      parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
      get: open({
        summary: "A problem type's page",
        description:
          "The page a problem's `type` URI names: what the error means and what to do (JSON, or HTML for a browser).",
        ok: S.ProblemPage,
        errors: ["NotFound"],
      }),
    },
    "/dashboard": {
      get: {
        ...open({ summary: "Dashboard", description: "A live page of the cluster at work." }),
        responses: text("HTML", "text/html"),
      },
    },
    "/dashboard/events": { get: dashboardEvents() },
  };
}

/** The dashboard's stream: an operation like any /v1 route (token, 401), whose 200 is an event stream. */
function dashboardEvents() {
  const op = operation({
    summary: "Dashboard stream",
    description:
      "Server-sent events for the dashboard: one `snapshot` event a second (groups, locks, queues, cache nodes, " +
      "this Worker's request counters), each part read from the service's own read routes. The stream ends after " +
      "a few minutes; reconnect. Needs the API token like /v1 (as a header, never in the URL).",
    errors: ["Unauthorized"],
  });
  return {
    ...op,
    responses: { ...op.responses, ...text("`event: snapshot`, `data`: one JSON snapshot", "text/event-stream") },
  };
}
