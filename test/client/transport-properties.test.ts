// The transport's retries, seeded: each run scripts the answers of a call's attempts (network
// errors, 5xx, 429 and other 4xx with or without Retry-After, successes, each maybe delayed) and
// maybe aborts the call at a random moment. Replay a seed with TRANSPORT_SEED=<n>.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SyncClient, SyncError } from "../../client/index.js";
import { Rand } from "../../shared/raft/rand.js";
import { fakeFetch, json, problem } from "./fake-fetch.js";
import { randomFrom } from "./fake-service.js";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});

interface Answer {
  kind: "network" | "ok" | number;
  retryAfterS?: number;
  delayMs: number;
}

const RETRYABLE = new Set<Answer["kind"]>(["network", 429, 502, 503, 504]);
const KINDS: Answer["kind"][] = ["network", "ok", 400, 401, 404, 409, 422, 429, 500, 502, 503, 504];
const NAMES: Record<number, string> = {
  400: "validation",
  401: "unauthorized",
  404: "not-found",
  409: "not-holder",
  422: "idempotency-key-reused",
  429: "too-many-requests",
  500: "internal",
  502: "bad-gateway",
  503: "no-quorum",
  504: "timeout",
};

function abortable(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

async function runSeed(seed: number) {
  const rand = new Rand(seed);
  const attempts = rand.range(1, 6);
  const answers: Answer[] = Array.from({ length: attempts }, () => ({
    kind: rand.pick(KINDS),
    retryAfterS: rand.chance(1, 2) ? rand.range(0, 3) : undefined,
    delayMs: rand.pick([0, rand.range(1, 500)]),
  }));
  const abortAt = rand.chance(1, 3) ? rand.range(0, 8000) : undefined;
  const f = fakeFetch(async (req) => {
    const a = answers[f.calls.length - 1] as Answer;
    await abortable(a.delayMs, req.signal);
    if (a.kind === "network") throw new TypeError("fetch failed");
    if (a.kind === "ok") return json({ released: true });
    const headers = a.retryAfterS === undefined ? {} : { "retry-after": String(a.retryAfterS) };
    return problem(NAMES[a.kind] ?? "x", a.kind, {}, headers);
  });
  const client = new SyncClient({
    url: "http://svc",
    fetch: f.fetch,
    retry: { attempts, baseMs: 10, maxMs: 100 },
    random: randomFrom(rand),
  });
  const ac = new AbortController();
  const reason = new Error(`abort ${seed}`);
  let outcome: { ok: boolean; value: unknown } | undefined;
  let abortedAt: number | undefined;
  let settledAt: number | undefined;
  const t0 = Date.now();
  void client.locks
    .release("r", { owner: "o", signal: ac.signal })
    .then(
      (value) => (outcome = { ok: true, value }),
      (value) => (outcome = { ok: false, value }),
    )
    .finally(() => (settledAt = Date.now()));
  while (outcome === undefined && Date.now() - t0 < 60_000) {
    if (abortAt !== undefined && abortedAt === undefined && Date.now() - t0 >= abortAt) {
      abortedAt = Date.now();
      ac.abort(reason);
      await vi.advanceTimersByTimeAsync(0); // promptly: no time passes before it rejects
      break;
    }
    await vi.advanceTimersByTimeAsync(1);
  }
  const callsAtSettle = f.calls.length;
  await vi.advanceTimersByTimeAsync(20_000);
  return { attempts, answers, abortAt, abortedAt, outcome, settledAt, reason, calls: f.calls, callsAtSettle };
}

const seeds =
  process.env.TRANSPORT_SEED !== undefined
    ? [Number(process.env.TRANSPORT_SEED)]
    : Array.from({ length: 500 }, (_, i) => i + 1);

describe("transport properties (seeded)", () => {
  it(`retries, keys, Retry-After and aborts hold for ${seeds.length} seeds`, async () => {
    for (const seed of seeds) {
      const r = await runSeed(seed);
      const where = `seed ${seed} (TRANSPORT_SEED=${seed}) ${JSON.stringify({ answers: r.answers, abortAt: r.abortAt })}`;
      expect(r.outcome, `${where}: never settled`).toBeDefined();
      expect(r.calls.length, `${where}: sent after it settled`).toBe(r.callsAtSettle);
      // One Idempotency-Key for every attempt of the call.
      expect(new Set(r.calls.map((c) => c.headers.get("idempotency-key"))).size, where).toBe(1);
      // Each retry waited at least the Retry-After of the answer before it.
      for (let i = 1; i < r.calls.length; i++) {
        const prev = r.answers[i - 1] as Answer;
        const gap = (r.calls[i]?.at ?? 0) - (r.calls[i - 1]?.at ?? 0);
        expect(gap, `${where}: retry ${i} came early`).toBeGreaterThanOrEqual(
          prev.delayMs + (typeof prev.kind === "number" ? (prev.retryAfterS ?? 0) : 0) * 1000,
        );
      }
      if (r.abortedAt !== undefined) {
        // Aborted: rejected with the reason at the moment of the abort, nothing sent afterwards.
        expect(r.outcome, where).toEqual({ ok: false, value: r.reason });
        expect(r.settledAt, where).toBe(r.abortedAt);
        expect(
          r.calls.every((c) => c.at <= (r.abortedAt as number)),
          where,
        ).toBe(true);
        continue;
      }
      // Not aborted: attempts go on exactly while the answers are retryable and attempts are left.
      const stopAt = r.answers.findIndex((a) => !RETRYABLE.has(a.kind));
      const expected = stopAt < 0 ? r.attempts : stopAt + 1;
      expect(r.calls.length, `${where}: attempts`).toBe(expected);
      const last = r.answers[expected - 1] as Answer;
      if (last.kind === "ok") expect(r.outcome, where).toEqual({ ok: true, value: { released: true } });
      else {
        expect(r.outcome?.ok, where).toBe(false);
        expect(r.outcome?.value, where).toBeInstanceOf(SyncError);
        expect((r.outcome?.value as SyncError | undefined)?.status, where).toBe(
          last.kind === "network" ? 0 : last.kind,
        );
      }
    }
  }, 120_000);

  it("two calls, even of the same request, never share a key", async () => {
    const f = fakeFetch(() => json({ released: true }));
    const client = new SyncClient({ url: "http://svc", fetch: f.fetch });
    await Promise.all(Array.from({ length: 50 }, () => client.locks.release("r", { owner: "o" })));
    expect(new Set(f.calls.map((c) => c.headers.get("idempotency-key"))).size).toBe(50);
  });
});
