// `Idempotency-Key` (shared/API.md, "Retries"): a repeated key gets the first answer, applied once.
import type { Context, MiddlewareHandler } from "hono";
import { hash32 } from "../shared/hashing/hash.js";
import type { IdempotencyRequest } from "../shared/idempotency/service.js";
import { utf8Length } from "../shared/idempotency/table.js";
import type { IdemAnswer, IdemAnswerInput, IdemResult } from "../shared/idempotency/types.js";
import type { Env } from "./env.js";
import { callGroup, groupOf } from "./groups.js";
import { noQuorum } from "./http.js";
import { problem } from "./problem.js";

declare module "hono" {
  interface ContextVariableMap {
    /** The id all internal attempts of this HTTP request carry (set for keyed requests). */
    requestId: string;
  }
}

/** How long the Worker looks for a leader of the key's group before answering 503. */
const LEADER_DEADLINE_MS = 4000;
const MAX_KEY_LENGTH = 200;

/**
 * The largest answer stored, in UTF-8 bytes as it travels in the `finish` command: one Raft entry
 * is one SQLite row (at most 2 MB), and the command adds a few hundred bytes. A larger answer is
 * returned but not stored: the key stays `running` and a retry runs the request again (with the
 * same request ids, so nothing is applied twice).
 */
export const MAX_STORED_ANSWER_BYTES = 1792 * 1024;

/**
 * The `maxBytes` a receive with an Idempotency-Key passes to the shards, so that its answer can
 * always be stored. The shards count UTF-16 units of the serialized bodies, and one unit is at
 * most 3 UTF-8 bytes: 512 Ki units are at most 1.5 MiB of bodies, plus one message past the limit
 * (at least one is taken from a shard, ≤ 128 KiB) and 100 messages' ids, keys and receipts: under
 * MAX_STORED_ANSWER_BYTES.
 */
export const KEYED_RECEIVE_MAX_BYTES = 1 << 19;

/**
 * The id of this HTTP request, carried by every internal attempt (shared/replica/dedup.ts applies
 * each command at most once per id): derived from the Idempotency-Key when there is one, so a
 * re-run after a crashed first attempt carries the same ids; else a fresh UUID.
 */
export function requestIdOf(c: Context): string {
  return (c.get("requestId") as string | undefined) ?? crypto.randomUUID();
}

/**
 * For a request with an Idempotency-Key: a number derived from its request id, for choices that a
 * re-run must repeat (a shard picked at random otherwise). Undefined without a key.
 */
export function keyedSeed(c: Context): number | undefined {
  const id = c.get("requestId") as string | undefined;
  return id?.startsWith("k:") ? hash32(id) : undefined;
}

/**
 * For POST, PUT and DELETE with an `Idempotency-Key` header (1–200 chars): the key lives on the
 * group `groupOf(env, "idem/" + key)`, next to a fingerprint of method, path, query and body.
 * `begin` there says what to do: replay a stored answer, refuse a key reused for another request
 * (422), refuse when the group's table is full (503), or run the route with a request id derived
 * from the key. The route's final answer (status < 500) is then stored by `finish`, and whatever
 * `finish` returns is answered (the first finish wins, so concurrent attempts answer the same).
 * A 5xx is not stored: the key stays `running` and a retry runs the request again.
 */
