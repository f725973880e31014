// Typed errors: one class per problem type of the service (shared/API.md), built from the
// RFC 9457 body by errorFromProblem, plus NetworkError when no HTTP answer came back.
import type { LockHolder } from "./types.js";

/** The problem body as the service sends it; extra members (holders, cycle, ...) vary by type. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  [member: string]: unknown;
}

/** Any error answer of the service: `type` is the problem's name (the last segment of its URI). */
export class SyncError extends Error {
  override name = "SyncError";
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly problem: Problem;

  constructor(status: number, problem: Problem, type = problemName(problem, status)) {
    const title = typeof problem.title === "string" ? problem.title : `HTTP ${status}`;
    const detail = typeof problem.detail === "string" ? problem.detail : "";
    super(detail === "" ? `${title} (${status})` : `${title}: ${detail}`);
    this.status = status;
    this.type = type;
    this.title = title;
    this.detail = detail;
    this.problem = problem;
  }
}

export class ValidationError extends SyncError {
  override name = "ValidationError";
}
export class UnauthorizedError extends SyncError {
  override name = "UnauthorizedError";
}
export class ForbiddenError extends SyncError {
  override name = "ForbiddenError";
}
export class NotFoundError extends SyncError {
  override name = "NotFoundError";
}
export class MethodNotAllowedError extends SyncError {
  override name = "MethodNotAllowedError";
}
export class IdempotencyKeyReusedError extends SyncError {
  override name = "IdempotencyKeyReusedError";
}
export class NotHolderError extends SyncError {
  override name = "NotHolderError";
}
export class PayloadTooLargeError extends SyncError {
  override name = "PayloadTooLargeError";
}
/** 504 `timeout`: the outcome is unknown; the client retries it under the same Idempotency-Key. */
export class RequestTimeoutError extends SyncError {
  override name = "RequestTimeoutError";
}

/** 409 `lock-conflict`: not granted within waitMs (0 for a try-lock). */
export class LockConflictError extends SyncError {
  override name = "LockConflictError";
  readonly holders: LockHolder[];
  readonly waitedMs: number;

  constructor(status: number, problem: Problem) {
    super(status, problem);
    this.holders = Array.isArray(problem.holders) ? (problem.holders as LockHolder[]) : [];
    this.waitedMs = typeof problem.waitedMs === "number" ? problem.waitedMs : 0;
  }
}

/** 409 `deadlock`: waiting would close `cycle` (owners) in the wait-for graph; this request is the victim. */
export class DeadlockError extends SyncError {
  override name = "DeadlockError";
  readonly cycle: string[];

  constructor(status: number, problem: Problem) {
    super(status, problem);
    this.cycle = Array.isArray(problem.cycle) ? (problem.cycle as string[]) : [];
  }
}

/** 503 `no-quorum`: the owning group cannot commit now; `retryAfterMs` from the Retry-After header. */
export class NoQuorumError extends SyncError {
  override name = "NoQuorumError";
  readonly retryAfterMs: number | undefined;

  constructor(status: number, problem: Problem, retryAfterMs?: number) {
    super(status, problem);
    this.retryAfterMs = retryAfterMs;
  }
}

/** No HTTP answer: the connection failed or broke. The request may or may not have been applied. */
export class NetworkError extends SyncError {
  override name = "NetworkError";

  constructor(cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(0, { type: "network", title: "Network error", detail }, "network");
    this.cause = cause;
  }
}

/** What withLock's AbortSignal carries when the lease is lost (not-holder, or renewals failing until expiry). */
export class LeaseLostError extends Error {
  override name = "LeaseLostError";
  constructor(
    readonly resource: string,
    readonly owner: string,
    reason: string,
  ) {
    super(`lease on ${resource} for ${owner} lost: ${reason}`);
  }
}

type Plain = new (status: number, problem: Problem) => SyncError;

const BY_TYPE: Record<string, Plain> = {
  validation: ValidationError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  "not-found": NotFoundError,
  "method-not-allowed": MethodNotAllowedError,
  "idempotency-key-reused": IdempotencyKeyReusedError,
  "lock-conflict": LockConflictError,
  deadlock: DeadlockError,
  "not-holder": NotHolderError,
  "payload-too-large": PayloadTooLargeError,
  timeout: RequestTimeoutError,
};

/** The name a bare status stands for, when the body is not a problem (a proxy's page, an empty body). */
const BY_STATUS: Record<number, string> = {
  400: "validation",
  401: "unauthorized",
  403: "forbidden",
  404: "not-found",
  405: "method-not-allowed",
  413: "payload-too-large",
  422: "idempotency-key-reused",
  503: "no-quorum",
  504: "timeout",
};

/** The problem's name: the last path segment of its `type` URI, else what its status stands for. */
function problemName(problem: Problem, status: number): string {
  if (typeof problem.type === "string" && problem.type !== "") {
    const segment = problem.type
      .split(/[/#]/)
      .filter((s) => s !== "")
      .pop();
    if (segment !== undefined) return segment;
  }
  return BY_STATUS[status] ?? `http-${status}`;
}

/** The typed error for an error answer: `body` is the parsed problem (anything else counts as none). */
export function errorFromProblem(status: number, body: unknown, retryAfterMs?: number): SyncError {
  const problem: Problem = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Problem) : {};
  const name = problemName(problem, status);
  if (name === "no-quorum") return new NoQuorumError(status, problem, retryAfterMs);
  const Class = BY_TYPE[name];
  return Class === undefined ? new SyncError(status, problem, name) : new Class(status, problem);
}
