// raft-locks/client: a typed client of the lock, queue and cache service (shared/API.md).
export { type BackoffOptions, backoffDelay, parseRetryAfter } from "./backoff.js";
export { type ConsumeOptions, type Handler, type HandlerContext, isPermanent } from "./consume.js";
export {
  DeadlockError,
  errorFromProblem,
  ForbiddenError,
  IdempotencyKeyReusedError,
  LeaseLostError,
  LockConflictError,
  MethodNotAllowedError,
  NetworkError,
  NoQuorumError,
  NotFoundError,
  NotHolderError,
  PayloadTooLargeError,
  type Problem,
  RequestTimeoutError,
  SyncError,
  UnauthorizedError,
  ValidationError,
} from "./errors.js";
export {
  Admin,
  Cache,
  type CacheOptions,
  type Cancellable,
  Cluster,
  Locks,
  Queues,
  SyncClient,
  type SyncClientOptions,
} from "./sync-client.js";
export { isRetryable, type RetryOptions } from "./transport.js";
export type * from "./types.js";
export type { Lease, WithLockOptions } from "./with-lock.js";
