/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Pure: the Worker decides what to record and when to render.
 *
 * It refuses names that break the conventions (https://prometheus.io/docs/practices/naming/), so a
 * wrong name fails where it is made rather than in a dashboard: a counter ends in `_total` and
 * nothing else does, durations are in seconds (no `_ms`), histogram names do not end in the
 * suffixes their series add, every series of a family has the same label names, and `le` is
 * reserved for histogram buckets.
 */
import { emptyHistogram, type HistogramData, LATENCY_BUCKETS_SECONDS, mergeHistogram, observe } from "./histogram.js";

export type Labels = Record<string, string | number>;

export type Kind = "counter" | "gauge" | "histogram";

interface Series {
  labels: Labels;
  value: number;
  histogram?: HistogramData;
}

interface Family {
  kind: Kind;
  help: string;
  /** The sorted label names every series of the family has. */
  labelNames: string;
  series: Map<string, Series>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Why `name` cannot be a metric of this kind, or undefined when it can. */
export function nameProblem(name: string, kind: Kind): string | undefined {
  if (!METRIC_NAME.test(name)) return "is not a valid metric name";
  if (kind === "counter" && !name.endsWith("_total")) return "is a counter: its name must end in _total";
  if (kind !== "counter" && name.endsWith("_total")) return `is a ${kind}: only counters end in _total`;
  if (/_(ms|milliseconds|millis)(_|$)/.test(name)) return "measures in ms: durations are in _seconds";
  if (kind === "histogram" && /_(bucket|sum|count)$/.test(name)) return "ends in a suffix its histogram series add";
  return undefined;
}

export class Registry {
  private readonly families = new Map<string, Family>();

  private family(name: string, kind: Kind, help: string, labels: Labels): Family {
    const labelNames = Object.keys(labels).sort().join(",");
    let f = this.families.get(name);
    if (f === undefined) {
      const problem = nameProblem(name, kind);
      if (problem !== undefined) throw new Error(`metric ${name} ${problem}`);
      for (const l of Object.keys(labels)) {
        if (!LABEL_NAME.test(l) || l.startsWith("__")) throw new Error(`metric ${name}: bad label name ${l}`);
        if (l === "le" || (kind === "histogram" && l === "quantile")) {
          throw new Error(`metric ${name}: label ${l} is reserved`);
        }
      }
      f = { kind, help, labelNames, series: new Map() };
      this.families.set(name, f);
    } else if (f.kind !== kind) {
      throw new Error(`metric ${name} is a ${f.kind}, not a ${kind}`);
    } else if (f.labelNames !== labelNames) {
      throw new Error(`metric ${name} has labels (${f.labelNames}), not (${labelNames})`);
    }
    return f;
  }

  private series(f: Family, labels: Labels): Series {
    const key = labelText(labels);
    let s = f.series.get(key);
    if (s === undefined) {
      s = { labels, value: 0 };
      f.series.set(key, s);
    }
    return s;
  }

  /** Adds `by` (≥ 0) to a counter; `by = 0` makes the series exist at 0. */
  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${name} cannot go down (by ${by})`);
    this.series(this.family(name, "counter", help, labels), labels).value += by;
  }

  set(name: string, help: string, labels: Labels, value: number): void {
    this.series(this.family(name, "gauge", help, labels), labels).value = value;
  }

  /** One observation, in the unit of the name (seconds for durations). */
  observe(name: string, help: string, labels: Labels, value: number, bounds = LATENCY_BUCKETS_SECONDS): void {
    const s = this.series(this.family(name, "histogram", help, labels), labels);
    s.histogram ??= emptyHistogram(bounds);
    observe(s.histogram, value);
  }

  /** Adds a histogram kept elsewhere (a replica's, a service's) to the series; an empty one makes it exist. */
  histogram(name: string, help: string, labels: Labels, data: HistogramData): void {
    const s = this.series(this.family(name, "histogram", help, labels), labels);
    s.histogram ??= emptyHistogram(data.bounds);
    mergeHistogram(s.histogram, data);
  }

  /** The sum of a counter's or gauge's series whose labels `keep` accepts (0 when there are none). */
  total(name: string, keep: (labels: Labels) => boolean = () => true): number {
    let sum = 0;
    for (const s of this.families.get(name)?.series.values() ?? []) if (keep(s.labels)) sum += s.value;
    return sum;
  }

  /** A histogram's series whose labels `keep` accepts, merged into one (empty, with `bounds`, when none). */
  merged(
    name: string,
    keep: (labels: Labels) => boolean = () => true,
    bounds = LATENCY_BUCKETS_SECONDS,
  ): HistogramData {
    const out = emptyHistogram(bounds);
    for (const s of this.families.get(name)?.series.values() ?? []) {
      if (keep(s.labels) && s.histogram !== undefined) mergeHistogram(out, s.histogram);
    }
    return out;
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.kind}`);
      for (const s of f.series.values()) {
        if (f.kind !== "histogram") {
          out.push(`${name}${labelText(s.labels)} ${formatValue(s.value)}`);
          continue;
        }
        const h = s.histogram ?? emptyHistogram([]);
        let cumulative = 0;
        h.bounds.forEach((b, i) => {
          cumulative += h.counts[i] ?? 0;
          out.push(`${name}_bucket${labelText({ ...s.labels, le: formatValue(b) })} ${cumulative}`);
        });
        out.push(`${name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${h.count}`);
        out.push(`${name}_sum${labelText(s.labels)} ${formatValue(h.sum)}`);
        out.push(`${name}_count${labelText(s.labels)} ${h.count}`);
      }
    }
    return `${out.join("\n")}\n`;
  }
}

/** A sample value as Prometheus writes it (Go's ParseFloat reads JavaScript's number text). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}
