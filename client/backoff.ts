// Retry delays: exponential with jitter, never earlier than the server's Retry-After, and an
// abortable sleep. Pure apart from the random source, which tests pass in.

export interface BackoffOptions {
  /** The delay before the first retry, before jitter (default 100 ms). */
  baseMs?: number;
  /** The cap of the exponential part (default 5000 ms); a longer Retry-After still wins. */
  maxMs?: number;
}

export const DEFAULT_BASE_MS = 100;
export const DEFAULT_MAX_MS = 5000;

/**
 * The delay before retry number `retry` (0 for the first): base·2^retry capped at maxMs, of which
 * a random half is kept ("equal jitter": spread out, yet growing), added on top of `retryAfterMs`
 * so that clients told to come back in a second do not all come back at the same instant.
 */
export function backoffDelay(
  retry: number,
  options: BackoffOptions = {},
  retryAfterMs = 0,
  random: () => number = Math.random,
): number {
  const base = options.baseMs ?? DEFAULT_BASE_MS;
  const max = options.maxMs ?? DEFAULT_MAX_MS;
  const exp = Math.min(max, base * 2 ** Math.max(0, retry));
  return Math.max(0, retryAfterMs) + Math.round(exp / 2 + (random() * exp) / 2);
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The reason an aborted signal carries (an AbortError DOMException unless the caller gave one). */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
