import { describe, expect, it } from "vitest";
import { SyncClient, UnauthorizedError } from "../../client/index.js";
import { fakeFetch, json, problem, type Recorded, sleep, until } from "./fake-fetch.js";

const fast = { attempts: 2, baseMs: 1, maxMs: 4 };

interface Stored {
  id: string;
  body: unknown;
  attempts: number;
  receipt?: string; // set while delivered
}

/** A one-shard queue: receive long-polls (until a message, waitMs, or the abort), nack ignores delays. */
function queueService(count: number) {
  const messages: Stored[] = Array.from({ length: count }, (_, i) => ({ id: `m${i}`, body: i, attempts: 0 }));
  const acked: string[] = [];
  const nacks: { receipts: string[]; delayMs?: number }[] = [];
  const state = { receive: "ok" as "ok" | "no-quorum" | "unauthorized", failures: 0, seq: 0, extendStale: false };
  const byReceipt = (r: string) => messages.find((m) => m.receipt === r);
  const f = fakeFetch(async (req: Recorded) => {
    const op = req.path.split("/").pop();
    const body = req.body as { max: number; waitMs: number; receipts: string[]; delayMs?: number };
    switch (op) {
      case "receive": {
        if (state.receive === "unauthorized") return problem("unauthorized", 401);
        if (state.receive === "no-quorum" && state.failures-- > 0)
          return problem("no-quorum", 503, {}, { "retry-after": "0" });
        const until = Date.now() + body.waitMs;
        for (;;) {
          const free = messages.filter((m) => m.receipt === undefined).slice(0, body.max);
          if (free.length > 0 || Date.now() >= until) {
            for (const m of free) m.receipt = `0:${m.id.slice(1)}:${++m.attempts}${state.seq++ ? "" : ""}`;
            return json({
              messages: free.map((m) => ({
                id: m.id,
                body: m.body,
                receipt: m.receipt,
                attempts: m.attempts,
                enqueuedAt: 1,
              })),
            });
          }
          if (req.signal?.aborted) throw req.signal.reason;
          await sleep(5);
        }
      }
      case "ack": {
        let n = 0;
        for (const r of body.receipts) {
          const m = byReceipt(r);
          if (m === undefined) continue;
          messages.splice(messages.indexOf(m), 1);
          acked.push(m.id);
          n++;
        }
        return json({ acked: n });
      }
      case "nack":
        nacks.push({ receipts: body.receipts, delayMs: body.delayMs });
        for (const r of body.receipts) {
          const m = byReceipt(r);
          if (m) m.receipt = undefined;
        }
        return json({ released: body.receipts.length });
      case "extend":
        return json({ extended: state.extendStale ? 0 : body.receipts.filter((r) => byReceipt(r)).length });
      default:
        throw new Error(`unexpected ${req.path}`);
    }
  });
  const ops = (op: string) => f.calls.filter((c) => c.path.endsWith(`/${op}`));
  const client = new SyncClient({ url: "http://svc", fetch: f.fetch, retry: fast });
  return { messages, acked, nacks, state, ops, client };
}

