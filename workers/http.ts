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
  const errors = res.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
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
