// Reading docker-compose.yml the way `docker compose config` does, for tests that run without a
// Docker engine: YAML with merge keys (`<<: *anchor`), then Compose's variable interpolation.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";

export const ROOT = resolve(import.meta.dirname, "../..");
export const COMPOSE_PATH = join(ROOT, "docker-compose.yml");

/** The file as YAML data, merge keys resolved (what Compose validates), variables not yet substituted. */
export function readComposeYaml(path = COMPOSE_PATH): Record<string, unknown> {
  return parseComposeYaml(readFileSync(path, "utf8"));
}

export function parseComposeYaml(text: string): Record<string, unknown> {
  const data: unknown = parse(text, { merge: true });
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new Error("not a YAML mapping");
  return data as Record<string, unknown>;
}

// `$$`, `${NAME}`, `${NAME<op><word>}` with op one of :- - :? ? :+ +, and bare `$NAME`.
const VARIABLE =
  /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

export class InterpolationError extends Error {}

/** Compose's interpolation of one string (https://docs.docker.com/reference/compose-file/interpolation/). */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(
    VARIABLE,
    (whole, dollar?: string, braced?: string, op?: string, word?: string, bare?: string): string => {
      if (dollar !== undefined) return "$";
      const name = braced ?? bare;
      if (name === undefined) return whole;
      const value = env[name];
      const unsetOrEmpty = value === undefined || value === "";
      const sub = () => interpolate(word ?? "", env);
      switch (op) {
        case undefined:
          return value ?? "";
        case ":-":
          return unsetOrEmpty ? sub() : value;
        case "-":
          return value === undefined ? sub() : value;
        case ":?":
        case "?":
          if (op === ":?" ? unsetOrEmpty : value === undefined) {
            throw new InterpolationError(`required variable ${name} is missing a value: ${sub()}`);
          }
          return value ?? "";
        case ":+":
          return unsetOrEmpty ? "" : sub();
        case "+":
          return value === undefined ? "" : sub();
        default:
          return whole;
      }
    },
  );
}

/** Every string value (not key) substituted, as Compose does before it applies the model. */
export function interpolateAll<T>(data: T, env: Record<string, string | undefined>): T {
  if (typeof data === "string") return interpolate(data, env) as T;
  if (Array.isArray(data)) return data.map((v) => interpolateAll(v, env)) as T;
  if (typeof data === "object" && data !== null) {
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, interpolateAll(v, env)])) as T;
  }
  return data;
}

/** Names of the variables a text refers to (`$$` escapes excluded). */
export function variablesIn(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(VARIABLE)) {
    const name = m[2] ?? m[5];
    if (name !== undefined) names.add(name);
  }
  return names;
}

/** `environment` as a map, from either of its two forms (a mapping or `NAME=value` strings). */
export function environmentOf(service: Service): Record<string, string> {
  const env = service.environment;
  if (env === undefined || env === null) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const i = String(entry).indexOf("=");
        return i < 0 ? [String(entry), ""] : [String(entry).slice(0, i), String(entry).slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

/** The parts of a service the tests look at. */
export interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, unknown> | string[] | null;
  env_file?: unknown;
  volumes?: (string | { type?: string; source?: string; target: string })[];
  ports?: (string | number | { published?: string | number; target: number; host_ip?: string })[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  networks?: string[] | Record<string, unknown>;
  profiles?: string[];
  hostname?: string;
  container_name?: string;
  init?: boolean;
  stop_grace_period?: string;
  stop_signal?: string;
  depends_on?: string[] | Record<string, { condition?: string }>;
  deploy?: { replicas?: number | string };
}

/** A volume mount as source (named volume or host path; undefined when anonymous) and target. */
export function mountsOf(service: Service): { source: string | undefined; target: string }[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== "string") return { source: v.source, target: v.target };
    const parts = v.split(":");
    return parts.length === 1
      ? { source: undefined, target: parts[0] ?? "" }
      : { source: parts[0], target: parts[1] ?? "" };
  });
}

/** Host ports a service publishes (after interpolation), as `ip:port` strings (ip `0.0.0.0` when unset). */
export function publishedPorts(service: Service): string[] {
  return (service.ports ?? []).flatMap((p) => {
    if (typeof p === "number") return [];
    if (typeof p === "object") {
      return p.published === undefined ? [] : [`${p.host_ip ?? "0.0.0.0"}:${p.published}`];
    }
    const spec = p.split("/")[0] ?? "";
    const parts = spec.split(":");
    if (parts.length === 1) return []; // container port only: a random host port
    const [ip, host] = parts.length === 3 ? [parts[0], parts[1]] : ["0.0.0.0", parts[0]];
    return [`${ip || "0.0.0.0"}:${host}`];
  });
}

/** Compose duration (`1m30s`, `60s`, `500ms`) in seconds. */
export function durationSeconds(text: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/g;
  let rest = text;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * (units[m[2] ?? "s"] ?? 0);
    rest = rest.replace(m[0], "");
  }
  if (rest.trim() !== "") throw new Error(`not a duration: ${text}`);
  return total;
}
