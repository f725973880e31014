/**
 * The replicated memory of `Idempotency-Key`s (shared/API.md, "Retries"): one table per Raft
 * group, holding the keys the Worker placed on that group (`groupOf(env, "idem/" + key)`).
 */

/** How long a key is remembered after it was first seen (group time, ms). */
export const IDEMPOTENCY_WINDOW_MS = 10 * 60_000;

/**
 * The most bytes one group's table holds: keys, fingerprints and stored answers (UTF-8), plus a
 * fixed overhead per record. A new key that would pass it is refused (`full`) rather than an old
 * key being forgotten early.
 */
export const IDEMPOTENCY_MAX_BYTES = 32 * 1024 * 1024;

/** Charged per record on top of its strings: the Map entry and the record object. */
export const IDEMPOTENCY_RECORD_OVERHEAD = 128;

/** A stored first answer. `body` is the exact response text. */
export interface IdemAnswer {
  status: number;
  body: string;
  contentType?: string;
}

/**
 * An answer as the Worker sends it to be stored: a JSON body travels as the parsed value (`json`),
 * so the command's own JSON does not escape it a second time (a Raft entry is one SQLite row, at
 * most 2 MB); any other body as `text`. The table stores the text either way.
 */
export interface IdemAnswerInput {
  status: number;
  contentType?: string;
  json?: unknown;
  text?: string;
}

export type IdemCommand =
  | { type: "idem-begin"; key: string; fp: string; now: number }
  | ({ type: "idem-finish"; key: string; fp: string; now: number } & IdemAnswerInput);

/**
 * `new`: recorded as running now, run the request. `running`: an earlier attempt began and has not
 * finished (it may have crashed): run it again, with the same request id (both carry the record's
 * `at`). `done`: answer with the stored answer. `mismatch`: the key was used for another request.
 * `full`: the table is at its memory bound; nothing was recorded.
 */
export type IdemBeginResult =
  | { kind: "new"; at: number }
  | { kind: "running"; at: number }
  | ({ kind: "done" } & IdemAnswer)
  | { kind: "mismatch" }
  | { kind: "full" };

/** The stored answer (the first finish wins), or `mismatch` if the key now names another request. */
export type IdemFinishResult = ({ kind: "done" } & IdemAnswer) | { kind: "mismatch" };

export type IdemResult = IdemBeginResult | IdemFinishResult;

/** What one applied idempotency command did (tagged `kind: "idem"` in the group's result). */
export interface IdemApplied {
  result: IdemResult;
}

export interface IdemRecord {
  key: string;
  /** Fingerprint of method, path (with query) and body. */
  fp: string;
  /** Group time when the key was first seen; it is forgotten at `at + IDEMPOTENCY_WINDOW_MS`. */
  at: number;
  state: "running" | "done";
  status?: number;
  body?: string;
  contentType?: string;
}
