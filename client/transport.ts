// One HTTP call of the client: URL, auth, JSON, Idempotency-Key, retries and typed errors.
// Uses only fetch, AbortSignal and setTimeout, so it runs in Node >= 20, Workers and browsers.
import { abortReason, type BackoffOptions, backoffDelay, parseRetryAfter, sleep } from "./backoff.js";
import { errorFromProblem, NetworkError, type SyncError } from "./errors.js";

export interface RetryOptions extends BackoffOptions {
  /** Attempts per call, the first included (default 5); 1 turns retries off. */
  attempts?: number;
}

export interface TransportOptions {
  /** The service's base URL, e.g. http://localhost:8787. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  fetch?: typeof fetch;
  retry?: RetryOptions;
  userAgent?: string;
  /**
   * Whether every POST, PUT and DELETE carries an Idempotency-Key (default true). With keys a
   * retried write is applied once and answered as first answered; each costs the service two more
   * Raft commits (the key's record), which made lock calls 2–4.5× slower in bench/. `false` sends
   * none: the service still applies each HTTP request at most once, and lock calls are idempotent
   * per owner anyway, but a retried write may apply twice (a send stores twice unless it has ids)
   * and a release retried after a lost answer may answer not-holder.
   */
  idempotencyKeys?: boolean;
  /**
   * How long one attempt may go without an answer (default 30000 ms), beyond the time the service
   * may hold the call (`holdMs`: an acquire's or a receive's waitMs). Past it the attempt is
   * abandoned as a network failure and retried under the same key: a connection that hangs must
   * not hang the call (or withLock's release) for good.
   */
  timeoutMs?: number;
  /** For tests: the jitter's random source. */
  random?: () => number;
}

export interface CallOptions {
  body?: unknown;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Overrides the client's attempts for this call (1: no retry). */
  attempts?: number;
  /** How long the service may hold this call before answering (waitMs), added to the attempt's timeout. */
  holdMs?: number;
}

const WRITES = new Set(["POST", "PUT", "DELETE"]);
export const DEFAULT_ATTEMPTS = 5;
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Whether a failed attempt may be sent again: no answer at all, 503 (no quorum; also 502 from a
 * proxy in front), 504 and 429. The Idempotency-Key makes a repeated write apply once.
 */
export function isRetryable(err: SyncError): boolean {
  return (
    err instanceof NetworkError || err.status === 429 || err.status === 502 || err.status === 503 || err.status === 504
  );
}

export class Transport {
  readonly #base: string;
  readonly #options: TransportOptions;
  readonly #fetch: typeof fetch;

  constructor(options: TransportOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#options = options;
    // Called unbound: a browser's window.fetch throws "Illegal invocation" when called as a method.
    const f = options.fetch ?? globalThis.fetch;
    this.#fetch = (input, init) => f(input, init);
  }

  /**
   * Sends `method path` with retries and answers the parsed JSON body of the first 2xx (undefined
   * when empty), or throws the SyncError of the first answer that is not retryable (or of the last attempt).
   */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const { signal } = options;
    const attempts = Math.max(1, options.attempts ?? this.#options.retry?.attempts ?? DEFAULT_ATTEMPTS);
    const init = this.#init(method, options);
    const url = this.#url(path, options.query);
    const limitMs = (options.holdMs ?? 0) + (this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortReason(signal);
      let failure: SyncError;
      let retryAfterMs: number | undefined;
      const bounded = boundedAttempt(signal, limitMs);
      try {
        const res = await this.#fetch(url, { ...init, signal: bounded.signal });
        // The body is read inside the attempt: a connection that breaks mid-body is retried too.
        const text = await res.text();
        if (res.ok) return (text === "" ? undefined : JSON.parse(text)) as T;
        retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
        failure = errorFromProblem(res.status, parseOrUndefined(text), retryAfterMs);
      } catch (err) {
        // The caller's abort is not a network failure: it ends the call at once.
        if (signal?.aborted) throw abortReason(signal);
        if (err instanceof SyntaxError) throw err; // a 2xx that is not JSON: not the service
        failure = new NetworkError(bounded.timedOut() ? new Error(`no answer within ${limitMs} ms`) : err);
      } finally {
        bounded.done();
      }
      if (attempt >= attempts || !isRetryable(failure)) throw failure;
      await sleep(backoffDelay(attempt - 1, this.#options.retry, retryAfterMs, this.#options.random), signal);
    }
  }

  #url(path: string, query: CallOptions["query"]): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, v);
    const qs = params.toString();
    return `${this.#base}${path}${qs === "" ? "" : `?${qs}`}`;
  }

  /** Headers and body shared by every attempt: one Idempotency-Key per call, for all its attempts. */
  #init(method: string, options: CallOptions): RequestInit {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
    if (this.#options.userAgent !== undefined) headers["user-agent"] = this.#options.userAgent;
    if (WRITES.has(method) && this.#options.idempotencyKeys !== false && headers["idempotency-key"] === undefined)
      headers["idempotency-key"] = crypto.randomUUID();
    const init: RequestInit = { method, headers };
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return init;
  }
}

/**
 * The signal of one attempt: aborted when the caller's is, or when `limitMs` pass without the
 * attempt ending (setTimeout, not AbortSignal.timeout, so tests' fake timers drive it too).
 */
function boundedAttempt(caller: AbortSignal | undefined, limitMs: number) {
  const attempt = new AbortController();
  let timedOut = false;
  const onAbort = () => attempt.abort(caller?.reason);
  caller?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    attempt.abort(new DOMException(`no answer within ${limitMs} ms`, "TimeoutError"));
  }, limitMs);
  return {
    signal: attempt.signal,
    timedOut: () => timedOut,
    done() {
      clearTimeout(timer);
      caller?.removeEventListener("abort", onAbort);
    },
  };
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Path segment of a name: names may hold `/` and `:`, which must not split the path. */
export const seg = (name: string) => encodeURIComponent(name);
