// Validators for the OpenAPI document's schemas (ajv, JSON Schema 2020-12), for the OpenAPI tests.
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";
import type { openApiDocument } from "../../workers/openapi";

export type Doc = ReturnType<typeof openApiDocument>;
// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON
export type Json = any;

export const METHODS = ["get", "put", "post", "delete", "patch"] as const;

/** Every operation of the document, with its method and path. */
export function operations(doc: Doc): { method: string; path: string; op: Json }[] {
  const out: { method: string; path: string; op: Json }[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of METHODS) if (item[method] !== undefined) out.push({ method, path, op: item[method] });
  }
  return out;
}

/** A response, following a `$ref` into `components/responses`. */
export function resolveResponse(doc: Doc, response: Json): Json {
  const ref = response?.$ref as string | undefined;
  if (ref === undefined) return response;
  const name = ref.replace("#/components/responses/", "");
  return (doc.components.responses as Record<string, Json>)[name];
}

/**
 * Compiles schemas of `doc` with ajv: the components become `$defs` of one schema (`api`), and
 * `#/components/schemas/X` references point into it. strict mode: an unknown keyword or a
 * malformed schema fails instead of being ignored.
 */
export function validators(doc: Doc) {
  const toDefs = (schema: unknown, prefix: string) =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${prefix}#/$defs/`));
  const ajv = new Ajv2020({ strict: true, allErrors: true, formats: { uri: true } });
  ajv.addSchema({ $id: "api", $defs: toDefs(doc.components.schemas, "") });
  const cache = new Map<string, ValidateFunction>();
  /** A validator for a schema of the document (a `$ref`, a `oneOf` of them, or inline). */
  return (schema: unknown): ValidateFunction => {
    const key = JSON.stringify(schema);
    let v = cache.get(key);
    if (v === undefined) {
      v = ajv.compile(toDefs(schema, "api"));
      cache.set(key, v);
    }
    return v;
  };
}

/** "ok", or what is wrong with `value`. */
export function check(v: ValidateFunction, value: unknown): string {
  return v(value) ? "ok" : JSON.stringify(v.errors);
}