export const idempotency: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const method = c.req.method;
  if (method !== "POST" && method !== "PUT" && method !== "DELETE") return next();
  const key = c.req.header("idempotency-key");
  if (key === undefined) return next();
  if (key.length < 1 || key.length > MAX_KEY_LENGTH) {
    const message = `must be 1 to ${MAX_KEY_LENGTH} characters, not ${key.length}`;
    return problem("validation", `header Idempotency-Key: ${message}`, {
      extra: { errors: [{ path: "Idempotency-Key", message }] },
    });
  }
  const url = new URL(c.req.url);
  // Hono caches the text: the route reads the same body again.
  const fp = await fingerprint(method, `${url.pathname}${url.search}`, await c.req.text());
  const group = groupOf(c.env, `idem/${key}`);
  const ask = (req: IdempotencyRequest) =>
    callGroup(c.env, group, (peer, name) => peer.idempotency(name, req), LEADER_DEADLINE_MS);

  const begun = await ask({ op: "begin", key, fp });
  if (!begun.ok) return noQuorum("the group holding this Idempotency-Key has no leader that can commit");
  const b = begun.value;
  switch (b.kind) {
    case "done":
      return answer(b, true);
    case "mismatch":
      return reused();
    case "full":
      return problem("no-quorum", "too many Idempotency-Keys in the last 10 minutes on this key's group", {
        headers: { "retry-after": "10" },
      });
    case "new":
    case "running":
      break;
    default:
      throw new Error(`unexpected answer to idem-begin: ${JSON.stringify(b satisfies never)}`);
  }

  // The record's time keeps a key reused after its window from meeting the old request's ids.
  c.set("requestId", await keyedRequestId(key, b.at));
  await next();
  const res = c.res;
  if (res.status >= 500) return;

  const text = await res.text();
  const own = () => replace(c, new Response(text === "" ? null : text, { status: res.status, headers: res.headers }));
  const input = answerInput(res.status, res.headers.get("content-type") ?? undefined, text);
  if (input === undefined) return own(); // too large to store: stays running

  const finished = await ask({ op: "finish", key, fp, answer: input });
  if (!finished.ok) {
    replace(c, noQuorum("the answer could not be recorded; retry with the same Idempotency-Key"));
    return;
  }
  const f: IdemResult = finished.value;
  if (f.kind === "mismatch") return own(); // forgotten meanwhile and reused: this answer stands alone
  if (f.kind !== "done") throw new Error(`unexpected answer to idem-finish: ${f.kind}`);
  // Another attempt of the same request finished first: answer as it did.
  if (f.status === res.status && f.body === text) return own();
  replace(c, answer(f, true));
};

function answerInput(status: number, contentType: string | undefined, text: string): IdemAnswerInput | undefined {
  const base = { status, ...(contentType !== undefined ? { contentType } : {}) };
  // A JSON body travels as its value (no second escaping) when that gives back the same text.
  if (contentType?.includes("json")) {
    try {
      const json: unknown = JSON.parse(text);
      if (JSON.stringify(json) === text)
        return utf8Length(text) <= MAX_STORED_ANSWER_BYTES ? { ...base, json } : undefined;
    } catch {
      // not JSON after all: stored as text
    }
  }
  return utf8Length(JSON.stringify(text)) <= MAX_STORED_ANSWER_BYTES ? { ...base, text } : undefined;
}

function answer(a: IdemAnswer, replayed: boolean): Response {
  const headers = new Headers();
  if (a.contentType !== undefined) headers.set("content-type", a.contentType);
  if (replayed) headers.set("idempotent-replayed", "true");
  return new Response(a.body === "" ? null : a.body, { status: a.status, headers });
}

function reused(): Response {
  return problem(
    "idempotency-key-reused",
    "this Idempotency-Key was used in the last 10 minutes for a request with another method, path or body",
  );
}

/** Replaces the route's response entirely (assigning over a finalized one would merge headers). */
function replace(c: Context, res: Response): void {
  c.res = undefined;
  c.res = res;
}

/** What a key is bound to: SHA-256 (hex) of method, path with query, and body. */
export function fingerprint(method: string, pathAndQuery: string, body: string): Promise<string> {
  return sha256hex(`${method} ${pathAndQuery}\n${body}`);
}

/**
 * The request id of every attempt of a keyed request: "k:" (kept longer by shared/replica/dedup.ts),
 * the key's hash, and the time its record began, so a key reused after its window gets new ids.
 */
export async function keyedRequestId(key: string, at: number): Promise<string> {
  return `k:${await sha256hex(key)}:${at}`;
}

async function sha256hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  let hex = "";
  for (const b of new Uint8Array(digest)) hex += b.toString(16).padStart(2, "0");
  return hex;
}
