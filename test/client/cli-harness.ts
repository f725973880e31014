// Runs syncctl in-process (cli/program.ts `run`) against a fake service: a table of routes answered by
// a fake fetch, which records every request. What a command printed, its exit status and the requests
// it sent are what the cli-*.test.ts files check.
import type { Io } from "../../cli/context.js";
import { run } from "../../cli/program.js";

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
}

export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** `"POST /v1/locks/a/acquire"` → the answer (or a function of the request); anything else is a 404 problem. */
export type Routes = Record<string, Reply | ((req: Request) => Reply)>;

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  requests: Request[];
}

/** Epoch ms every run sees as now. */
export const NOW = Date.UTC(2026, 11, 4, 9, 0, 0);

export function problem(status: number, name: string, detail: string, extra: Record<string, unknown> = {}): Reply {
  return { status, body: { type: `/problems/${name}`, title: name, status, detail, ...extra } };
}

export function fakeFetch(routes: Routes, requests: Request[]): typeof fetch {
  return async (input, init) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    const text = typeof init?.body === "string" ? init.body : undefined;
    const req: Request = {
      method,
      path: url.pathname,
      query: url.searchParams,
      headers: new Headers(init?.headers),
      body: text === undefined ? undefined : JSON.parse(text),
    };
    requests.push(req);
    const route = routes[`${method} ${url.pathname}`];
    const reply = typeof route === "function" ? route(req) : (route ?? problem(404, "not-found", "no such route"));
    const status = reply.status ?? 200;
    const type = status < 300 ? "application/json" : "application/problem+json";
    return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), {
      status,
      headers: { "content-type": type, ...reply.headers },
    });
  };
}

export async function syncctl(
  argv: string[],
  options: { routes?: Routes; stdin?: string[]; env?: Record<string, string>; fetch?: typeof fetch } = {},
): Promise<Ran> {
  const requests: Request[] = [];
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env: options.env ?? {},
    stdinLines: async function* () {
      yield* options.stdin ?? [];
    },
    now: () => NOW,
    fetch: options.fetch ?? fakeFetch(options.routes ?? {}, requests),
    // Retries stay on (the tests see them), with backoffs short enough not to slow the suite.
    retry: { attempts: 3, baseMs: 1, maxMs: 2 },
  };
  const code = await run(argv, io);
  return { code, stdout, stderr, requests };
}
