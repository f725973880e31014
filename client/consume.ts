// consume: a receive loop with at most `concurrency` handlers at once, visibility kept alive
// while a message is held, ack on success, nack with growing backoff on failure, graceful stop.
//
// A message's visibility is tracked on the client's clock, conservatively: one received or
// extended by a request sent at time t stays invisible to others at least until t + visibilityMs.
import { type BackoffOptions, backoffDelay, sleep } from "./backoff.js";
import { SyncError } from "./errors.js";
import type { Queues } from "./sync-client.js";
import type { Message } from "./types.js";

export interface ConsumeOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /** Visibility of each received message, extended while it is held (default 30000, at least 1000). */
  visibilityMs?: number;
  /** Messages per receive (default: concurrency; at most 100). Extra ones wait for a free handler. */
  batch?: number;
  /** Long poll of each receive (default and maximum 20000). */
  waitMs?: number;
  /** Stops the loop: no more receives, unstarted messages nacked, running handlers finish. */
  signal?: AbortSignal;
  consumer?: string;
  /** Nack delay after a failed handler, growing with the message's attempts (default 1 s doubling up to 60 s). */
  nackBackoff?: BackoffOptions;
  /** Told about errors the loop survives: handler failures, failed acks/nacks/extends, retried receives. */
  onError?: (error: unknown, message?: Message) => void;
}

export interface HandlerContext {
  /** Fires when the message's visibility lapsed (extensions failed): it may be delivered to someone else. */
  signal: AbortSignal;
}

export type Handler = (message: Message, ctx: HandlerContext) => Promise<void>;

type QueueCalls = Pick<Queues, "receive" | "ack" | "nack" | "extend">;

export const MAX_WAIT_MS = 20_000;
const DEFAULT_VISIBILITY_MS = 30_000;
const MAX_NACK_DELAY_MS = 43_200_000;
const RECEIVE_BACKOFF: BackoffOptions = { baseMs: 200, maxMs: 10_000 };
/** Pause after empty answers, growing while the queue stays empty (a short waitMs would otherwise spin). */
const IDLE_BACKOFF: BackoffOptions = { baseMs: 50, maxMs: 1000 };
const NACK_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 60_000 };

/** A message received and not yet acked or nacked by this consumer. */
interface Held {
  message: Message;
  /** When the last request that confirmed its visibility (receive or extend) was sent. */
  confirmedAt: number;
  lapse: AbortController;
  timer?: ReturnType<typeof setTimeout>;
}

/** Errors that retrying cannot fix: any 4xx but 409 and 429. */
export function isPermanent(err: unknown): boolean {
  return err instanceof SyncError && err.status >= 400 && err.status < 500 && err.status !== 409 && err.status !== 429;
}

