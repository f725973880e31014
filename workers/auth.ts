import type { MiddlewareHandler } from "hono";
import type { Env } from "./env.js";
import { problem } from "./problem.js";

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  return m?.[1]?.trim();
}

/** Admin routes: fault injection and writes to the peer set. */
export function isAdminRoute(method: string, path: string): boolean {
  if (path.startsWith("/v1/admin/") || path === "/v1/admin") return true;
  return method !== "GET" && path.startsWith("/v1/cluster/peers");
}

/**
 * `/v1/*` needs `Bearer API_TOKEN` when API_TOKEN is set (401). Admin routes need ADMIN_TOKEN
 * instead: the plain token gets 403. Without ADMIN_TOKEN admin routes are closed (403, saying
 * why), unless `npm start` or `npm run node` runs on loopback in its insecure local mode
 * (INSECURE_LOCAL=true, announced on the console).
 */
export const auth: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const { API_TOKEN, ADMIN_TOKEN } = c.env;
  const token = bearer(c.req.header("authorization"));
  if (isAdminRoute(c.req.method, c.req.path)) {
    if (ADMIN_TOKEN && token === ADMIN_TOKEN) return next();
    if (!ADMIN_TOKEN) {
      if (c.env.INSECURE_LOCAL === "true" && (!API_TOKEN || token === API_TOKEN)) return next();
      return problem(
        "forbidden",
        "admin routes are closed because ADMIN_TOKEN is not set: set ADMIN_TOKEN (or run locally in the insecure local mode of npm start)",
      );
    }
    if (token !== undefined && (token === API_TOKEN || !API_TOKEN)) {
      return problem("forbidden", "this route needs the admin token");
    }
    return problem("unauthorized", "missing or wrong bearer token", { headers: { "www-authenticate": "Bearer" } });
  }
  if (API_TOKEN && token !== API_TOKEN && !(ADMIN_TOKEN && token === ADMIN_TOKEN)) {
    return problem("unauthorized", "missing or wrong bearer token", { headers: { "www-authenticate": "Bearer" } });
  }
  return next();
};
