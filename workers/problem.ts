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
  | "timeout";

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
};

export interface ProblemOptions {
  /** Extra members, e.g. `holders` for lock-conflict or `cycle` for deadlock. */
  extra?: Record<string, unknown>;
  headers?: HeadersInit;
}

export function problem(type: ProblemType, detail: string, options: ProblemOptions = {}): Response {
  const status = STATUSES[type];
  const body = { type, title: TITLES[type], status, detail, ...options.extra };
  const headers = new Headers(options.headers);
  headers.set("content-type", "application/problem+json");
  return new Response(JSON.stringify(body), { status, headers });
}
