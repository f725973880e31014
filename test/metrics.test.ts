import { describe, expect, it } from "vitest";
import type { LockReply, LockRequest } from "../shared/locks/lock-service.js";
import {
  conventionProblems,
  ExpositionError,
  parseExposition,
  sampleSum,
  sampleValue,
} from "../shared/metrics/exposition.js";
import { emptyHistogram, mergeHistogram, observe } from "../shared/metrics/histogram.js";
import { Registry } from "../shared/metrics/registry.js";
import type { QueueReply } from "../shared/queue/queue-service.js";
import type { NodeId } from "../shared/raft/index.js";
import { TestCluster } from "./replica/harness.js";

describe("metrics registry", () => {
  it("renders counters, gauges and histograms in the Prometheus text format", () => {
    const r = new Registry();
    r.inc("http_requests_total", "Requests.", { route: "/v1/locks", status: 200 });
    r.inc("http_requests_total", "Requests.", { route: "/v1/locks", status: 200 }, 2);
    r.set("raft_term", "Term.", { group: "g0", peer: "p1" }, 7);
    r.observe("latency_seconds", "Latency.", { route: "x" }, 0.003, [0.001, 0.005]);
    r.observe("latency_seconds", "Latency.", { route: "x" }, 0.009, [0.001, 0.005]);
    r.observe("latency_seconds", "Latency.", { route: "x" }, 0.0005, [0.001, 0.005]);
    expect(r.render()).toBe(
      [
        "# HELP http_requests_total Requests.",
        "# TYPE http_requests_total counter",
        'http_requests_total{route="/v1/locks",status="200"} 3',
        "# HELP raft_term Term.",
        "# TYPE raft_term gauge",
        'raft_term{group="g0",peer="p1"} 7',
        "# HELP latency_seconds Latency.",
        "# TYPE latency_seconds histogram",
        'latency_seconds_bucket{route="x",le="0.001"} 1',
        'latency_seconds_bucket{route="x",le="0.005"} 2',
        'latency_seconds_bucket{route="x",le="+Inf"} 3',
        'latency_seconds_sum{route="x"} 0.0125',
        'latency_seconds_count{route="x"} 3',
        "",
      ].join("\n"),
    );
  });

  it("escapes label values and HELP text, writes NaN and infinities as Prometheus does", () => {
    const r = new Registry();
    r.set("g", "G with a \\ and\na newline.", { v: 'a"b\\c\nd' }, 1);
    r.set("h", "H.", {}, Number.NaN);
    r.set("i", "I.", {}, Number.POSITIVE_INFINITY);
    const text = r.render();
    expect(text).toContain('g{v="a\\"b\\\\c\\nd"} 1');
    expect(text).toContain("# HELP g G with a \\\\ and\\na newline.");
    expect(text).toContain("h NaN\n");
    expect(text).toContain("i +Inf\n");
    const parsed = parseExposition(text);
    expect(parsed.get("g")?.samples[0]?.labels.v).toBe('a"b\\c\nd');
    expect(parsed.get("g")?.help).toBe("G with a \\ and\na newline.");
    expect(Number.isNaN(sampleValue(parsed, "h"))).toBe(true);
  });

  it("refuses names and labels against the conventions", () => {
    const r = new Registry();
    r.set("g", "G.", { a: 1 }, 1);
    expect(() => r.inc("g_total", "G.")).not.toThrow();
    expect(() => r.inc("g", "G.", { a: 1 })).toThrow(/gauge/);
    expect(() => r.inc("requests", "R.")).toThrow(/_total/);
    expect(() => r.set("held_total", "H.", {}, 1)).toThrow(/only counters/);
    expect(() => r.observe("latency_ms", "L.", {}, 1)).toThrow(/seconds/);
    expect(() => r.set("wait_ms_max", "L.", {}, 1)).toThrow(/seconds/);
    expect(() => r.observe("x_count", "X.", {}, 1)).toThrow(/suffix/);
    expect(() => r.set("g", "G.", { b: 1 }, 1)).toThrow(/labels/);
    expect(() => r.set("bad-name", "B.", {}, 1)).toThrow(/valid/);
    expect(() => r.set("le_gauge", "B.", { le: 1 }, 1)).toThrow(/reserved/);
    expect(() => r.inc("c_total", "C.", {}, -1)).toThrow(/down/);
  });

  it("adds histograms kept elsewhere; an empty one makes its series exist", () => {
    const a = emptyHistogram([1, 2]);
    const b = emptyHistogram([1, 2]);
    observe(a, 0.5);
    observe(b, 1.5);
    observe(b, 7);
    const r = new Registry();
    r.histogram("wait_seconds", "W.", { q: "x" }, a);
    r.histogram("wait_seconds", "W.", { q: "x" }, b);
    r.histogram("wait_seconds", "W.", { q: "y" }, emptyHistogram([1, 2]));
    const f = parseExposition(r.render());
    expect(conventionProblems(f)).toEqual([]);
    expect(sampleValue(f, "wait_seconds_bucket", { q: "x", le: "1" })).toBe(1);
    expect(sampleValue(f, "wait_seconds_bucket", { q: "x", le: "2" })).toBe(2);
    expect(sampleValue(f, "wait_seconds_bucket", { q: "x", le: "+Inf" })).toBe(3);
    expect(sampleValue(f, "wait_seconds_sum", { q: "x" })).toBe(9);
    expect(sampleValue(f, "wait_seconds_count", { q: "y" })).toBe(0);
    expect(() => mergeHistogram(emptyHistogram([1]), emptyHistogram([2]))).toThrow(/buckets/);
  });
});

