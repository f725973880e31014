/**
 * A fixed-bucket histogram as plain data: what a pure component (the replica, a service) keeps in
 * memory and hands to the Worker over RPC, which renders it (Registry.histogram). Values are in
 * the unit of the metric's name: seconds for durations.
 */
export interface HistogramData {
  /** Upper bounds, increasing; the +Inf bucket is implied. */
  bounds: number[];
  /** Observations per bucket, not cumulative: `counts[i]` for `bounds[i]`, the last one for +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** Latencies of one Raft commit or one HTTP request: 0.5 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Waits and processing times that may last long (a lock wait, a message's work): 1 ms to 5 min. */
export const WAIT_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function emptyHistogram(bounds: readonly number[]): HistogramData {
  return { bounds: [...bounds], counts: new Array(bounds.length + 1).fill(0), sum: 0, count: 0 };
}

/** Records one observation in `h` (in place). */
export function observe(h: HistogramData, value: number): void {
  let i = 0;
  while (i < h.bounds.length && value > (h.bounds[i] as number)) i++;
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.sum += value;
  h.count += 1;
}

/** Adds `from` into `into` (in place); both must have the same bounds. */
export function mergeHistogram(into: HistogramData, from: HistogramData): void {
  if (into.bounds.length !== from.bounds.length || into.bounds.some((b, i) => b !== from.bounds[i])) {
    throw new Error("cannot merge histograms with different buckets");
  }
  from.counts.forEach((c, i) => {
    into.counts[i] = (into.counts[i] ?? 0) + c;
  });
  into.sum += from.sum;
  into.count += from.count;
}

/** A copy that the owner may go on changing without changing the copy (what an RPC answer carries). */
export function copyHistogram(h: HistogramData): HistogramData {
  return { bounds: [...h.bounds], counts: [...h.counts], sum: h.sum, count: h.count };
}
