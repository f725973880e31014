import { z } from "zod";
import {
  AckBody,
  AcquireBody,
  CacheGetReply,
  CacheNodeReply,
  CachePartitionBody,
  CachePutBody,
  CachePutReply,
  ClockBody,
  DeleteQueueReply,
  EnqueueBody,
  ExtendBody,
  GrantReply,
  LockListReply,
  LockViewReply,
  NackBody,
  PartitionBody,
  PeekBody,
  PeekReply,
  PeerBody,
  PurgeBody,
  PurgeReply,
  QueueConfigBody,
  QueueListReply,
  ReceiveBody,
  RedriveBody,
  ReleaseBody,
  RenewBody,
} from "./schemas.js";

type Op = { summary: string; body?: z.ZodType; ok?: z.ZodType; status?: number; errors?: string[] };

const problem = { $ref: "#/components/schemas/Problem" };
const json = (schema: z.ZodType) => ({ "application/json": { schema: z.toJSONSchema(schema, { io: "input" }) } });

function operation(op: Op) {
  const responses: Record<string, unknown> = {
    [String(op.status ?? 200)]: { description: "OK", ...(op.ok ? { content: json(op.ok) } : {}) },
  };
  for (const code of op.errors ?? []) {
    responses[code] = { description: "problem", content: { "application/problem+json": { schema: problem } } };
  }
  return {
    summary: op.summary,
    ...(op.body ? { requestBody: { required: true, content: json(op.body) } } : {}),
    responses,
  };
}

const name = (n: string) => ({
  name: n,
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^[A-Za-z0-9._:@/-]{1,200}$" },
});

const cacheNode = [
  {
    name: "node",
    in: "query",
    required: false,
    description: "The cache node that serves the request, n1..nN (also the `x-cache-node` header; default n1).",
    schema: { type: "string", pattern: "^n[1-9][0-9]*$" },
  },
];

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

/**
 * Every POST, PUT and DELETE accepts `Idempotency-Key` and may answer 422 `idempotency-key-reused`
 * (a 400 for an invalid key, a 503 while the key's group has no quorum or its table is full).
 */
function withIdempotency<T extends { paths: Record<string, Record<string, unknown>> }>(doc: T): T {
  for (const item of Object.values(doc.paths)) {
    for (const method of ["post", "put", "delete"]) {
      const op = item[method] as { parameters?: unknown[]; responses: Record<string, unknown> } | undefined;
      if (op === undefined) continue;
      op.parameters = [...(op.parameters ?? []), { $ref: "#/components/parameters/IdempotencyKey" }];
      for (const code of ["400", "422", "503"]) {
        op.responses[code] ??= {
          description: "problem",
          content: { "application/problem+json": { schema: problem } },
        };
      }
    }
  }
  return doc;
}

/** The OpenAPI 3.1 document of every route, request bodies generated from the zod schemas. */
export function openApiDocument() {
  return withOperationIds(withIdempotency(document()));
}

/**
 * Every operation gets a tag (the part of the API: locks, queues, cache, cluster, admin; service
 * for the rest) and an operationId derived from its method and path, unique because they are:
 * `POST /v1/locks/{resource}/acquire` is `postLocksByResourceAcquire`.
 */
