// What the dashboard page derives from snapshots (dashboard/model.ts) and how it reads the stream (dashboard/sse.ts).
import { describe, expect, it } from "vitest";
import { latencyBetween, perSecond, queueRates, waitForGraph } from "../../dashboard/model";
import type { LockEntry, Snapshot } from "../../dashboard/snapshot";
import { parseEvents, readEvents, type ServerEvent } from "../../dashboard/sse";
import { emptyHistogram, LATENCY_BUCKETS_SECONDS, observe } from "../../shared/metrics/histogram";

const lock = (resource: string, holders: string[], waiters: string[], mode: "exclusive" | "shared" = "exclusive") =>
  ({
    resource,
    mode,
    holders: holders.map((owner) => ({ owner, mode, expiresAt: 0 })),
    waiters: waiters.map((owner) => ({ owner, mode: "exclusive" })),
  }) satisfies LockEntry;

describe("waitForGraph", () => {
  it("draws waiter → holder, off any cycle when there is none", () => {
    const g = waitForGraph([lock("r1", ["alice"], ["bob", "carol"]), lock("r2", ["dave"], [])]);
    expect(g.edges).toEqual([
      { waiter: "bob", holder: "alice", resource: "r1", onCycle: false },
      { waiter: "carol", holder: "alice", resource: "r1", onCycle: false },
    ]);
    expect(g.owners).toEqual(["alice", "bob", "carol", "dave"]);
  });

  it("marks the edges of a cycle across resources, and only those", () => {
    const g = waitForGraph([lock("x", ["a"], ["b", "c"]), lock("y", ["b"], ["a"]), lock("z", ["c"], ["d"])]);
    const on = (w: string, h: string) => g.edges.find((e) => e.waiter === w && e.holder === h)?.onCycle;
    expect(on("a", "b")).toBe(true);
    expect(on("b", "a")).toBe(true);
    expect(on("c", "a")).toBe(false); // c waits on the cycle but is not part of it
    expect(on("d", "c")).toBe(false);
  });

  it("an upgrading shared holder waits for the other holders, not for itself", () => {
    const g = waitForGraph([lock("r", ["a", "b"], ["a"], "shared")]);
    expect(g.edges).toEqual([{ waiter: "a", holder: "b", resource: "r", onCycle: false }]);
  });

  it("a three-owner cycle is found whatever the order of the locks", () => {
    const locks = [lock("r1", ["a"], ["c"]), lock("r2", ["b"], ["a"]), lock("r3", ["c"], ["b"])];
    for (const order of [locks, [...locks].reverse()]) {
      expect(waitForGraph(order).edges.every((e) => e.onCycle)).toBe(true);
    }
  });
});

describe("rates", () => {
  it("per second between two readings; unknown across a restart or a missing reading", () => {
    expect(perSecond(10, 40, 2000)).toBe(15);
    expect(perSecond(40, 10, 1000)).toBeUndefined(); // the counter restarted
    expect(perSecond(undefined, 10, 1000)).toBeUndefined();
    expect(perSecond(1, 2, 0)).toBeUndefined();
  });

  it("latency of the requests between two histograms: the mean and the bucket holding the 99th percentile", () => {
    const before = emptyHistogram(LATENCY_BUCKETS_SECONDS);
    observe(before, 9); // an old slow request does not count
    const after = structuredClone(before);
    for (let i = 0; i < 99; i++) observe(after, 0.004);
    observe(after, 0.8);
    const l = latencyBetween(before, after);
    expect(l?.p99Ms).toBe(5);
    expect(l?.meanMs).toBeCloseTo((99 * 4 + 800) / 100, 6);
    observe(after, 0.8); // now 2 of 101 are slow: the 99th percentile is among them
    expect(latencyBetween(before, after)?.p99Ms).toBe(1000);
    observe(after, 60); // past the last bound: reported as the last bound
    for (let i = 0; i < 5; i++) observe(after, 60);
    expect(latencyBetween(before, after)?.p99Ms).toBe(10_000);
    expect(latencyBetween(after, after)).toBeUndefined();
  });

  it("queue rates from the counters of two snapshots", () => {
    const snap = (at: number, enqueued: number | undefined, acked: number | undefined): Snapshot => ({
      at,
      admin: "open",
      groups: { ok: true, value: [] },
      locks: { ok: true, value: { locks: [], truncated: false } },
      queues: { ok: true, value: [{ queue: "q", visible: 0, inflight: 0, delayed: 0, dlq: 0, enqueued, acked }] },
      cache: [],
      http: { requests: 0, latency: emptyHistogram(LATENCY_BUCKETS_SECONDS) },
    });
    expect(queueRates(snap(1000, 10, 4), snap(1500, 30, 9)).get("q")).toEqual({
      enqueuedPerSecond: 40,
      ackedPerSecond: 10,
    });
    expect(queueRates(undefined, snap(1000, 10, 4)).get("q")).toEqual({
      enqueuedPerSecond: undefined,
      ackedPerSecond: undefined,
    });
    expect(queueRates(snap(1000, 10, 4), snap(2000, undefined, 5)).get("q")?.enqueuedPerSecond).toBeUndefined();
  });
});

describe("server-sent events", () => {
  const text = ': hello\n\nevent: snapshot\nid: 7\ndata: {"a":1}\n\ndata: line one\ndata: line two\n\nevent: ping\n\n';
  const expected: ServerEvent[] = [
    { event: "snapshot", id: "7", data: '{"a":1}' },
    { event: "message", data: "line one\nline two" },
  ];

  it("parses events, comments and multi-line data, keeping an unfinished event for later", () => {
    expect(parseEvents(text)).toEqual({ events: expected, rest: "" });
    expect(parseEvents(text.replace(/\n/g, "\r\n")).events).toEqual(expected);
    expect(parseEvents("event: snapshot\ndata: {").events).toEqual([]);
  });

  it("reads the same events whatever the chunks, even split inside a character", async () => {
    const bytes = new TextEncoder().encode(`${text}data: ünïcødé ✓\n\n`);
    const all = [...expected, { event: "message", data: "ünïcødé ✓" }];
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (const chunk of chunks) c.enqueue(chunk);
          c.close();
        },
      });
      const got: ServerEvent[] = [];
      await readEvents(body, (e) => got.push(e));
      expect(got, `chunks of ${size}`).toEqual(all);
    }
  });
});
