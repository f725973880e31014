// A small in-memory model of the service's lock and queue routes (shared/API.md) for the client's
// property tests, plus a faulty network in front of it. Time is Date.now() (vitest's fake clock in
// the tests); nothing here sets timers except a delayed answer, which an abort cancels. Waits
// (an acquire's waitMs, a receive's long poll) are served by `tick()`, which the test's driver
// calls as it advances the clock, so the model leaves no timer behind.
import type { Rand } from "../../shared/raft/rand.js";
import { json, problem, type Recorded, type Route } from "./fake-fetch.js";

/** Seeded stand-in for Math.random (the client's jitter), so a seed replays the whole run. */
export const randomFrom = (rand: Rand) => () => rand.uint32() / 2 ** 32;

const op = (req: Recorded) => req.path.split("/").pop();

/** A wait that the request's abort cancels (like a connection the client closed): it rejects with the reason. */
function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The service's Idempotency-Key table: a repeated key is not applied again and gets the first answer. */
export function idempotent(route: Route): Route {
  const answers = new Map<string, { status: number; text: string; headers: [string, string][] }>();
  return async (req) => {
    const key = req.headers.get("idempotency-key");
    const seen = key === null ? undefined : answers.get(key);
    if (seen !== undefined) return new Response(seen.text, { status: seen.status, headers: seen.headers });
    const res = await route(req);
    const text = await res.text();
    if (key !== null) answers.set(key, { status: res.status, text, headers: [...res.headers] });
    return new Response(text, { status: res.status, headers: res.headers });
  };
}

export type Fault = "lost-request" | "lost-answer" | "no-quorum" | "too-many" | "delay";

export interface FaultPlan {
  /** Percent of attempts that meet a fault. */
  percent: number;
  kinds: readonly Fault[];
  /** Most faults (delays aside) that one call (one Idempotency-Key) meets: below the client's attempts, so each call can succeed. */
  maxPerCall: number;
  /** Longest delay of a delayed answer, and of every answer (latency), in ms. */
  maxDelayMs: number;
  latencyMs?: number;
  /** Which calls may meet faults (default: all). */
  only?: (req: Recorded) => boolean;
}

/**
 * A network in front of the service: a request lost before the service saw it, an answer lost after
 * the service applied it (the client retries; `idempotent` replays), 503 no-quorum or 429 with
 * Retry-After from a front end, answers delayed. An aborted request's pending answer rejects.
 */
export function faulty(route: Route, rand: Rand, plan: FaultPlan) {
  const perCall = new Map<string, number>();
  const log: { fault: Fault; op: string | undefined; at: number }[] = [];
  const fetchRoute: Route = async (req) => {
    const key = req.headers.get("idempotency-key") ?? `${req.method} ${req.path}`;
    const count = perCall.get(key) ?? 0;
    let fault: Fault | undefined;
    if ((plan.only?.(req) ?? true) && rand.chance(plan.percent, 100)) fault = rand.pick(plan.kinds);
    if (fault !== undefined && fault !== "delay" && count >= plan.maxPerCall) fault = undefined;
    if (fault !== undefined) {
      log.push({ fault, op: op(req), at: Date.now() });
      if (fault !== "delay") perCall.set(key, count + 1);
    }
    const retryAfter = { "retry-after": String(rand.int(2)) };
    if (fault === "lost-request") throw new TypeError("fetch failed (request lost)");
    if (fault === "no-quorum") return problem("no-quorum", 503, {}, retryAfter);
    if (fault === "too-many") return problem("too-many-requests", 429, {}, retryAfter);
    const res = await route(req);
    if (fault === "lost-answer") throw new TypeError("fetch failed (answer lost)");
    const latency = rand.int((plan.latencyMs ?? 0) + 1) + (fault === "delay" ? rand.range(1, plan.maxDelayMs) : 0);
    if (latency > 0) await abortableDelay(latency, req.signal);
    return res;
  };
  return { route: fetchRoute, log };
}

// ---- locks: one resource, exclusive mode (what withLock takes by default) ----

export interface Hold {
  owner: string;
  fencingToken: number;
  grantedAt: number;
  expiresAt: number;
  /** When the hold ended: released, or its expiry once it ran out unrenewed. */
  end?: number;
}

