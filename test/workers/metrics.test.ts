// `/metrics` inside workerd, read through a strict parser of the Prometheus text format
// (shared/metrics/exposition.ts): every line parses, every family follows the conventions, and
// the lock, queue and Raft counters move with the work done between two scrapes.
import { beforeAll, describe, expect, it } from "vitest";
import {
  conventionProblems,
  type MetricFamily,
  parseExposition,
  sampleSum,
  sampleValue,
} from "../../shared/metrics/exposition.js";
import { acquire, call, get, post, ready, release, sleep } from "./client";

beforeAll(ready, 20_000);

async function scrape(): Promise<{ text: string; families: Map<string, MetricFamily> }> {
  const res = await call("GET", "/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = res.json as string;
  return { text, families: parseExposition(text) };
}

const GROUPS = ["g0", "g1", "g2"];
const PEERS = ["p1", "p2", "p3"];

describe("/metrics", () => {
  it("parses strictly and follows the naming conventions, with every family documented", async () => {
    await get("/healthz");
    const { text, families } = await scrape();
    expect(conventionProblems(families)).toEqual([]);
    // Nothing in milliseconds, and the old names are gone.
    expect(text).not.toMatch(/_ms[_{ ]/);
    for (const f of families.values()) {
      expect(f.help, f.name).toBeTruthy();
      expect(f.type, f.name).toBeDefined();
      // One TYPE line per family, however many label sets it has.
      expect(text.split("\n").filter((l) => l.startsWith(`# TYPE ${f.name} `))).toHaveLength(1);
    }
    const types = Object.fromEntries([...families.values()].map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      http_requests_total: "counter",
      http_request_duration_seconds: "histogram",
      process_uptime_seconds: "gauge",
      process_start_time_seconds: "gauge",
      raft_peer_up: "gauge",
      raft_role: "gauge",
      raft_is_leader: "gauge",
      raft_term: "gauge",
      raft_commit_index: "gauge",
      raft_proposals_total: "counter",
      raft_commit_latency_seconds: "histogram",
      raft_elections_total: "counter",
      raft_leader_changes_seen_total: "counter",
      raft_snapshots_total: "counter",
      lock_acquired_total: "counter",
      lock_released_total: "counter",
      lock_deadlocks_total: "counter",
      lock_wait_seconds: "histogram",
      lock_active: "gauge",
      cache_hits_total: "counter",
      cache_misses_total: "counter",
      cache_evictions_total: "counter",
      cache_invalidations_total: "counter",
      cache_hit_ratio: "gauge",
    });
    // Node state: every peer up, one leader per group, a role for every peer.
    for (const group of GROUPS) {
      expect(sampleValue(families, "raft_group_metrics_up", { group })).toBe(1);
      expect(sampleSum(families, "raft_is_leader", { group })).toBe(1);
      expect(sampleSum(families, "raft_role", { group, role: "leader" })).toBe(1);
      for (const peer of PEERS) {
        expect(sampleValue(families, "raft_peer_up", { group, peer })).toBe(1);
        expect(sampleSum(families, "raft_role", { group, peer })).toBe(1);
        expect(sampleValue(families, "raft_term", { group, peer })).toBeGreaterThan(0);
      }
      // Lock series exist at 0 for a group that has seen no lock.
      expect(sampleValue(families, "lock_deadlocks_total", { group })).toBeGreaterThanOrEqual(0);
      expect(sampleValue(families, "lock_active", { group })).toBe(0);
      expect(sampleValue(families, "raft_elections_total", { group })).toBeGreaterThanOrEqual(0);
    }
    expect(sampleValue(families, "process_uptime_seconds")).toBeGreaterThanOrEqual(0);
    // Cache counters for every node, even at 0.
    for (const node of ["n1", "n2", "n3", "n4"]) {
      expect(sampleValue(families, "cache_node_up", { node })).toBe(1);
      for (const c of ["hits", "misses", "evictions", "invalidations"]) {
        expect(sampleValue(families, `cache_${c}_total`, { node })).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it("lock counters, the wait histogram and the active gauge move with acquires and releases", async () => {
    const before = (await scrape()).families;
    expect((await acquire("metrics-lock", { owner: "a", ttlMs: 30_000 })).status).toBe(200);
    // b waits behind a; a is released after ~300 ms and b is granted.
    const waiting = acquire("metrics-lock", { owner: "b", ttlMs: 30_000, waitMs: 10_000 });
    await sleep(300);
    const mid = (await scrape()).families;
    expect(sampleSum(mid, "lock_active") - sampleSum(before, "lock_active")).toBe(1);
    expect(sampleSum(mid, "lock_waiting")).toBe(1);
    expect((await release("metrics-lock", "a")).status).toBe(200);
    expect((await waiting).status).toBe(200);
    // A retried acquire of a lock already held changes nothing.
    expect((await acquire("metrics-lock", { owner: "b", ttlMs: 30_000 })).status).toBe(200);
    expect((await release("metrics-lock", "b")).status).toBe(200);

    const { families: after } = await scrape();
    expect(conventionProblems(after)).toEqual([]);
    const moved = (name: string) => sampleSum(after, name) - sampleSum(before, name);
    expect(moved("lock_acquired_total")).toBe(2);
    expect(moved("lock_released_total")).toBe(2);
    expect(moved("lock_wait_seconds_count")).toBe(2);
    // b waited at least the 300 ms before a let go, and not the whole 10 s it was willing to.
    expect(moved("lock_wait_seconds_sum")).toBeGreaterThanOrEqual(0.25);
    expect(moved("lock_wait_seconds_sum")).toBeLessThan(10);
    expect(sampleSum(after, "lock_active")).toBe(sampleSum(before, "lock_active"));
    expect(sampleSum(after, "lock_waiting")).toBe(0);
    expect(moved("lock_deadlocks_total")).toBe(0);
    // Every command went through Raft: proposals and commit latencies on the leaders.
    expect(moved("raft_commit_latency_seconds_count")).toBeGreaterThanOrEqual(4);
  });

  it("a deadlock within a group is counted", async () => {
    const before = (await scrape()).families;
    // x holds r1 and waits for r2 held by y; y asking for r1 would close the cycle (same group
    // or not: the cross-group detector cancels one wait; either way one deadlock is counted).
    const r1 = "dl-1";
    const r2 = "dl-2";
    expect((await acquire(r1, { owner: "x", ttlMs: 30_000 })).status).toBe(200);
    expect((await acquire(r2, { owner: "y", ttlMs: 30_000 })).status).toBe(200);
    const xWaits = acquire(r2, { owner: "x", ttlMs: 30_000, waitMs: 5000 });
    await sleep(200);
    const yWaits = await acquire(r1, { owner: "y", ttlMs: 30_000, waitMs: 5000 });
    const xOutcome = await Promise.race([xWaits, sleep(100).then(() => undefined)]);
    const statuses = [yWaits.status, xOutcome?.status];
    expect(statuses).toContain(409);
    await release(r1, "x");
    await release(r2, "y");
    await release(r1, "y");
    await release(r2, "x");
    await xWaits;
    const { families: after } = await scrape();
    expect(sampleSum(after, "lock_deadlocks_total") - sampleSum(before, "lock_deadlocks_total")).toBe(1);
  });

  it("queue counters (with a queue label), depth and processing time move with enqueue, receive and ack", async () => {
    const q = "metrics-q";
    const before = (await scrape()).families;
    const sent = await post(`/v1/queues/${q}/messages`, { messages: [{ body: 1 }, { body: 2 }, { body: 3 }] });
    expect(sent.status).toBe(200);
    const mid = (await scrape()).families;
    expect(sampleValue(mid, "queue_enqueued_messages_total", { queue: q })).toBe(3);
    expect(sampleValue(mid, "queue_depth_messages", { queue: q })).toBe(3);
    expect(sampleValue(mid, "queue_visible_messages", { queue: q })).toBe(3);
    // The dead-letter queue is known with its queue, empty.
    expect(sampleValue(mid, "queue_dlq_messages", { queue: q })).toBe(0);
    expect(sampleValue(mid, "queue_depth_messages", { queue: `${q}.dlq` })).toBe(0);

    const got = await post(`/v1/queues/${q}/receive`, { max: 2, visibilityMs: 30_000 });
    expect(got.json.messages).toHaveLength(2);
    await sleep(200);
    const receipts = got.json.messages.map((m: { receipt: string }) => m.receipt);
    expect((await post(`/v1/queues/${q}/ack`, { receipts })).json).toEqual({ acked: 2 });

    const { families: after } = await scrape();
    expect(conventionProblems(after)).toEqual([]);
    const labels = { queue: q };
    expect(sampleValue(after, "queue_enqueued_messages_total", labels)).toBe(3);
    expect(sampleValue(after, "queue_dequeued_messages_total", labels)).toBe(2);
    expect(sampleValue(after, "queue_acked_messages_total", labels)).toBe(2);
    expect(sampleValue(after, "queue_redelivered_messages_total", labels)).toBe(0);
    expect(sampleValue(after, "queue_dead_lettered_messages_total", labels)).toBe(0);
    expect(sampleValue(after, "queue_depth_messages", labels)).toBe(1);
    expect(sampleValue(after, "queue_inflight_messages", labels)).toBe(0);
    expect(sampleValue(after, "queue_processing_seconds_count", labels)).toBe(2);
    expect(sampleValue(after, "queue_processing_seconds_sum", labels)).toBeGreaterThanOrEqual(0.15);
    // Every queue series carries the queue label.
    for (const f of after.values()) {
      if (!f.name.startsWith("queue_")) continue;
      for (const s of f.samples) expect(s.labels.queue, s.name).toBeDefined();
    }
    expect(sampleSum(after, "raft_proposals_total")).toBeGreaterThan(sampleSum(before, "raft_proposals_total"));
  });

  it("a redelivery and a dead-lettering are counted on the queue", async () => {
    const q = "metrics-dlq";
    expect((await call("PUT", `/v1/queues/${q}`, { maxAttempts: 2 })).status).toBe(200);
    await post(`/v1/queues/${q}/messages`, { messages: [{ body: "x", key: "k" }] });
    // Delivered, released (nack), delivered again, released: two attempts used up.
    for (const attempts of [1, 2]) {
      const got = await post(`/v1/queues/${q}/receive`, {});
      expect(got.json.messages).toMatchObject([{ attempts }]);
      expect((await post(`/v1/queues/${q}/nack`, { receipts: [got.json.messages[0].receipt] })).status).toBe(200);
    }
    // Past maxAttempts: the next receive moves it to the DLQ instead of delivering it.
    expect((await post(`/v1/queues/${q}/receive`, {})).json.messages).toHaveLength(0);
    const { families } = await scrape();
    const labels = { queue: q };
    expect(sampleValue(families, "queue_dequeued_messages_total", labels)).toBe(2);
    expect(sampleValue(families, "queue_redelivered_messages_total", labels)).toBe(1);
    expect(sampleValue(families, "queue_dead_lettered_messages_total", labels)).toBe(1);
    expect(sampleValue(families, "queue_acked_messages_total", labels)).toBe(0);
    expect(sampleValue(families, "queue_dlq_messages", labels)).toBe(1);
    expect(sampleValue(families, "queue_depth_messages", { queue: `${q}.dlq` })).toBe(1);
    expect(sampleValue(families, "queue_depth_messages", labels)).toBe(0);
  });

  it("cache counters and the hit ratio per node", async () => {
    const before = (await scrape()).families;
    expect((await call("PUT", "/v1/cache/metrics-key?node=n1", { value: 1 })).status).toBe(200);
    expect((await get("/v1/cache/metrics-key?node=n1")).json.hit).toBe(true);
    expect((await get("/v1/cache/metrics-key?node=n2")).json.hit).toBe(false);
    const { families: after } = await scrape();
    const moved = (name: string, node: string) =>
      (sampleValue(after, name, { node }) ?? 0) - (sampleValue(before, name, { node }) ?? 0);
    expect(moved("cache_hits_total", "n1")).toBe(1);
    expect(moved("cache_misses_total", "n2")).toBe(1);
    const ratio = sampleValue(after, "cache_hit_ratio", { node: "n1" }) ?? -1;
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThanOrEqual(1);
  });
});