export async function consume(
  queues: QueueCalls,
  queue: string,
  handler: Handler,
  options: ConsumeOptions = {},
): Promise<void> {
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const batch = Math.min(100, Math.max(1, options.batch ?? concurrency));
  const visibilityMs = Math.max(1000, options.visibilityMs ?? DEFAULT_VISIBILITY_MS);
  const waitMs = Math.min(MAX_WAIT_MS, Math.max(0, options.waitMs ?? MAX_WAIT_MS));
  const report = (err: unknown, message?: Message) => options.onError?.(err, message);

  const stop = new AbortController();
  const onStop = () => stop.abort();
  options.signal?.addEventListener("abort", onStop, { once: true });
  if (options.signal?.aborted) stop.abort();

  const held = new Map<string, Held>();
  const waiting: Held[] = []; // received, not started
  const running = new Set<Promise<void>>();
  let changed: (() => void) | undefined;
  const nextChange = () => new Promise<void>((resolve) => (changed = resolve));
  const notify = () => changed?.();
  stop.signal.addEventListener("abort", notify, { once: true });

  /** The message's signal fires once its visibility may have run out. */
  const arm = (h: Held) => {
    clearTimeout(h.timer);
    h.timer = setTimeout(
      () => h.lapse.abort(new Error(`visibility of ${h.message.id} lapsed: it may be delivered again`)),
      h.confirmedAt + visibilityMs - Date.now(),
    );
  };
  const forget = (h: Held) => {
    clearTimeout(h.timer);
    held.delete(h.message.receipt);
  };

  /** Extends every held message confirmed a third of the visibility ago or more. */
  let extending: Promise<void> | undefined;
  const extendDue = () => {
    extending ??= (async () => {
      const due = [...held.values()].filter(
        (h) => Date.now() - h.confirmedAt >= visibilityMs / 3 && !h.lapse.signal.aborted,
      );
      if (due.length === 0) return;
      const sentAt = Date.now();
      const extendOne = async (list: Held[]) => {
        const r = await queues.extend(
          queue,
          list.map((h) => h.message.receipt),
          visibilityMs,
        );
        return r.extended;
      };
      try {
        const extended = await extendOne(due);
        if (extended === due.length) for (const h of due) confirm(h);
        else if (due.length === 1) lapse(due[0] as Held);
        // Some receipt went stale (redelivered elsewhere, or acked): ask one by one to learn which.
        else await Promise.all(due.map(async (h) => ((await extendOne([h])) === 1 ? confirm(h) : lapse(h))));
      } catch (err) {
        report(err); // the timers stand: a message whose visibility runs out is told so
      }
      function confirm(h: Held) {
        h.confirmedAt = sentAt;
        if (held.has(h.message.receipt)) arm(h);
      }
      function lapse(h: Held) {
        clearTimeout(h.timer);
        h.lapse.abort(new Error(`${h.message.id} could not be extended: it may be delivered again`));
      }
    })().finally(() => (extending = undefined));
    return extending;
  };
  let ticker: ReturnType<typeof setTimeout> | undefined;
  const tick = () => {
    ticker = setTimeout(() => {
      void extendDue();
      tick();
    }, visibilityMs / 6);
  };
  tick();

  const start = (h: Held) => {
    const task = (async () => {
      try {
        await handler(h.message, { signal: h.lapse.signal });
      } catch (err) {
        report(err, h.message);
        forget(h);
        const delayMs = Math.min(
          MAX_NACK_DELAY_MS,
          backoffDelay(h.message.attempts - 1, options.nackBackoff ?? NACK_BACKOFF),
        );
        await queues.nack(queue, [h.message.receipt], { delayMs }).catch((e) => report(e, h.message));
        return;
      }
      forget(h);
      await queues.ack(queue, [h.message.receipt]).catch((e) => report(e, h.message));
    })().finally(() => {
      running.delete(task);
      pump();
      notify();
    });
    running.add(task);
  };
  const pump = () => {
    while (!stop.signal.aborted && running.size < concurrency && waiting.length > 0) start(waiting.shift() as Held);
  };

  let fatal: { error: unknown } | undefined;
  for (let failures = 0, empties = 0; !stop.signal.aborted; ) {
    if (waiting.length > 0 || running.size >= concurrency) {
      await nextChange();
      continue;
    }
    const sentAt = Date.now();
    let messages: Message[];
    try {
      messages = await queues.receive(queue, {
        max: batch,
        visibilityMs,
        waitMs,
        consumer: options.consumer,
        signal: stop.signal,
      });
      failures = 0;
      if (messages.length === 0) {
        // A long poll that waited is its own pause; an answer that came back at once is not.
        const left = backoffDelay(empties++, IDLE_BACKOFF) - (Date.now() - sentAt);
        if (left > 0) await sleep(left, stop.signal).catch(() => undefined);
        continue;
      }
      empties = 0;
    } catch (err) {
      if (stop.signal.aborted) break;
      if (isPermanent(err)) {
        fatal = { error: err };
        break;
      }
      report(err);
      await sleep(backoffDelay(failures++, RECEIVE_BACKOFF), stop.signal).catch(() => undefined);
      continue;
    }
    const fresh = messages.map((message): Held => ({ message, confirmedAt: sentAt, lapse: new AbortController() }));
    for (const h of fresh) {
      held.set(h.message.receipt, h);
      waiting.push(h);
    }
    // A long poll may have taken much of the visibility: confirm it before counting on it. The
    // timers are armed only after that confirmation: a poll that outlasted the visibility (the
    // message arrived late in it) would otherwise fire them before the extend's answer, lapsing
    // messages the service just handed out (their handlers told so, never extended again).
    // An extend already under way does not cover these messages: wait for it, then extend.
    await extending;
    await extendDue();
    for (const h of fresh) if (h.timer === undefined && held.has(h.message.receipt)) arm(h);
    pump();
  }

  // Stopping: what was received but not started goes back at once; running handlers finish
  // (their messages still extended meanwhile).
  options.signal?.removeEventListener("abort", onStop);
  const unstarted = waiting.splice(0);
  for (const h of unstarted) forget(h);
  if (unstarted.length > 0) {
    await queues
      .nack(
        queue,
        unstarted.map((h) => h.message.receipt),
        { delayMs: 0 },
      )
      .catch((e) => report(e));
  }
  await Promise.all(running);
  clearTimeout(ticker);
  await extending;
  for (const h of held.values()) forget(h);
  if (fatal !== undefined) throw fatal.error;
}
