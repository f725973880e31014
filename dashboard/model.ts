/**
 * What the page derives from snapshots, as pure functions: the wait-for graph of the locks with
 * its cycles, and rates from two snapshots' cumulative counters.
 */

import { WaitForGraph } from "../shared/locks/wait-for-graph.js";
import type { HistogramData } from "../shared/metrics/histogram.js";
import type { LockEntry, Snapshot } from "./snapshot.js";

export interface GraphEdge {
  waiter: string;
  holder: string;
  resource: string;
  /** The edge lies on a cycle: a deadlock (until the detector cancels a wait). */
  onCycle: boolean;
}

/**
 * Edges `waiter → holder` for every owner waiting on a resource someone else holds (an upgrading
 * holder waits for the others, not for itself). Cycles are found by shared/locks' WaitForGraph,
 * the search the lock table and the cross-group detector use.
 */
export function waitForGraph(locks: readonly LockEntry[]): { owners: string[]; edges: GraphEdge[] } {
  const edges: GraphEdge[] = [];
  const owners = new Set<string>();
  for (const lock of locks) {
    for (const h of lock.holders) owners.add(h.owner);
    for (const w of lock.waiters) {
      owners.add(w.owner);
      for (const h of lock.holders) {
        if (h.owner === w.owner) continue;
        if (!edges.some((e) => e.waiter === w.owner && e.holder === h.owner && e.resource === lock.resource)) {
          edges.push({ waiter: w.owner, holder: h.owner, resource: lock.resource, onCycle: false });
        }
      }
    }
  }
  const graph = WaitForGraph.from(edges);
  const cyclic = new Set<string>();
  for (const owner of graph.waiters()) {
    const cycle = graph.findCycleThrough(owner);
    cycle?.forEach((from, i) => {
      cyclic.add(JSON.stringify([from, cycle[(i + 1) % cycle.length]]));
    });
  }
  for (const e of edges) e.onCycle = cyclic.has(JSON.stringify([e.waiter, e.holder]));
  return { owners: [...owners].sort(), edges };
}

/**
 * Per second from two readings of a counter `ms` apart; undefined when either is missing or the
 * counter went down (its process restarted: the interval's count is unknown).
 */
export function perSecond(before: number | undefined, after: number | undefined, ms: number): number | undefined {
  if (before === undefined || after === undefined || after < before || ms <= 0) return undefined;
  return ((after - before) * 1000) / ms;
}

/** Mean and 99th percentile (a bucket's upper bound) of the requests between two histograms, in ms. */
export function latencyBetween(
  before: HistogramData,
  after: HistogramData,
): { meanMs: number; p99Ms: number } | undefined {
  const count = after.count - before.count;
  if (count <= 0) return undefined;
  const meanMs = ((after.sum - before.sum) / count) * 1000;
  let seen = 0;
  for (let i = 0; i < after.counts.length; i++) {
    seen += (after.counts[i] ?? 0) - (before.counts[i] ?? 0);
    if (seen >= count * 0.99) {
      // The +Inf bucket has no bound: say "more than the last one".
      const bound = after.bounds[i] ?? after.bounds[after.bounds.length - 1] ?? 0;
      return { meanMs, p99Ms: bound * 1000 };
    }
  }
  return { meanMs, p99Ms: meanMs };
}

/** One point of the sparklines: the service's throughput and latency between two snapshots. */
export interface Sample {
  at: number;
  requestsPerSecond: number | undefined;
  meanMs: number | undefined;
  p99Ms: number | undefined;
}

export function sampleBetween(before: Snapshot, after: Snapshot): Sample {
  const latency = latencyBetween(before.http.latency, after.http.latency);
  return {
    at: after.at,
    requestsPerSecond: perSecond(before.http.requests, after.http.requests, after.at - before.at),
    meanMs: latency?.meanMs,
    p99Ms: latency?.p99Ms,
  };
}

/** Enqueue and ack rates per queue between two snapshots (undefined where a counter is unknown). */
export function queueRates(
  before: Snapshot | undefined,
  after: Snapshot,
): Map<string, { enqueuedPerSecond: number | undefined; ackedPerSecond: number | undefined }> {
  const rates = new Map<string, { enqueuedPerSecond: number | undefined; ackedPerSecond: number | undefined }>();
  if (!after.queues.ok) return rates;
  const earlier = new Map(before?.queues.ok ? before.queues.value.map((q) => [q.queue, q]) : []);
  const ms = before === undefined ? 0 : after.at - before.at;
  for (const q of after.queues.value) {
    const b = earlier.get(q.queue);
    rates.set(q.queue, {
      enqueuedPerSecond: perSecond(b?.enqueued, q.enqueued, ms),
      ackedPerSecond: perSecond(b?.acked, q.acked, ms),
    });
  }
  return rates;
}

/** Keeps the last `size` items (the sparklines' window). */
export function pushBounded<T>(list: readonly T[], item: T, size: number): T[] {
  return [...list, item].slice(-size);
}