describe("metrics registry: reading series back", () => {
  it("sums the series a filter keeps: counters by value, histograms bucket by bucket", () => {
    const r = new Registry();
    r.inc("http_requests_total", "h", { route: "/v1/locks" }, 3);
    r.inc("http_requests_total", "h", { route: "/dashboard/events" }, 5);
    r.inc("http_requests_total", "h", { route: "/v1/queues" }, 2);
    r.observe("http_request_duration_seconds", "h", { route: "/v1/locks" }, 0.004);
    r.observe("http_request_duration_seconds", "h", { route: "/v1/queues" }, 0.2);
    r.observe("http_request_duration_seconds", "h", { route: "/dashboard/events" }, 60);
    const notDashboard = (l: Record<string, string | number>) => !String(l.route).startsWith("/dashboard");
    expect(r.total("http_requests_total")).toBe(10);
    expect(r.total("http_requests_total", notDashboard)).toBe(5);
    expect(r.total("no_such_total")).toBe(0);
    const h = r.merged("http_request_duration_seconds", notDashboard);
    const expected = emptyHistogram(h.bounds);
    observe(expected, 0.004);
    observe(expected, 0.2);
    expect(h).toEqual(expected);
    expect(r.merged("no_such_seconds").count).toBe(0);
  });
});

describe("exposition parser", () => {
  const good = [
    "# HELP a_total A.",
    "# TYPE a_total counter",
    'a_total{x="1"} 2',
    'a_total{x="2"} 3.5e-1',
    "# a plain comment",
    "# HELP d_seconds D.",
    "# TYPE d_seconds histogram",
    'd_seconds_bucket{le="0.1"} 1',
    'd_seconds_bucket{le="+Inf"} 2',
    "d_seconds_sum 0.3",
    "d_seconds_count 2",
    "",
  ].join("\n");

  it("reads families, types, help, labels and values", () => {
    const f = parseExposition(good);
    expect([...f.keys()]).toEqual(["a_total", "d_seconds"]);
    expect(f.get("a_total")).toMatchObject({ type: "counter", help: "A." });
    expect(sampleSum(f, "a_total")).toBe(2.35);
    expect(sampleValue(f, "d_seconds_count")).toBe(2);
    expect(conventionProblems(f)).toEqual([]);
  });

  it.each([
    ["no final newline", "a 1"],
    ["a blank line", "a 1\n\nb 2\n"],
    ["a timestamp", "a 1 1700000000\n"],
    ["two spaces", "a  1\n"],
    ["a bad value", "a one\n"],
    ["an unterminated label", 'a{x="1} 1\n'],
    ["a bad escape", 'a{x="\\t"} 1\n'],
    ["a label twice", 'a{x="1",x="2"} 1\n'],
    ["a label without quotes", "a{x=1} 1\n"],
    ["a duplicate series", 'a{x="1"} 1\na{x="1"} 2\n'],
    ["two TYPE lines", "# TYPE a gauge\n# TYPE a gauge\na 1\n"],
    ["two HELP lines", "# HELP a A.\n# HELP a A.\na 1\n"],
    ["a TYPE after samples", "a 1\n# TYPE a gauge\n"],
    ["an unknown type", "# TYPE a meter\na 1\n"],
    ["a family in two blocks", 'a 1\nb 1\na{x="1"} 1\n'],
  ])("rejects %s", (_, text) => {
    expect(() => parseExposition(text)).toThrow(ExpositionError);
  });

  it("finds what breaks the conventions", () => {
    const problems = (text: string) => conventionProblems(parseExposition(text));
    expect(problems("a_total 1\n")).toEqual([
      "a_total: no HELP",
      "a_total: no TYPE",
      "a_total: a untyped whose name ends in _total",
    ]);
    expect(problems("# HELP a A.\n# TYPE a counter\na 1\n")).toEqual([
      "a: a counter whose name does not end in _total",
    ]);
    expect(problems("# HELP l_ms L.\n# TYPE l_ms gauge\nl_ms 1\n")).toEqual([
      "l_ms: measured in ms (durations are in seconds)",
    ]);
    expect(problems('# HELP c_total C.\n# TYPE c_total counter\nc_total{a="1"} 1\nc_total{b="1"} -1\n')).toEqual([
      "c_total: series with different label names: a | b",
      "c_total: counter value -1 at line 4",
    ]);
    const histogram = (buckets: string, count: number) =>
      problems(
        `# HELP h_seconds H.\n# TYPE h_seconds histogram\n${buckets}h_seconds_sum 1\nh_seconds_count ${count}\n`,
      );
    expect(histogram('h_seconds_bucket{le="1"} 2\nh_seconds_bucket{le="+Inf"} 1\n', 1)).toEqual([
      "h_seconds[]: bucket le=Infinity (1) below the one before (2): not cumulative",
    ]);
    expect(histogram('h_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 2\n', 3)).toEqual([
      "h_seconds[]: +Inf bucket 2 differs from _count 3",
    ]);
    expect(histogram('h_seconds_bucket{le="1"} 1\n', 1)).toEqual(["h_seconds[]: last bucket is not le=+Inf"]);
    expect(
      histogram('h_seconds_bucket{le="2"} 1\nh_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 1\n', 1),
    ).toEqual(["h_seconds[]: le 1 does not increase"]);
    expect(problems('# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n')).toEqual([
      "h: a histogram not in _seconds or _bytes",
    ]);
  });
});

