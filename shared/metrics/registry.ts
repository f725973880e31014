/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Pure: the Worker decides what to record and when to render.
 */
export type Labels = Record<string, string | number>;

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  kind: Kind;
  help: string;
  series: Map<string, { labels: Labels; value: number; buckets?: number[]; sum?: number }>;
  bucketBounds?: number[];
}

export const DEFAULT_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class Registry {
  private readonly families = new Map<string, Family>();

  private family(name: string, kind: Kind, help: string, bucketBounds?: number[]): Family {
    let f = this.families.get(name);
    if (f === undefined) {
      f = { kind, help, series: new Map(), ...(bucketBounds ? { bucketBounds } : {}) };
      this.families.set(name, f);
    } else if (f.kind !== kind) {
      throw new Error(`metric ${name} is a ${f.kind}, not a ${kind}`);
    }
    return f;
  }

  private series(f: Family, labels: Labels) {
    const key = labelText(labels);
    let s = f.series.get(key);
    if (s === undefined) {
      s = { labels, value: 0 };
      if (f.bucketBounds) {
        s.buckets = f.bucketBounds.map(() => 0);
        s.sum = 0;
      }
      f.series.set(key, s);
    }
    return s;
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    this.series(this.family(name, "counter", help), labels).value += by;
  }

  set(name: string, help: string, labels: Labels, value: number): void {
    this.series(this.family(name, "gauge", help), labels).value = value;
  }

  observe(name: string, help: string, labels: Labels, value: number, bounds = DEFAULT_BUCKETS_MS): void {
    const s = this.series(this.family(name, "histogram", help, bounds), labels);
    s.value += 1;
    s.sum = (s.sum ?? 0) + value;
    bounds.forEach((b, i) => {
      if (value <= b && s.buckets) s.buckets[i] = (s.buckets[i] ?? 0) + 1;
    });
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.kind}`);
      for (const s of f.series.values()) {
        if (f.kind !== "histogram") {
          out.push(`${name}${labelText(s.labels)} ${s.value}`);
          continue;
        }
        (f.bucketBounds ?? []).forEach((b, i) => {
          out.push(`${name}_bucket${labelText({ ...s.labels, le: b })} ${s.buckets?.[i] ?? 0}`);
        });
        out.push(`${name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.value}`);
        out.push(`${name}_sum${labelText(s.labels)} ${s.sum ?? 0}`, `${name}_count${labelText(s.labels)} ${s.value}`);
      }
    }
    return `${out.join("\n")}\n`;
  }
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}
