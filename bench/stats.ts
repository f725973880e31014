// Latency and outcome bookkeeping for the HTTP load benchmarks, and the plain-text table they print.

/** What one phase measured: latencies (and messages) of successful ops by op name, failures by op and outcome. */
export class Recorder {
  readonly latencies = new Map<string, number[]>();
  /** Messages the successful ops of each name carried (queue scenarios: enqueued, received, acked). */
  readonly messages = new Map<string, number>();
  /** `"<op> <status> <problem type>"` (or `"<op> <error code>"`) → count. */
  readonly errors = new Map<string, number>();
  /** The first response body seen for each error key, so a report can quote what the server said. */
  readonly samples = new Map<string, string>();

  ok(op: string, ms: number, messages = 0): void {
    if (messages > 0) this.messages.set(op, (this.messages.get(op) ?? 0) + messages);
    let list = this.latencies.get(op);
    if (list === undefined) {
      list = [];
      this.latencies.set(op, list);
    }
    list.push(ms);
  }

  fail(op: string, outcome: string, body?: string): void {
    const key = `${op} ${outcome}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    if (body !== undefined && !this.samples.has(key)) this.samples.set(key, body.slice(0, 500));
  }

  errorCount(): number {
    let n = 0;
    for (const count of this.errors.values()) n += count;
    return n;
  }

  /** Every op name together, or one of them. */
  summary(seconds: number, op?: string): Summary {
    const lists = op === undefined ? [...this.latencies.values()] : [this.latencies.get(op) ?? []];
    return summarize(lists.flat(), seconds);
  }

  /** Messages per second carried by the successful ops named `op`. */
  messageRate(seconds: number, op: string): number {
    return (this.messages.get(op) ?? 0) / seconds;
  }
}

export interface Summary {
  count: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
}

export function summarize(latenciesMs: number[], seconds: number): Summary {
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    count: sorted.length,
    perSecond: sorted.length / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
  };
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function fmt(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "-";
}

/** Columns padded to their widest cell; numbers (anything starting with a digit or `-`) right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        return /^[\d-]/.test(cell) ? cell.padStart(w) : cell.padEnd(w);
      })
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