/** The counters a group's replicas keep, on a small cluster of real group cores. */
describe("lock, queue and Raft counters of a group", () => {
  const acquire = (owner: string, resource = "r", waitMs = 0): LockRequest => ({
    op: "acquire",
    resource,
    owner,
    mode: "exclusive",
    ttlMs: 60_000,
    waitMs,
  });

  async function metricsOf(c: TestCluster, leader: NodeId) {
    const out = await c.run(c.core(leader).locks.handle({ op: "metrics", resource: "" }, ""));
    if (!out.done || out.value.type !== "metrics") throw new Error("no metrics");
    return out.value as Extract<LockReply, { type: "metrics" }>;
  }

  it("counts grants, releases, waits, timeouts and deadlocks once, the same on every replica", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    const locks = c.core(leader).locks;
    expect((await c.run(locks.handle(acquire("a"), "1"))).done).toBe(true);
    // b waits behind a for 2 s of real time, then a lets go.
    const b = locks.handle(acquire("b", "r", 30_000), "2");
    await c.advance(2000);
    const mid = await metricsOf(c, leader);
    expect(mid.locks).toMatchObject({ acquired: 1, held: 1, waiting: 1 });
    await c.run(locks.handle({ op: "release", resource: "r", owner: "a" }, "3"));
    expect(((await c.run(b)) as { value: LockReply }).value.type).toBe("granted");
    // Neither a re-acquire of a held lock nor a retry answered by the exactly-once layer counts.
    await c.run(locks.handle(acquire("b"), "4"));
    await c.run(locks.handle({ op: "release", resource: "r", owner: "a" }, "3"));
    await c.run(locks.handle(acquire("a"), "1"));
    // A wait that runs out, and a local deadlock: x holds p and waits for q held by y; y asks for p.
    await c.run(locks.handle(acquire("c", "r", 500), "5"));
    await c.run(locks.handle(acquire("x", "p"), "6"));
    await c.run(locks.handle(acquire("y", "q"), "7"));
    const xWaits = locks.handle(acquire("x", "q", 30_000), "8");
    await c.advance(100);
    const y = await c.run(locks.handle(acquire("y", "p", 30_000), "9"));
    expect(y.done && (y.value as LockReply).type).toBe("deadlock");
    await c.run(locks.handle({ op: "release", resource: "q", owner: "y" }, "10"));
    await c.run(xWaits);
    await c.advance(200);

    const m = await metricsOf(c, leader);
    expect(m.peer).toBe(leader);
    expect(m.locks).toMatchObject({ acquired: 5, released: 2, timedOut: 1, deadlocks: 1, held: 3, waiting: 0 });
    // a, x, y at once (0 s); b after 2 s; x after its wait: five observations.
    expect(m.locks.waitSeconds.count).toBe(5);
    expect(m.locks.waitSeconds.sum).toBeGreaterThanOrEqual(2);
    expect(m.locks.waitSeconds.sum).toBeLessThan(3);
    // Every replica counted the same from the entries it applied.
    for (const id of [1, 2, 3]) {
      const k = c.core(id).locks.counters;
      expect([k.acquired, k.released, k.timedOut, k.deadlocks]).toEqual([5, 2, 1, 1]);
    }
    expect(c.errors).toEqual([]);
  });

  it("counts queue work per queue, once per effect, and the leader's delivery-to-ack times", async () => {
    const c = new TestCluster(3);
    const leader = await c.elect();
    const q = c.core(leader).queues;
    const enqueue = {
      op: "enqueue",
      queue: "jobs",
      shard: 0,
      messages: [1, 2, 3].map((n) => ({ id: `m${n}`, body: n })),
    } as const;
    await c.run(q.handle(enqueue, "e1"));
    await c.run(q.handle(enqueue, "e1")); // a retry: answered again, nothing stored
    await c.run(q.handle({ ...enqueue, messages: [{ id: "m1", body: 1 }] }, "e2")); // a duplicate id
    const got = await c.run(q.handle({ op: "receive", queue: "jobs", shards: [0], max: 2 }, "r1"));
    const receipts = got.done
      ? (got.value as Extract<QueueReply, { type: "deliveries" }>).messages.map((m) => m.receipt)
      : [];
    expect(receipts).toHaveLength(2);
    await c.run(q.handle({ op: "receive", queue: "jobs", shards: [0], max: 2 }, "r1")); // a retry
    await c.advance(1500);
    await c.run(q.handle({ op: "ack", queue: "jobs", shard: 0, receipts }, "a1"));
    await c.run(q.handle({ op: "ack", queue: "jobs", shard: 0, receipts }, "a1")); // a retry
    await c.run(q.handle({ op: "configure", queue: "other", maxAttempts: 3 }, "c1"));

    const out = await c.run(q.handle({ op: "metrics" }, ""));
    const m = out.done ? (out.value as Extract<QueueReply, { type: "metrics" }>) : undefined;
    const jobs = m?.queues.find((x) => x.queue === "jobs");
    expect(jobs?.counts).toEqual({ enqueued: 3, dequeued: 2, redelivered: 0, acked: 2, deadLettered: 0, redriven: 0 });
    expect(jobs?.processingSeconds.count).toBe(2);
    expect(jobs?.processingSeconds.sum).toBeGreaterThanOrEqual(3);
    expect(jobs?.processingSeconds.sum).toBeLessThan(4);
    // A configured queue is known, at 0.
    expect(m?.queues.find((x) => x.queue === "other")?.counts.enqueued).toBe(0);
    // The per-queue counters agree with the table's own group totals.
    const totals = c.core(leader).state.queues.totals();
    expect([totals.enqueued, totals.delivered, totals.acked]).toEqual([3, 2, 2]);
    for (const id of [1, 2, 3]) expect(c.core(id).queues.counters.of("jobs")).toEqual(jobs?.counts);
  });

  it("counts proposals, commit latencies, elections, leader changes and snapshots", async () => {
    const c = new TestCluster(3, { compactEvery: 5 });
    const leader = await c.elect();
    const r = c.core(leader).replica;
    expect(r.metrics.elections).toBe(1);
    expect(r.metrics.leaderChanges).toBe(1);
    const follower = ([1, 2, 3] as NodeId[]).find((id) => id !== leader) as NodeId;
    expect(c.core(follower).replica.metrics.elections).toBe(0);
    expect(c.core(follower).replica.metrics.leaderChanges).toBe(1);
    for (let i = 0; i < 12; i++) await c.run(c.core(leader).locks.handle(acquire(`o${i}`, `r${i}`), `p${i}`));
    expect(r.metrics.proposals).toBe(12);
    expect(r.metrics.commitSeconds.count).toBe(12);
    expect(r.metrics.snapshotsCreated).toBeGreaterThanOrEqual(1);
    // A follower that was away catches up from a snapshot.
    c.crash(follower);
    for (let i = 12; i < 30; i++) await c.run(c.core(leader).locks.handle(acquire(`o${i}`, `r${i}`), `p${i}`));
    c.start(follower);
    await c.advance(500);
    expect(c.core(follower).replica.metrics.snapshotsInstalled).toBe(1);
    const m = await metricsOf(c, leader);
    expect(m.raft.proposals).toBe(30);
    expect(m.raft.commitSeconds.count).toBe(30);
  });
});
