/**
 * The `Idempotency-Key`s one group saw in the last 10 minutes, with their first answers. Pure and
 * deterministic: time comes only from the commands (`time = max(time, now)`), so every replica
 * forgets the same keys at the same entry.
 *
 * One Map in insertion order (the pattern of shared/queue/dedup.ts): a key is inserted at the
 * current group time, which never decreases, so insertion order is time order and forgetting is
 * always from the front. Memory is bounded by `maxBytes` (keys, fingerprints, answers, overhead):
 * a new key that would pass it is refused (`full`) and nothing is recorded; a key is never
 * forgotten before its window ends. The answer of a key already begun is always stored (the first
 * finish must win), so the bound can be passed by the answers of requests still running when it
 * was reached; the Worker keeps each answer small enough for one Raft entry.
 */
import {
  IDEMPOTENCY_MAX_BYTES,
  IDEMPOTENCY_RECORD_OVERHEAD,
  IDEMPOTENCY_WINDOW_MS,
  type IdemAnswer,
  type IdemAnswerInput,
  type IdemApplied,
  type IdemBeginResult,
  type IdemCommand,
  type IdemFinishResult,
  type IdemRecord,
} from "./types.js";

export interface IdempotencyTableOptions {
  maxBytes?: number;
  windowMs?: number;
}

interface Image {
  version: 1;
  time: number;
  records: IdemRecord[];
}

export class IdempotencyTable {
  private records = new Map<string, IdemRecord & { bytes: number }>();
  private time = 0;
  private used = 0;
  private readonly maxBytes: number;
  private readonly windowMs: number;

  constructor(options: IdempotencyTableOptions = {}) {
    this.maxBytes = options.maxBytes ?? IDEMPOTENCY_MAX_BYTES;
    this.windowMs = options.windowMs ?? IDEMPOTENCY_WINDOW_MS;
  }

  applyCommand(cmd: IdemCommand): IdemApplied {
    this.advance(cmd.now);
    switch (cmd.type) {
      case "idem-begin":
        return { result: this.begin(cmd.key, cmd.fp) };
      case "idem-finish":
        return { result: this.finish(cmd.key, cmd.fp, cmd) };
      default:
        throw new Error(`unknown idempotency command ${JSON.stringify(cmd satisfies never)}`);
    }
  }

  /** Moves group time forward to `now` (never back) and forgets the keys whose window has ended. */
  advance(now: number): void {
    this.time = Math.max(this.time, now);
    for (const [key, r] of this.records) {
      if (r.at + this.windowMs > this.time) break;
      this.records.delete(key);
      this.used -= r.bytes;
    }
  }

  private begin(key: string, fp: string): IdemBeginResult {
    const r = this.records.get(key);
    if (r !== undefined) {
      if (r.fp !== fp) return { kind: "mismatch" };
      if (r.state === "running") return { kind: "running", at: r.at };
      return { kind: "done", ...answerOf(r) };
    }
    const record = { key, fp, at: this.time, state: "running" as const, bytes: 0 };
    record.bytes = costOf(record);
    if (this.used + record.bytes > this.maxBytes) return { kind: "full" };
    this.insert(record);
    return { kind: "new", at: record.at };
  }

  private finish(key: string, fp: string, input: IdemAnswerInput): IdemFinishResult {
    const r = this.records.get(key);
    if (r !== undefined && r.fp !== fp) return { kind: "mismatch" };
    if (r?.state === "done") return { kind: "done", ...answerOf(r) };
    const body = input.json !== undefined ? JSON.stringify(input.json) : (input.text ?? "");
    const done: IdemRecord & { bytes: number } = {
      key,
      fp,
      // Not found: begun so long ago that it was forgotten (or never begun); remembered from now.
      at: r?.at ?? this.time,
      state: "done",
      status: input.status,
      body,
      ...(input.contentType !== undefined ? { contentType: input.contentType } : {}),
      bytes: 0,
    };
    done.bytes = costOf(done);
    if (r !== undefined) {
      this.used += done.bytes - r.bytes;
      this.records.set(key, done); // same key: keeps its place in time order
    } else {
      this.insert(done);
    }
    return { kind: "done", ...answerOf(done) };
  }

  private insert(record: IdemRecord & { bytes: number }): void {
    this.records.set(record.key, record);
    this.used += record.bytes;
  }

  /** The record of `key`, if remembered (tests and inspection). */
  get(key: string): IdemRecord | undefined {
    const r = this.records.get(key);
    if (r === undefined) return undefined;
    const { bytes: _bytes, ...record } = r;
    return record;
  }

  get size(): number {
    return this.records.size;
  }

  /** Bytes charged against `maxBytes`. */
  get bytes(): number {
    return this.used;
  }

  /** The last applied time. */
  get now(): number {
    return this.time;
  }

  snapshot(): string {
    const image: Image = {
      version: 1,
      time: this.time,
      records: [...this.records.values()].map(({ bytes: _bytes, ...record }) => record),
    };
    return JSON.stringify(image);
  }

  restore(data: string): void {
    this.records = new Map();
    this.used = 0;
    this.time = 0;
    if (data === "") return;
    const image = JSON.parse(data) as Image;
    if (image.version !== 1) throw new Error(`unknown idempotency table snapshot version ${image.version}`);
    this.time = image.time;
    for (const record of image.records) this.insert({ ...record, bytes: costOf(record) });
  }
}

function answerOf(r: IdemRecord): IdemAnswer {
  return {
    status: r.status ?? 0,
    body: r.body ?? "",
    ...(r.contentType !== undefined ? { contentType: r.contentType } : {}),
  };
}

function costOf(r: IdemRecord): number {
  return (
    IDEMPOTENCY_RECORD_OVERHEAD +
    utf8Length(r.key) +
    utf8Length(r.fp) +
    utf8Length(r.body ?? "") +
    utf8Length(r.contentType ?? "")
  );
}

/** UTF-8 length of a string without encoding it (a lone surrogate counts as U+FFFD: 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u < 0x80) n += 1;
    else if (u < 0x800) n += 2;
    else if (u >= 0xd800 && u < 0xdc00 && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