function withOperationIds<T extends { paths: Record<string, Record<string, unknown>> }>(doc: T): T {
  const camel = (s: string) =>
    s.charAt(0).toUpperCase() + s.slice(1).replace(/[^A-Za-z0-9]+(.)/g, (_, c) => c.toUpperCase());
  for (const [path, item] of Object.entries(doc.paths)) {
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

function document() {
  const lockErrors = ["400", "401", "409", "503"];
  return {
    openapi: "3.1.0",
    info: { title: "raft-locks", version: "1" },
    components: {
      schemas: {
        Problem: {
          type: "object",
          required: ["type", "title", "status", "detail"],
          properties: {
            type: { type: "string" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
          },
        },
      },
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      parameters: { IdempotencyKey: idempotencyKey },
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/locks/{resource}/acquire": {
        parameters: [name("resource")],
        post: operation({ summary: "Acquire a lock", body: AcquireBody, ok: GrantReply, errors: lockErrors }),
      },
      "/v1/locks/{resource}/release": {
        parameters: [name("resource")],
        post: operation({
          summary: "Release a lock (an owner still waiting withdraws its wait: released false, withdrawn true)",
          body: ReleaseBody,
          ok: z.object({ released: z.boolean(), withdrawn: z.boolean().optional() }),
          errors: lockErrors,
        }),
      },
      "/v1/locks/{resource}/renew": {
        parameters: [name("resource")],
        post: operation({
          summary: "Renew a lease",
          body: RenewBody,
          ok: z.object({ expiresAt: z.number() }),
          errors: lockErrors,
        }),
      },
      "/v1/locks": {
        get: {
          ...operation({
            summary: "Locks held or waited for on every group, sorted by resource (at most 1000, then truncated)",
            ok: LockListReply,
            errors: ["400", "401", "503"],
          }),
          parameters: [
            {
              name: "prefix",
              in: "query",
              required: false,
              description: "Only resources whose name starts with this (a name: 1–200 of [A-Za-z0-9._:@/-]).",
              schema: { type: "string", pattern: "^[A-Za-z0-9._:@/-]{1,200}$" },
            },
          ],
        },
      },
      "/v1/locks/{resource}": {
        parameters: [name("resource")],
        get: operation({ summary: "Lock state (linearizable read)", ok: LockViewReply, errors: ["400", "401", "503"] }),
      },
      "/v1/queues/{queue}/messages": {
        parameters: [name("queue")],
        post: operation({
          summary: "Send 1..100 messages (all or nothing; a repeated id within 5 minutes is not enqueued again)",
          body: EnqueueBody,
          ok: z.object({ messages: z.array(z.object({ id: z.string(), shard: z.number() })) }),
          errors: ["400", "401", "413", "503"],
        }),
      },
      "/v1/queues/{queue}/receive": {
        parameters: [name("queue")],
        post: operation({
          summary: "Receive up to max messages (long polling with waitMs)",
          body: ReceiveBody,
          ok: z.object({
            messages: z.array(
              z.object({
                id: z.string(),
                body: z.unknown(),
                key: z.string().optional(),
                receipt: z.string(),
                attempts: z.number(),
                enqueuedAt: z.number(),
              }),
            ),
          }),
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues/{queue}/ack": {
        parameters: [name("queue")],
        post: operation({
          summary: "Ack deliveries by receipt",
          body: AckBody,
          ok: z.object({ acked: z.number() }),
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues/{queue}/nack": {
        parameters: [name("queue")],
        post: operation({
          summary: "Release deliveries (visible again after delayMs)",
          body: NackBody,
          ok: z.object({ released: z.number() }),
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues/{queue}/extend": {
        parameters: [name("queue")],
        post: operation({
          summary: "Extend the visibility of deliveries",
          body: ExtendBody,
          ok: z.object({ extended: z.number() }),
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues/{queue}/redrive": {
        parameters: [name("queue")],
        post: operation({
          summary: "Move messages from {queue}.dlq back to {queue}",
          body: RedriveBody,
          ok: z.object({ moved: z.number() }),
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues": {
        get: operation({
          summary: "Every queue known on any group, with its counts summed over its shards (DLQs under their queue)",
          ok: QueueListReply,
          errors: ["401", "503"],
        }),
      },
      "/v1/queues/{queue}/peek": {
        parameters: [name("queue")],
        post: operation({
          summary: "Up to max visible messages, without delivering them (no receipt, no attempt counted; a read)",
          body: PeekBody,
          ok: PeekReply,
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues/{queue}/purge": {
        parameters: [name("queue")],
        post: operation({
          summary: "Remove every visible, in-flight and delayed message of the queue (not its DLQ)",
          body: PurgeBody,
          ok: PurgeReply,
          errors: ["400", "401", "503"],
        }),
      },
      "/v1/queues/{queue}": {
        parameters: [name("queue")],
        delete: operation({
          summary: "Delete the queue, its DLQ and its config (a later send re-creates it)",
          ok: DeleteQueueReply,
          errors: ["400", "401", "503"],
        }),
        put: operation({
          summary: "Configure maxAttempts and visibilityMs",
          body: QueueConfigBody,
          errors: ["400", "401", "503"],
        }),
        get: operation({ summary: "Message counts, per shard", errors: ["400", "401", "503"] }),
      },
      "/v1/cache/{key}": {
        parameters: [name("key"), ...cacheNode],
        get: operation({
          summary: "Read through the node's cache (a hit in M, E or S is served by the node alone)",
          ok: CacheGetReply,
          errors: ["400", "401", "404", "503"],
        }),
        put: {
          ...operation({
            summary: "Write through the node: silent in E/M; otherwise every other holder is invalidated (or updated)",
            body: CachePutBody,
            ok: CachePutReply,
            errors: ["400", "401", "404", "413", "503"],
          }),
          parameters: [
            {
              name: "propagation",
              in: "query",
              required: false,
              description: "`invalidate` (default) drops other holders' lines; `update` gives them the new value (S).",
              schema: { type: "string", enum: ["invalidate", "update"] },
            },
          ],
        },
        delete: operation({
          summary: "Delete the key everywhere",
          ok: z.object({ deleted: z.boolean() }),
          errors: ["400", "401", "404", "503"],
        }),
      },
      "/v1/cache/nodes/{node}": {
        parameters: [{ name: "node", in: "path", required: true, schema: { type: "string" } }],
        get: operation({
          summary: "A cache node's valid lines and counters",
          ok: CacheNodeReply,
          errors: ["401", "404", "503"],
        }),
      },
      "/v1/cluster": { get: operation({ summary: "Raft groups, leaders and peers", errors: ["401"] }) },
      "/v1/cluster/peers": {
        post: operation({
          summary: "Add a peer to every group (admin)",
          body: PeerBody,
          status: 202,
          errors: ["400", "401", "403", "503"],
        }),
      },
      "/v1/cluster/peers/{id}": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        delete: operation({
          summary: "Remove a peer from every group (admin)",
          status: 202,
          errors: ["401", "403", "503"],
        }),
      },
      "/v1/admin/partition": {
        post: operation({
          summary: "Partition peers (fault injection)",
          body: PartitionBody,
          errors: ["400", "401", "403", "404"],
        }),
      },
      "/v1/admin/heal": {
        post: operation({ summary: "Restore all links (fault injection)", errors: ["401", "403", "404"] }),
      },
      "/v1/admin/peers/{id}/crash": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        post: operation({ summary: "Crash a peer (fault injection)", errors: ["401", "403", "404"] }),
      },
      "/v1/admin/peers/{id}/clock": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        post: operation({
          summary: "Run a peer's clock ahead of (or behind) real time, in every group (fault injection)",
          body: ClockBody,
          errors: ["400", "401", "403", "404"],
        }),
      },
      "/v1/admin/peers/{id}/restart": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        post: operation({ summary: "Restart a peer from storage (fault injection)", errors: ["401", "403", "404"] }),
      },
      "/v1/admin/cache/{node}/crash": {
        parameters: [{ name: "node", in: "path", required: true, schema: { type: "string" } }],
        post: operation({
          summary: "Crash a cache node: its lines are lost, dirty values stay (fault injection)",
          errors: ["401", "403", "404"],
        }),
      },
      "/v1/admin/cache/{node}/restart": {
        parameters: [{ name: "node", in: "path", required: true, schema: { type: "string" } }],
        post: operation({ summary: "Restart a crashed cache node (fault injection)", errors: ["401", "403", "404"] }),
      },
      "/v1/admin/cache/{node}/partition": {
        parameters: [{ name: "node", in: "path", required: true, schema: { type: "string" } }],
        post: operation({
          summary: "Cut a cache node off from Raft peers (default all; [] heals) (fault injection)",
          body: CachePartitionBody,
          errors: ["400", "401", "403", "404"],
        }),
      },
      "/healthz": { get: { summary: "The process serves", security: [], responses: { "200": { description: "OK" } } } },
      "/readyz": {
        get: {
          summary: "Every group has a leader",
          security: [],
          responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
        },
      },
      "/metrics": {
        get: { summary: "Prometheus metrics", security: [], responses: { "200": { description: "text exposition" } } },
      },
      "/openapi.json": {
        get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1" } } },
      },
      "/": {
        get: {
          summary: "An index of the service: version and links (OpenAPI, dashboard, health, metrics)",
          security: [],
          responses: { "200": { description: "index" } },
        },
      },
      "/problems/{name}": {
        parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
        get: {
          summary: "The page a problem's type URI names: what the error means and what to do (JSON, or HTML)",
          security: [],
          responses: { "200": { description: "the explanation" }, "404": { description: "no such problem type" } },
        },
      },
      "/dashboard": {
        get: { summary: "A page of the cluster's groups", security: [], responses: { "200": { description: "HTML" } } },
      },
    },
  };
}
