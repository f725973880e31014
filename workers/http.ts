import type { Context } from "hono";
import type { z } from "zod";
import { problem } from "./problem.js";
import { Name } from "./schemas.js";

/** Request bodies above this are refused before parsing (413). */
export const MAX_BODY_BYTES = 1 << 20;

export type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response };

/** Reads and validates a JSON body: bad JSON or schema → 400 validation, too big → 413. */
export async function readBody<S extends z.ZodType>(c: Context, schema: S): Promise<Parsed<z.output<S>>> {
  const text = await c.req.text();
  if (new TextEncoder().encode(text).length > MAX_BODY_BYTES) {
    return { ok: false, response: problem("payload-too-large", `body over ${MAX_BODY_BYTES} bytes`) };
  }
  let json: unknown;
  try {
    json = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    return { ok: false, response: problem("validation", "body is not valid JSON") };
  }
  return validate(schema, json);
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, where = "body"): Parsed<z.output<S>> {
  const res = schema.safeParse(value);
  if (res.success) return { ok: true, value: res.data };
  const errors = res.error.issues.map((i) => ({
    path: i.path.join("."),
    message: i.code === "unrecognized_keys" ? unknownFields(i.keys, fieldsAt(schema, i.path)) : i.message,
  }));
  const detail = errors.map((e) => `${where}${e.path ? `.${e.path}` : ""}: ${e.message}`).join("; ");
  return { ok: false, response: problem("validation", detail, { extra: { errors } }) };
}

/** A path name (already percent-decoded by the router), validated like every other name. */
export function pathName(c: Context, param: string): Parsed<string> {
  return validate(Name, c.req.param(param), param);
}

export function noQuorum(detail = "the owning Raft group has no leader that can commit"): Response {
  return problem("no-quorum", detail, { headers: { "retry-after": "1" } });
}

/** "unknown field `ttl` (did you mean `ttlMs`?)", one clause per field. */
function unknownFields(keys: readonly string[], known: readonly string[]): string {
  return keys
    .map((key) => {
      const near = closest(key, known);
      return `unknown field \`${key}\`${near === undefined ? "" : ` (did you mean \`${near}\`?)`}`;
    })
    .join("; ");
}

/** The field names of the object schema at `path` inside `schema` (through arrays, optionals, defaults). */
function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: unknown = schema;
  const unwrap = (n: unknown): unknown => {
    // zod 4 keeps wrappers' inner schema in `_zod.def.innerType`, and arrays' element in `element`.
    for (let i = 0; i < 8; i++) {
      const def = (n as { _zod?: { def?: { innerType?: unknown } } })._zod?.def;
      if (def?.innerType === undefined) return n;
      n = def.innerType;
    }
    return n;
  };
  for (const step of path) {
    node = unwrap(node);
    if (typeof step === "number") node = (node as { element?: unknown }).element;
    else node = (node as { shape?: Record<string, unknown> }).shape?.[String(step)];
  }
  const shape = (unwrap(node) as { shape?: Record<string, unknown> }).shape;
  return shape === undefined ? [] : Object.keys(shape);
}

/**
 * The known name closest to `key` when it is plausibly a typo: within 2 edits (1 for names of
 * up to 4 letters), or a prefix or extension of it (`ttl` → `ttlMs`), ignoring case.
 */
export function closest(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const n = name.toLowerCase();
    const prefix = k.length >= 2 && (n.startsWith(k) || k.startsWith(n));
    const d = prefix ? 1 : editDistance(k, n);
    const limit = Math.min(k.length, n.length) <= 4 ? 1 : 2;
    if (d <= limit && (best === undefined || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}
