// The OpenAPI document is good enough to generate a client from: every operation is described,
// has examples, and names its request and reply schemas with $ref; every example is valid.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { openApiDocument } from "../../workers/openapi";
import * as S from "../../workers/schemas";
import { check, type Json, operations, resolveResponse, validators } from "./openapi-schemas";

const doc = openApiDocument();
const schemas = doc.components.schemas as Record<string, Json>;
const validate = validators(doc);

/** The components a media type's schema names: one `$ref`, or a `oneOf` of them. */
function namedSchemas(schema: Json): string[] {
  const refs: Json[] = schema?.$ref !== undefined ? [schema] : (schema?.oneOf ?? []);
  return refs.map((r) => String(r.$ref).replace("#/components/schemas/", ""));
}

/** Every JSON media type of an operation: where, its schema and its examples. */
function jsonMedia(op: Json): { where: string; schema: Json; examples: Record<string, { value: unknown }> }[] {
  const out = [];
  const body = op.requestBody?.content?.["application/json"];
  if (body !== undefined) out.push({ where: "request", ...body });
  for (const [status, response] of Object.entries(op.responses as Record<string, Json>)) {
    for (const [type, media] of Object.entries(
      (resolveResponse(doc, response).content ?? {}) as Record<string, Json>,
    )) {
      if (type.endsWith("json")) out.push({ where: `${status} ${type}`, ...media });
    }
  }
  return out;
}

