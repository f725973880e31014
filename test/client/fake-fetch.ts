// A scripted stand-in for fetch: each request is recorded and answered by a route function.

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
  signal: AbortSignal | undefined;
  at: number;
}

/** Answers a request: a Response, or a thrown error (a network failure). */
export type Route = (req: Recorded) => Response | Promise<Response>;

export function fakeFetch(route: Route) {
  const calls: Recorded[] = [];
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input));
    const text = typeof init.body === "string" ? init.body : undefined;
    const req: Recorded = {
      method: init.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers: new Headers(init.headers),
      body: text === undefined ? undefined : JSON.parse(text),
      signal: init.signal ?? undefined,
      at: Date.now(),
    };
    calls.push(req);
    if (req.signal?.aborted) throw req.signal.reason;
    return route(req);
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

export const problem = (name: string, status: number, extra: Record<string, unknown> = {}, headers = {}) =>
  json({ type: `/problems/${name}`, title: name, status, detail: `${name} detail`, ...extra }, status, {
    "content-type": "application/problem+json",
    ...headers,
  });

/** Never answers; rejects with the signal's reason when the request is aborted (like fetch). */
export function hang(signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((_, reject) => {
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until true (generous bound; fails the test when it never holds). */
export async function until(cond: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
