// RFC 9457 problem details, the error shape of every route (see shared/API.md).

export type ProblemType =
  | "validation"
  | "unauthorized"
  | "forbidden"
  | "not-found"
  | "idempotency-key-reused"
  | "lock-conflict"
  | "deadlock"
  | "not-holder"
  | "payload-too-large"
  | "no-quorum"
  | "timeout"
  | "method-not-allowed"
  | "internal";

const TITLES: Record<ProblemType, string> = {
  validation: "Invalid request",
  unauthorized: "Unauthorized",
  forbidden: "Forbidden",
  "not-found": "Not found",
  "idempotency-key-reused": "Idempotency key reused",
  "lock-conflict": "Lock conflict",
  deadlock: "Deadlock",
  "not-holder": "Not the holder",
  "payload-too-large": "Payload too large",
  "no-quorum": "No quorum",
  timeout: "Timeout",
  "method-not-allowed": "Method not allowed",
  internal: "Internal error",
};

const STATUSES: Record<ProblemType, number> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  "not-found": 404,
  "idempotency-key-reused": 422,
  "lock-conflict": 409,
  deadlock: 409,
  "not-holder": 409,
  "payload-too-large": 413,
  "no-quorum": 503,
  timeout: 504,
  "method-not-allowed": 405,
  internal: 500,
};

/** What each problem means and what to do about it: the page GET /problems/{name} answers. */
const EXPLANATIONS: Record<ProblemType, string> = {
  validation:
    "The request is malformed: bad JSON, an unknown field (the detail names it, with a guess at the one meant), a value of the wrong type or out of range, or a name outside 1-200 chars of [A-Za-z0-9._:@/-]. Nothing was changed. Fix the request; retrying it as is fails the same way.",
  unauthorized:
    "API_TOKEN is set and the request has no `Authorization: Bearer <token>` header, or a wrong token. Nothing was changed.",
  forbidden:
    "The route needs the admin token (ADMIN_TOKEN): fault injection under /v1/admin and changes to /v1/cluster/peers. Nothing was changed.",
  "not-found": "No such route, or no such object (an unknown cache node, a cache key with no value).",
  "idempotency-key-reused":
    "This Idempotency-Key was used in the last 10 minutes for a different method, path or body. Use a new key for a new request; resend the same request to get its first answer.",
  "lock-conflict":
    "The lock is held in a conflicting mode and was not granted within waitMs (`holders` says by whom; `waitedMs` how long this request waited). Nothing was granted; try again later or wait longer.",
  deadlock:
    "Waiting would close a cycle in the wait-for graph (`cycle` lists the owners); this request is the victim and holds nothing new. Release what the owner holds, then retry.",
  "not-holder": "The owner does not hold the lock (it was never granted, was released, or its lease expired).",
  "payload-too-large":
    "The body is over the route's limit (1 MiB per request; 128 KiB per message body or cached value).",
  "no-quorum":
    "The Raft group that owns the key has no leader that can commit right now (an election, a partition, too many peers down). Nothing was applied unless the detail says the outcome is unknown. Retry after Retry-After, with the same Idempotency-Key.",
  timeout: "The operation did not finish in time; its outcome is unknown. Retry with the same Idempotency-Key.",
  "method-not-allowed": "The path exists, but not with this method: the Allow header lists the methods it takes.",
  internal: "A bug in the service. The detail says what failed; please report it.",
};

/** The `type` URI of a problem: a page of this service that explains it. */
export function problemUri(type: ProblemType): string {
  return `/problems/${type}`;
}

/** The page for `name` (GET /problems/{name}), or undefined when there is no such problem. */
export function problemPage(
  name: string,
): { type: string; title: string; status: number; description: string } | undefined {
  if (!Object.hasOwn(TITLES, name)) return undefined;
  const type = name as ProblemType;
  return { type: problemUri(type), title: TITLES[type], status: STATUSES[type], description: EXPLANATIONS[type] };
}

/** Every problem page (GET /problems): the index of the errors this service answers. */
export function problemPages(): NonNullable<ReturnType<typeof problemPage>>[] {
  return Object.keys(TITLES).flatMap((name) => problemPage(name) ?? []);
}

export interface ProblemOptions {
  /** Extra members, e.g. `holders` for lock-conflict or `cycle` for deadlock. */
  extra?: Record<string, unknown>;
  headers?: HeadersInit;
}

export function problem(type: ProblemType, detail: string, options: ProblemOptions = {}): Response {
  const status = STATUSES[type];
  const body = { type: problemUri(type), title: TITLES[type], status, detail, ...options.extra };
  const headers = new Headers(options.headers);
  headers.set("content-type", "application/problem+json");
  return new Response(JSON.stringify(body), { status, headers });
}