describe("the OpenAPI document", () => {
  it("describes every operation, with named ($ref) schemas and examples for its bodies and replies", () => {
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThan(35);
    for (const { method, path, op } of ops) {
      const at = `${method} ${path}`;
      expect(op.summary, at).toEqual(expect.any(String));
      expect(op.description?.length, at).toBeGreaterThan(15);
      expect(op.operationId, at).toMatch(/^[a-z]+[A-Za-z0-9]*$/);
      const success = Object.keys(op.responses).filter((s) => s.startsWith("2"));
      expect(success.length, at).toBe(1);
      for (const media of jsonMedia(op)) {
        const names = namedSchemas(media.schema);
        expect(names.length, `${at} ${media.where}`).toBeGreaterThan(0);
        for (const name of names) expect(schemas[name], `${at} ${media.where}: ${name}`).toBeDefined();
        expect(Object.keys(media.examples ?? {}).length, `${at} ${media.where} examples`).toBeGreaterThan(0);
      }
      // The request body (if any) and the success reply are JSON, except the text routes.
      if (op.requestBody !== undefined) expect(op.requestBody.content["application/json"], at).toBeDefined();
      const ok = op.responses[success[0] as string];
      if (!["/metrics", "/dashboard", "/dashboard/events"].includes(path))
        expect(ok.content?.["application/json"], at).toBeDefined();
      // Every error is a named problem response, under its status.
      for (const [status, response] of Object.entries(op.responses as Record<string, Json>)) {
        if (status.startsWith("2")) continue;
        expect(response.$ref, `${at} ${status}`).toMatch(/^#\/components\/responses\//);
        expect(resolveResponse(doc, response), `${at} ${status}`).toBeDefined();
      }
    }
  });

  it("documents each problem with its own schema where it has fields of its own", () => {
    const op = (path: string, method = "post") => (doc.paths as Json)[path][method];
    const problemSchema = (path: string, status: string, method?: string) =>
      namedSchemas(resolveResponse(doc, op(path, method).responses[status]).content["application/problem+json"].schema);
    expect(problemSchema("/v1/locks/{resource}/acquire", "409")).toEqual(["LockConflictProblem", "DeadlockProblem"]);
    expect(problemSchema("/v1/locks/{resource}/release", "409")).toEqual(["NotHolderProblem"]);
    expect(problemSchema("/v1/locks/{resource}/renew", "409")).toEqual(["NotHolderProblem"]);
    expect(problemSchema("/v1/queues/{queue}/messages", "400")).toEqual(["ValidationProblem"]);
    expect(problemSchema("/v1/queues/{queue}/messages", "503")).toEqual(["NoQuorumProblem"]);
    expect(problemSchema("/v1/cluster", "401", "get")).toEqual(["Problem"]);
    expect(
      resolveResponse(doc, op("/v1/locks/{resource}/acquire").responses["503"]).headers["Retry-After"],
    ).toBeDefined();
    // Every /v1 route needs the token: each documents its 401.
    for (const { method, path, op: o } of operations(doc)) {
      if (path.startsWith("/v1/")) expect(o.responses["401"], `${method} ${path}`).toBeDefined();
    }
  });

  it("gives request bodies as a client writes them (defaults optional) and replies as sent", () => {
    expect(schemas.AcquireBody.required).toEqual(["owner"]);
    expect(schemas.AcquireBody.additionalProperties).toBe(false);
    expect(schemas.GrantReply.required).toEqual(["resource", "owner", "mode", "fencingToken", "expiresAt"]);
    expect(schemas.LockListReply.properties.locks.items).toEqual({ $ref: "#/components/schemas/LockViewReply" });
    // Problems admit extension members; the specific ones pin their type.
    expect(schemas.LockConflictProblem.properties.type.const).toBe("/problems/lock-conflict");
    expect(schemas.LockConflictProblem.required).toEqual(expect.arrayContaining(["holders", "waitedMs"]));
    expect(schemas.Problem.additionalProperties).toEqual({});
  });

  it("has only valid examples: every schema's and every operation's, checked with ajv and with zod", () => {
    let checked = 0;
    for (const [id, schema] of Object.entries(schemas)) {
      const v = validate({ $ref: `#/components/schemas/${id}` });
      for (const example of (schema.examples ?? []) as unknown[]) {
        expect(check(v, example), `${id} example ${JSON.stringify(example)}`).toBe("ok");
        // The zod schema the route parses with (or replies with) agrees.
        const zod = (S as Record<string, unknown>)[id];
        if (zod instanceof z.ZodType) expect(zod.safeParse(example).success, `zod ${id}`).toBe(true);
        checked++;
      }
    }
    for (const { method, path, op } of operations(doc)) {
      for (const media of jsonMedia(op)) {
        const v = validate(media.schema);
        for (const [name, example] of Object.entries(media.examples ?? {})) {
          expect(check(v, example.value), `${method} ${path} ${media.where} ${name}`).toBe("ok");
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(150);
  });

  it("its validators refuse what the service would refuse or never send", () => {
    const body = validate({ $ref: "#/components/schemas/AcquireBody" });
    expect(check(body, { owner: "a" })).toBe("ok");
    expect(check(body, { owner: "a", ttl: 600_000 })).not.toBe("ok"); // unknown field
    expect(check(body, { owner: "a b" })).not.toBe("ok"); // not a name
    expect(check(body, { owner: "a", ttlMs: 50 })).not.toBe("ok"); // below the limit
    const grant = validate({ $ref: "#/components/schemas/GrantReply" });
    const granted = { resource: "r", owner: "a", mode: "exclusive", fencingToken: 1, expiresAt: 2 };
    expect(check(grant, granted)).toBe("ok");
    expect(check(grant, { ...granted, extra: 1 })).not.toBe("ok"); // an undocumented field
    expect(check(grant, { ...granted, mode: "shard" })).not.toBe("ok");
    const conflict = validate({ $ref: "#/components/schemas/LockConflictProblem" });
    const problem = { type: "/problems/lock-conflict", title: "Lock conflict", status: 409, detail: "held" };
    expect(check(conflict, { ...problem, holders: [], waitedMs: 0 })).toBe("ok");
    expect(check(conflict, problem)).not.toBe("ok"); // holders and waitedMs are required
    expect(check(conflict, { ...problem, type: "/problems/deadlock", holders: [], waitedMs: 0 })).not.toBe("ok");
  });

  it("keeps operationIds unique and names every schema it uses", () => {
    const ids = operations(doc).map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    // No $ref points at a missing component.
    const text = JSON.stringify(doc);
    for (const m of text.matchAll(/"#\/components\/(schemas|responses|parameters)\/([^"]+)"/g)) {
      expect((doc.components as Json)[m[1] as string][m[2] as string], m[0]).toBeDefined();
    }
  });
});
