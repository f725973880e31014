// withLock: acquire, keep the lease alive while `fn` runs, always release.
//
// The lease's expiry is tracked on the client's own clock, conservatively: a grant or renewal
// confirmed by a request sent at time t lasts at least until t + ttlMs in real time (the service
// promises leases never end earlier than that, whatever its clocks). The lease's signal fires
// before that point unless a renewal confirmed it again, so `fn` is never left believing it holds
// a lease that may have run out.
import { abortReason, backoffDelay, sleep } from "./backoff.js";
import { LeaseLostError, NotHolderError, SyncError } from "./errors.js";
import type { Locks } from "./sync-client.js";
import { isRetryable } from "./transport.js";
import type { Grant, LockMode } from "./types.js";

export interface WithLockOptions {
  /** Who holds the lock (default: a random owner for this call). */
  owner?: string;
  mode?: LockMode;
  /** The lease's length, renewed every third of it (default 30000). */
  ttlMs?: number;
  /** How long the service may queue the acquire (default 0: try once). */
  waitMs?: number;
  /** Cancels the wait for the lock (withdrawn on the service), or, once held, aborts the lease's signal. */
  signal?: AbortSignal;
}

export interface Lease {
  resource: string;
  owner: string;
  mode: LockMode;
  fencingToken: number;
  /** The service's expiry of the lease (its clock), updated by each renewal. */
  expiresAt: number;
  /** Fires when the lease is lost (reason: LeaseLostError) or the caller's signal fires (its reason). */
  signal: AbortSignal;
}

export const DEFAULT_TTL_MS = 30_000;

type LockCalls = Pick<Locks, "acquire" | "renew" | "release">;

export async function withLock<T>(
  locks: LockCalls,
  resource: string,
  fn: (lease: Lease) => Promise<T>,
  options: WithLockOptions = {},
): Promise<T> {
  const owner = options.owner ?? `withlock-${crypto.randomUUID()}`;
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const release = () => locks.release(resource, { owner });
  const acquired = await acquireOrWithdraw(locks, resource, owner, ttlMs, options);
  const keeper = keepAlive(locks, acquired.grant, ttlMs, acquired.sentAt, options.signal);
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await fn(keeper.lease) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  await keeper.stop();
  try {
    await release();
  } catch (err) {
    // A lost lease has nothing left to release; fn's own error matters more than the release's.
    const lost = keeper.lost() || err instanceof NotHolderError;
    if (!lost && outcome.ok) throw err;
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * Acquires; when the caller gives up (its signal) or the outcome is unknown (no answer, 5xx),
 * sends `release` for the owner: it withdraws a wait still queued on the service, or releases a
 * grant that raced in, so nothing is left held or queued for an owner nobody speaks for.
 */
async function acquireOrWithdraw(
  locks: LockCalls,
  resource: string,
  owner: string,
  ttlMs: number,
  options: WithLockOptions,
): Promise<{ grant: Grant; sentAt: number }> {
  const { mode, waitMs, signal } = options;
  const sentAt = Date.now();
  try {
    const grant = await locks.acquire(resource, { owner, ttlMs, mode, waitMs, signal });
    if (Date.now() - sentAt <= ttlMs / 3) return { grant, sentAt };
    // A long wait: the grant may be anywhere in it, so confirm the lease before counting on it.
    const renewedAt = Date.now();
    const renewed = await locks.renew(resource, { owner, ttlMs, signal });
    // A confirmation whose answer itself took 5/6 of the TTL (a slow or delayed answer) may describe a
    // lease already gone, perhaps granted to another: fn must not start on it (the watch would only
    // fire after fn began). Released below like any unknown outcome.
    if (Date.now() - renewedAt >= (ttlMs * 5) / 6)
      throw new LeaseLostError(resource, owner, "its confirmation after the wait came too late");
    return { grant: { ...grant, expiresAt: renewed.expiresAt }, sentAt: renewedAt };
  } catch (err) {
    // Only a definite refusal (lock-conflict, deadlock, validation, ...) leaves nothing to clean up.
    // A retryable 4xx (429) ends the call only because the attempts ran out: an earlier attempt may
    // have been granted with its answer lost, so it is an unknown outcome like a network error.
    const refused =
      err instanceof SyncError &&
      err.status >= 400 &&
      err.status < 500 &&
      !isRetryable(err) &&
      !(err instanceof NotHolderError);
    if (signal?.aborted || !refused) await locks.release(resource, { owner }).catch(() => undefined);
    // Only the renewal after a long wait answers not-holder: the grant expired before it was confirmed.
    if (err instanceof NotHolderError) throw new LeaseLostError(resource, owner, "it expired during the wait");
    throw err;
  }
}

interface Keeper {
  lease: Lease;
  /** Whether the lease was lost (not-holder, or not renewed in time). */
  lost(): boolean;
  /** Stops renewing and waits for a renewal in flight to end. */
  stop(): Promise<void>;
}

/**
 * Renews every ttlMs/3 after the last confirmation (retrying failures with backoff) and declares
 * the lease lost on not-holder, or when ttlMs·5/6 has passed since the last confirmed request was
 * sent: the last sixth is left for `fn` to notice and stop.
 */
function keepAlive(
  locks: LockCalls,
  grant: Grant,
  ttlMs: number,
  confirmedAt: number,
  callerSignal: AbortSignal | undefined,
): Keeper {
  const { resource, owner } = grant;
  const leaseSignal = new AbortController();
  const halt = new AbortController(); // ends the renewals: stopped, or lost
  const lease: Lease = { ...grant, signal: leaseSignal.signal };
  let lost = false;
  let watch: ReturnType<typeof setTimeout> | undefined;

  const lose = (why: string) => {
    if (lost || halt.signal.aborted) return;
    lost = true;
    clearTimeout(watch);
    halt.abort();
    leaseSignal.abort(new LeaseLostError(resource, owner, why));
  };
  const arm = () => {
    clearTimeout(watch);
    const at = confirmedAt + (ttlMs * 5) / 6;
    watch = setTimeout(() => lose(`not renewed within ${Math.round((ttlMs * 5) / 6)} ms`), at - Date.now());
  };
  const onCallerAbort = () => leaseSignal.abort(abortReason(callerSignal as AbortSignal));
  callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  if (callerSignal?.aborted) onCallerAbort();
  arm();

  const renewals = (async () => {
    for (let failures = 0; ; ) {
      const wait =
        failures === 0
          ? confirmedAt + ttlMs / 3 - Date.now()
          : backoffDelay(failures - 1, { baseMs: ttlMs / 30, maxMs: ttlMs / 10 });
      try {
        await sleep(Math.max(0, wait), halt.signal);
        const sentAt = Date.now();
        const renewed = await locks.renew(resource, { owner, ttlMs, signal: halt.signal });
        // An answer that arrives after stop() or lose() (a fetch that does not honour the abort) must
        // not re-arm the watch: that timer would outlive withLock (ttl·5/6, keeping a process alive).
        if (halt.signal.aborted) return;
        confirmedAt = sentAt;
        lease.expiresAt = renewed.expiresAt;
        failures = 0;
        arm();
      } catch (err) {
        if (halt.signal.aborted) return;
        if (err instanceof NotHolderError) return lose("the service says the owner no longer holds it");
        failures++;
      }
    }
  })();

  return {
    lease,
    lost: () => lost,
    async stop() {
      clearTimeout(watch);
      callerSignal?.removeEventListener("abort", onCallerAbort);
      halt.abort();
      await renewals;
    },
  };
}