describe("consume", () => {
  it("handles every message once and acks it, at most `concurrency` at a time", async () => {
    const svc = queueService(12);
    const ac = new AbortController();
    let active = 0;
    let most = 0;
    const seen: string[] = [];
    const done = svc.client.consume(
      "q",
      async (m) => {
        active++;
        most = Math.max(most, active);
        seen.push(m.id);
        await sleep(20);
        active--;
      },
      { concurrency: 3, batch: 5, waitMs: 50, signal: ac.signal },
    );
    await until(() => svc.acked.length === 12, 5000, "all acked");
    ac.abort();
    await done;
    expect(seen.sort()).toEqual(svc.acked.sort());
    expect(new Set(seen).size).toBe(12);
    expect(most).toBe(3);
    expect(svc.ops("receive").every((c) => (c.body as { max: number }).max === 5)).toBe(true);
  });

  it("a failing handler's message is nacked with a delay that grows with its attempts", async () => {
    const svc = queueService(1);
    const ac = new AbortController();
    const done = svc.client.consume(
      "q",
      async (m) => {
        if (m.attempts < 5) throw new Error(`attempt ${m.attempts} failed`);
      },
      { waitMs: 20, signal: ac.signal },
    );
    await until(() => svc.acked.length === 1, 5000, "the fifth attempt's ack");
    ac.abort();
    await done;
    const delays = svc.nacks.map((n) => n.delayMs ?? 0);
    expect(delays).toHaveLength(4);
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1] as number);
    expect(delays[0]).toBeGreaterThan(0);
  });

  it("stop during a long poll aborts the receive and resolves promptly", async () => {
    const svc = queueService(0);
    const ac = new AbortController();
    const done = svc.client.consume("q", async () => undefined, { signal: ac.signal });
    await until(() => svc.ops("receive").length === 1, 2000, "the long poll");
    expect(svc.ops("receive")[0]?.body).toMatchObject({ waitMs: 20_000 });
    const t = Date.now();
    ac.abort();
    await done;
    expect(Date.now() - t).toBeLessThan(1000);
    expect(svc.ops("receive")[0]?.signal?.aborted).toBe(true);
    expect(svc.ops("receive")).toHaveLength(1);
  });

  it("on stop, messages received but not started are nacked at once; running ones finish and are acked", async () => {
    const svc = queueService(5);
    const ac = new AbortController();
    const started: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const done = svc.client.consume(
      "q",
      async (m) => {
        started.push(m.id);
        await gate;
      },
      { concurrency: 2, batch: 5, waitMs: 0, signal: ac.signal },
    );
    await until(() => started.length === 2, 2000, "two handlers");
    ac.abort();
    let resolved = false;
    void done.then(() => (resolved = true));
    await sleep(50);
    expect(resolved).toBe(false); // waits for the running handlers
    expect(svc.nacks).toEqual([{ receipts: ["0:2:1", "0:3:1", "0:4:1"], delayMs: 0 }]);
    release();
    await done;
    expect(svc.acked.sort()).toEqual(started.sort());
    expect(started).toHaveLength(2);
    expect(svc.ops("receive")).toHaveLength(1);
  });

  it("extends a message's visibility while its handler runs, before it lapses", async () => {
    const svc = queueService(1);
    const ac = new AbortController();
    const done = svc.client.consume("q", () => sleep(1600), { visibilityMs: 1000, waitMs: 0, signal: ac.signal });
    await until(() => svc.acked.length === 1, 5000, "the ack");
    ac.abort();
    await done;
    const received = svc.ops("receive")[0]?.at ?? 0;
    const extends_ = svc.ops("extend");
    expect(extends_.length).toBeGreaterThanOrEqual(2);
    expect((extends_[0]?.at ?? 0) - received).toBeLessThan(1000);
    for (let i = 1; i < extends_.length; i++)
      expect((extends_[i]?.at ?? 0) - (extends_[i - 1]?.at ?? 0)).toBeLessThan(1000);
    expect(extends_[0]?.body).toEqual({ receipts: ["0:0:1"], visibilityMs: 1000 });
  });

  it("a message that can no longer be extended aborts its handler's signal", async () => {
    const svc = queueService(1);
    svc.state.extendStale = true;
    const ac = new AbortController();
    let reason: unknown;
    const done = svc.client.consume(
      "q",
      async (_m, ctx) => {
        await new Promise((r) => ctx.signal.addEventListener("abort", r));
        reason = ctx.signal.reason;
      },
      { visibilityMs: 1000, waitMs: 0, signal: ac.signal },
    );
    await until(() => reason !== undefined, 3000, "the handler's abort");
    ac.abort();
    await done;
    expect(String(reason)).toMatch(/delivered again/);
  });

  it("retries a receive that fails with no-quorum instead of throwing", async () => {
    const svc = queueService(2);
    svc.state.receive = "no-quorum";
    svc.state.failures = 5; // more than one call's own attempts
    const ac = new AbortController();
    const errors: unknown[] = [];
    const done = svc.client.consume("q", async () => undefined, {
      waitMs: 0,
      batch: 2,
      signal: ac.signal,
      onError: (e) => errors.push(e),
    });
    await until(() => svc.acked.length === 2, 5000, "the acks");
    ac.abort();
    await done;
    expect(errors.length).toBeGreaterThan(0);
  });

  it("a permanent error of receive rejects the promise", async () => {
    const svc = queueService(0);
    svc.state.receive = "unauthorized";
    await expect(svc.client.consume("q", async () => undefined)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(svc.ops("receive")).toHaveLength(1);
  });
});
