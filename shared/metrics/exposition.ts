/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), and a check of the
 * naming conventions this service follows. The tests read `/metrics` through it (unit tests and
 * Workers tests); a load test or a cluster test may use it to scrape nodes. Stricter than
 * Prometheus where this service never needs the slack: no blank lines, no timestamps, HELP and
 * TYPE at most once per family and before its samples, a family's samples in one block.
 */

export type FamilyType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The series name as written (`x_bucket`, `x_sum`, `x_count` for a histogram `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  line: number;
}

export interface MetricFamily {
  name: string;
  type?: FamilyType;
  help?: string;
  samples: Sample[];
}

export class ExpositionError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set<FamilyType>(["counter", "gauge", "histogram", "summary", "untyped"]);

/** Parses a whole exposition; throws ExpositionError at the first line that breaks the format. */
export function parseExposition(text: string): Map<string, MetricFamily> {
  if (!text.endsWith("\n")) throw new ExpositionError(0, "the exposition must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  const families = new Map<string, MetricFamily>();
  const seen = new Set<string>();
  /** The family whose samples are being read: another family's sample closes it for good. */
  let current: string | undefined;
  const closed = new Set<string>();
  const open = (name: string, n: number): MetricFamily => {
    if (current !== name) {
      if (closed.has(name)) throw new ExpositionError(n, `${name} appears in two separate blocks`);
      if (current !== undefined) closed.add(current);
      current = name;
    }
    let f = families.get(name);
    if (f === undefined) {
      f = { name, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw === "") throw new ExpositionError(n, "blank line");
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(raw);
      if (m === null) return; // a plain comment
      const [, kw, name = "", rest = ""] = m;
      if (!NAME.test(name) || NAME.exec(name)?.[0] !== name) throw new ExpositionError(n, `bad metric name ${name}`);
      const f = open(name, n);
      if (kw === "HELP") {
        if (f.help !== undefined) throw new ExpositionError(n, `second HELP for ${name}`);
        f.help = unescapeHelp(rest, n);
      } else {
        if (f.type !== undefined) throw new ExpositionError(n, `second TYPE for ${name}`);
        if (f.samples.length > 0) throw new ExpositionError(n, `TYPE for ${name} after its samples`);
        if (!TYPES.has(rest as FamilyType)) throw new ExpositionError(n, `unknown type ${rest}`);
        f.type = rest as FamilyType;
      }
      return;
    }
    const sample = parseSample(raw, n);
    const family = familyOf(sample.name, families);
    const f = open(family, n);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new ExpositionError(n, `duplicate series ${raw}`);
    seen.add(key);
    f.samples.push(sample);
  });
  return families;
}

/** A histogram `x` owns `x_bucket`, `x_sum`, `x_count` (a summary `x_sum`, `x_count`); anything else is its own family. */
function familyOf(name: string, families: Map<string, MetricFamily>): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m !== null) {
    const base = families.get(m[1] as string);
    if (base?.type === "histogram") return base.name;
    if (base?.type === "summary" && m[2] !== "bucket") return base.name;
  }
  return name;
}

function parseSample(line: string, n: number): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new ExpositionError(n, `no metric name: ${line}`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (!rest.startsWith("}")) {
      const label = LABEL.exec(rest)?.[0];
      if (label === undefined) throw new ExpositionError(n, `bad label name in ${line}`);
      if (label in labels) throw new ExpositionError(n, `label ${label} twice in ${line}`);
      rest = rest.slice(label.length);
      if (!rest.startsWith('="')) throw new ExpositionError(n, `label ${label} without ="value" in ${line}`);
      rest = rest.slice(2);
      let value = "";
      for (;;) {
        const c = rest[0];
        if (c === undefined) throw new ExpositionError(n, `unterminated label value in ${line}`);
        rest = rest.slice(1);
        if (c === '"') break;
        if (c === "\\") {
          const e = rest[0];
          rest = rest.slice(1);
          if (e === "\\") value += "\\";
          else if (e === '"') value += '"';
          else if (e === "n") value += "\n";
          else throw new ExpositionError(n, `bad escape \\${e ?? ""} in ${line}`);
        } else if (c === "\n") {
          throw new ExpositionError(n, `raw newline in a label value in ${line}`);
        } else value += c;
      }
      labels[label] = value;
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) throw new ExpositionError(n, `expected , or } in ${line}`);
    }
    rest = rest.slice(1);
  }
  const m = /^ (\S+)$/.exec(rest);
  if (m === null) throw new ExpositionError(n, `expected one space and a value (no timestamp) in ${line}`);
  return { name, labels, value: parseValue(m[1] as string, n), line: n };
}

/** A float as Go's strconv.ParseFloat reads it, plus Prometheus' NaN and ±Inf. */
function parseValue(text: string, n: number): number {
  if (text === "NaN") return Number.NaN;
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new ExpositionError(n, `bad value ${text}`);
  return Number(text);
}

function unescapeHelp(text: string, n: number): string {
  return text.replace(/\\(.?)/g, (_, e: string) => {
    if (e === "\\") return "\\";
    if (e === "n") return "\n";
    throw new ExpositionError(n, `bad escape \\${e} in HELP`);
  });
}

/**
 * What breaks this service's conventions in a parsed exposition (empty: nothing): every family
 * has HELP and TYPE; counters, and only counters, end in `_total` and are ≥ 0; no `_ms`;
 * histograms are in `_seconds` (or `_bytes`), and each of their series has increasing `le`
 * bounds ending in `+Inf`, cumulative counts, `+Inf` equal to `_count`, and a `_sum`; every
 * series of a family has the same label names.
 */
export function conventionProblems(families: Map<string, MetricFamily>): string[] {
  const problems: string[] = [];
  for (const f of families.values()) {
    const say = (what: string) => problems.push(`${f.name}: ${what}`);
    if (f.help === undefined || f.help === "") say("no HELP");
    if (f.type === undefined) say("no TYPE");
    if (f.type === "counter" && !f.name.endsWith("_total")) say("a counter whose name does not end in _total");
    if (f.type !== "counter" && f.name.endsWith("_total")) say(`a ${f.type ?? "untyped"} whose name ends in _total`);
    if (/_(ms|milliseconds|millis)(_|$)/.test(f.name)) say("measured in ms (durations are in seconds)");
    if (f.type === "histogram" && !/_(seconds|bytes)$/.test(f.name)) say("a histogram not in _seconds or _bytes");
    const shapes = new Set(
      f.samples.map((s) =>
        Object.keys(s.labels)
          .filter((l) => l !== "le")
          .sort()
          .join(","),
      ),
    );
    if (shapes.size > 1) say(`series with different label names: ${[...shapes].join(" | ")}`);
    if (f.type === "counter") {
      for (const s of f.samples) if (!(s.value >= 0)) say(`counter value ${s.value} at line ${s.line}`);
    }
    if (f.type === "histogram") problems.push(...histogramProblems(f));
  }
  return problems;
}

function histogramProblems(f: MetricFamily): string[] {
  const problems: string[] = [];
  const bySeries = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const series = bySeries.get(key) ?? { buckets: [] };
    bySeries.set(key, series);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) problems.push(`${f.name}: bucket without le at line ${s.line}`);
      else series.buckets.push([parseLe(le), s.value]);
    } else if (s.name === `${f.name}_sum`) series.sum = s.value;
    else if (s.name === `${f.name}_count`) series.count = s.value;
    else problems.push(`${f.name}: stray sample ${s.name} at line ${s.line}`);
  }
  for (const [key, s] of bySeries) {
    const say = (what: string) => problems.push(`${f.name}${key}: ${what}`);
    if (s.count === undefined) say("no _count");
    if (s.sum === undefined) say("no _sum");
    if (s.buckets.length === 0) {
      say("no buckets");
      continue;
    }
    for (let i = 1; i < s.buckets.length; i++) {
      const [le, c] = s.buckets[i] as [number, number];
      const [prevLe, prevC] = s.buckets[i - 1] as [number, number];
      if (!(le > prevLe)) say(`le ${le} does not increase`);
      if (c < prevC) say(`bucket le=${le} (${c}) below the one before (${prevC}): not cumulative`);
    }
    const [lastLe, lastC] = s.buckets[s.buckets.length - 1] as [number, number];
    if (lastLe !== Number.POSITIVE_INFINITY) say("last bucket is not le=+Inf");
    else if (s.count !== undefined && lastC !== s.count) say(`+Inf bucket ${lastC} differs from _count ${s.count}`);
  }
  return problems;
}

function parseLe(le: string): number {
  if (le === "+Inf") return Number.POSITIVE_INFINITY;
  return Number(le);
}

/** The value of the one series of `name` whose labels include `labels`; undefined when none matches, an error when several do. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const base = familyOf(name, families);
  const matches = (families.get(base)?.samples ?? []).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matches.length > 1) throw new Error(`${matches.length} series of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}

/** The sum over every series of `name` whose labels include `labels` (0 when none). */
export function sampleSum(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const base = familyOf(name, families);
  return (families.get(base)?.samples ?? [])
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