interface LockWaiter {
  owner: string;
  ttlMs: number;
  deadline: number;
  since: number;
  answer: (res: Response) => void;
}

export class LockModel {
  holder: Hold | undefined;
  readonly waiters: LockWaiter[] = [];
  readonly holds: Hold[] = [];
  #token = 0;

  readonly route: Route = (req) => {
    const body = req.body as { owner: string; ttlMs?: number; waitMs?: number };
    const now = Date.now();
    this.tick(now);
    switch (op(req)) {
      case "acquire":
        return this.#acquire(body.owner, body.ttlMs ?? 30_000, body.waitMs ?? 0, now);
      case "renew": {
        const h = this.holder;
        if (h?.owner !== body.owner) return problem("not-holder", 409);
        h.expiresAt = now + (body.ttlMs ?? 30_000);
        return json({ expiresAt: h.expiresAt });
      }
      case "release": {
        if (this.holder?.owner === body.owner) {
          this.holder.end = now;
          this.holder = undefined;
          this.tick(now);
          return json({ released: true });
        }
        const i = this.waiters.findIndex((w) => w.owner === body.owner);
        if (i < 0) return problem("not-holder", 409);
        const [w] = this.waiters.splice(i, 1);
        w?.answer(problem("lock-conflict", 409, { holders: this.#holders(), waitedMs: now - (w?.since ?? now) }));
        return json({ released: false, withdrawn: true });
      }
      default:
        throw new Error(`lock model: unexpected ${req.method} ${req.path}`);
    }
  };

  /** Expires a lease that ran out, times out overdue waits and grants the next waiter (FIFO). */
  tick(now = Date.now()): void {
    if (this.holder !== undefined && this.holder.expiresAt <= now) {
      this.holder.end = this.holder.expiresAt;
      this.holder = undefined;
    }
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i] as LockWaiter;
      if (w.deadline > now) i++;
      else {
        this.waiters.splice(i, 1);
        w.answer(problem("lock-conflict", 409, { holders: this.#holders(), waitedMs: now - w.since }));
      }
    }
    const next = this.waiters[0];
    if (this.holder === undefined && next !== undefined) {
      this.waiters.shift();
      next.answer(json(this.#grant(next.owner, next.ttlMs, now)));
    }
  }

  /** A rival taking the lock straight on the model (no network) when it is free. */
  tryAcquire(owner: string, ttlMs: number, now = Date.now()): boolean {
    this.tick(now);
    if (this.holder !== undefined || this.waiters.length > 0) return false;
    this.#grant(owner, ttlMs, now);
    return true;
  }

  /** Whether `owner` holds or waits for the lock now. */
  has(owner: string, now = Date.now()): boolean {
    this.tick(now);
    return this.holder?.owner === owner || this.waiters.some((w) => w.owner === owner);
  }

  #acquire(owner: string, ttlMs: number, waitMs: number, now: number): Response | Promise<Response> {
    if (this.holder?.owner === owner) {
      this.holder.expiresAt = now + ttlMs; // re-acquire: same token, TTL extended
      return json(this.#reply(this.holder));
    }
    if (this.holder === undefined && this.waiters.length === 0) return json(this.#grant(owner, ttlMs, now));
    if (waitMs === 0) return problem("lock-conflict", 409, { holders: this.#holders(), waitedMs: 0 });
    return new Promise((answer) => this.waiters.push({ owner, ttlMs, deadline: now + waitMs, since: now, answer }));
  }

  #grant(owner: string, ttlMs: number, now: number) {
    const hold: Hold = { owner, fencingToken: ++this.#token, grantedAt: now, expiresAt: now + ttlMs };
    this.holder = hold;
    this.holds.push(hold);
    return this.#reply(hold);
  }

  #reply(h: Hold) {
    return { resource: "r", owner: h.owner, mode: "exclusive", fencingToken: h.fencingToken, expiresAt: h.expiresAt };
  }

  #holders() {
    return this.holder === undefined
      ? []
      : [{ owner: this.holder.owner, mode: "exclusive", expiresAt: this.holder.expiresAt }];
  }
}

// ---- queues: one queue, one shard; a receipt is stale once its visibility ran out ----

export interface Stored {
  id: string;
  body: unknown;
  attempts: number;
  visibleAt: number;
  receipt?: string;
}

interface Poller {
  max: number;
  visibilityMs: number;
  deadline: number;
  answer: (res: Response) => void;
}

export class QueueModel {
  readonly messages = new Map<string, Stored>();
  readonly acked = new Set<string>();
  /** Every delivery: the message, its receipt and when the service handed it out. */
  readonly deliveries = new Map<string, { id: string; at: number }>();
  /** Nacks that delayed a message: its attempts then, and the delay. */
  readonly nackDelays: { id: string; attempts: number; delayMs: number }[] = [];
  readonly #pollers: Poller[] = [];

  enqueue(id: string, body: unknown = id, now = Date.now()): void {
    this.messages.set(id, { id, body, attempts: 0, visibleAt: now });
    this.tick(now);
  }

  readonly route: Route = (req) => {
    const body = req.body as {
      max?: number;
      visibilityMs?: number;
      waitMs?: number;
      receipts: string[];
      delayMs?: number;
    };
    const now = Date.now();
    this.tick(now);
    switch (op(req)) {
      case "receive": {
        const p = { max: body.max ?? 1, visibilityMs: body.visibilityMs ?? 30_000, deadline: now + (body.waitMs ?? 0) };
        const taken = this.#take(p.max, p.visibilityMs, now);
        if (taken.length > 0 || (body.waitMs ?? 0) === 0) return json({ messages: taken });
        // A long poll the client gives up on takes nothing (the service notices the disconnect).
        return new Promise((resolve, reject) => {
          const poller: Poller = {
            ...p,
            answer: (res) => {
              req.signal?.removeEventListener("abort", onAbort);
              resolve(res);
            },
          };
          const onAbort = () => {
            this.#pollers.splice(this.#pollers.indexOf(poller), 1);
            reject(req.signal?.reason);
          };
          req.signal?.addEventListener("abort", onAbort, { once: true });
          this.#pollers.push(poller);
        });
      }
      case "ack":
        return json({ acked: this.#each(body.receipts, now, (m) => this.#ack(m)) });
      case "nack":
        return json({
          released: this.#each(body.receipts, now, (m) => {
            m.receipt = undefined;
            m.visibleAt = now + (body.delayMs ?? 0);
            if ((body.delayMs ?? 0) > 0)
              this.nackDelays.push({ id: m.id, attempts: m.attempts, delayMs: body.delayMs ?? 0 });
          }),
        });
      case "extend":
        return json({
          extended: this.#each(body.receipts, now, (m) => {
            m.visibleAt = now + (body.visibilityMs ?? 30_000);
          }),
        });
      default:
        throw new Error(`queue model: unexpected ${req.method} ${req.path}`);
    }
  };

  /** Answers long polls that now have a message, or whose wait ran out. */
  tick(now = Date.now()): void {
    for (const p of [...this.#pollers]) {
      const taken = this.#take(p.max, p.visibilityMs, now);
      if (taken.length === 0 && p.deadline > now) continue;
      this.#pollers.splice(this.#pollers.indexOf(p), 1);
      p.answer(json({ messages: taken }));
    }
  }

  #take(max: number, visibilityMs: number, now: number) {
    const free = [...this.messages.values()].filter((m) => m.visibleAt <= now).slice(0, max);
    return free.map((m) => {
      m.attempts++;
      m.receipt = `${m.id}.${m.attempts}`;
      m.visibleAt = now + visibilityMs;
      this.deliveries.set(m.receipt, { id: m.id, at: now });
      return { id: m.id, body: m.body, receipt: m.receipt, attempts: m.attempts, enqueuedAt: 0 };
    });
  }

  #ack(m: Stored) {
    this.messages.delete(m.id);
    this.acked.add(m.id);
  }

  /** Applies `f` to each message whose receipt is current and still invisible; answers how many. */
  #each(receipts: string[], now: number, f: (m: Stored) => void): number {
    let n = 0;
    for (const r of receipts) {
      const m = this.messages.get(this.deliveries.get(r)?.id ?? "");
      if (m === undefined || m.receipt !== r || m.visibleAt <= now) continue;
      f(m);
      n++;
    }
    return n;
  }
}
