// What syncctl prints: a human rendering by default, one line of JSON per result under --json.
// Results go to stdout and nothing else does; errors go to stderr (a problem JSON under --json), so
// `syncctl --json ... | jq` never sees an error message as data.
import { CommanderError } from "commander";
import { table } from "../bench/stats.js";
import { NetworkError, SyncError } from "../client/index.js";
import type { Io } from "./context.js";
import { UsageError } from "./values.js";

export { table };

/** A problem details object (RFC 9457), as the service sends and as syncctl writes for its own errors. */
export type Problem = { type: string; title: string; status?: number; detail?: string } & Record<string, unknown>;

export class Output {
  constructor(
    private readonly io: Io,
    readonly json: boolean,
  ) {}

  /** `value` as JSON under --json, else what `human` renders (computed only then). */
  result(value: unknown, human: () => string): void {
    this.io.stdout(this.json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
  }

  error(err: unknown): void {
    this.io.stderr(this.json ? `${JSON.stringify(problemOf(err))}\n` : `${errorText(err, this.io.now())}\n`);
  }
}

/** The problem an error stands for: the service's own body when it sent one. */
export function problemOf(err: unknown): Problem {
  if (err instanceof SyncError) {
    // NetworkError is a SyncError with status 0 (no answer): no status to show.
    const status = err.status === 0 ? undefined : err.status;
    const detail = err instanceof NetworkError ? causes(err.cause).join(": ") : err.detail;
    return { ...err.problem, type: err.problem.type ?? err.type, title: err.title, status, detail };
  }
  if (err instanceof UsageError || err instanceof CommanderError) {
    return { type: "usage", title: "Usage error", detail: commanderText(err.message) };
  }
  return { type: "internal", title: "Unexpected error", detail: err instanceof Error ? err.message : String(err) };
}

/** "fetch failed: connect ECONNREFUSED 127.0.0.1:8787": the messages of an error and of its causes. */
function causes(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err; e !== undefined && e !== null && out.length < 5; e = e instanceof Error ? e.cause : undefined) {
    out.push(e instanceof Error ? e.message : String(e));
  }
  return out;
}

/** Fields of a problem worth showing beyond its title and detail (holders, cycle, waitedMs, ...). */
const PLAIN_FIELDS = new Set(["type", "title", "status", "detail", "instance"]);

/** `syncctl: Lock conflict (409 lock-conflict): build is held by others`, then the problem's extra fields. */
export function errorText(err: unknown, now = Date.now()): string {
  const problem = problemOf(err);
  if (problem.type === "usage") return `syncctl: ${problem.detail}\n(add --help for usage)`;
  const name = problemName(problem);
  const tag = problem.status === undefined ? name : `${problem.status} ${name}`;
  const head = `syncctl: ${problem.title} (${tag})${problem.detail ? `: ${problem.detail}` : ""}`;
  const extras = Object.entries(problem)
    .filter(([k, v]) => !PLAIN_FIELDS.has(k) && v !== undefined)
    .map(
      ([k, v]) =>
        `  ${k}: ${k === "holders" && Array.isArray(v) ? holdersText(v, now) : cell(v, Number.POSITIVE_INFINITY)}`,
    );
  return [head, ...extras].join("\n");
}

/** The last segment of a problem's type URI: `lock-conflict` for `/problems/lock-conflict`. */
export function problemName(problem: Problem): string {
  return problem.type.split("/").pop() || problem.type;
}

/** A lock-conflict's holders: who, in which mode, until when (their lease, not the wait). */
function holdersText(holders: unknown[], now: number): string {
  return holders
    .map((h) => {
      const { owner, mode, expiresAt } = (h ?? {}) as { owner?: unknown; mode?: unknown; expiresAt?: unknown };
      return typeof expiresAt === "number" ? `${owner} (${mode}) until ${when(expiresAt, now)}` : cell(h);
    })
    .join(", ");
}

/** Commander prefixes its messages with "error: "; ours already say what they are. */
function commanderText(message: string): string {
  return message.replace(/^error: /, "");
}

/** Aligned `label  value` lines, for one object. */
export function fields(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`.trimEnd()).join("\n");
}

/** A JSON value for a table cell or a field: strings as they are, anything else as compact JSON, cut at `max`. */
export function cell(value: unknown, max = 60): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? "");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `2026-12-04T08:47:00.000Z (in 29.8s)`: the absolute time, and how far it is from `now`. */
export function when(epochMs: number, now: number): string {
  const delta = epochMs - now;
  const seconds = `${(Math.abs(delta) / 1000).toFixed(1)}s`;
  return `${new Date(epochMs).toISOString()} (${delta >= 0 ? `in ${seconds}` : `${seconds} ago`})`;
}
