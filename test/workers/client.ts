// Test helpers: call the Worker inside workerd, as a client would over HTTP.
import { exports } from "cloudflare:workers";

const base = "http://example.com";

export async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await exports.default.fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests check response bodies field by field
  let json: any;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

export const post = (path: string, body?: unknown, headers?: Record<string, string>) =>
  call("POST", path, body ?? {}, headers);
export const get = (path: string, headers?: Record<string, string>) => call("GET", path, undefined, headers);

export const acquire = (resource: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
  post(`/v1/locks/${encodeURIComponent(resource)}/acquire`, body, headers);
export const release = (resource: string, owner: string, headers?: Record<string, string>) =>
  post(`/v1/locks/${encodeURIComponent(resource)}/release`, { owner }, headers);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value (not undefined) or the time is up. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface GroupInfo {
  group: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  peers: { id: string; role: string; matchIndex: number; lastContactMs: number | null }[];
}

export async function clusterGroups(): Promise<GroupInfo[]> {
  const res = await get("/v1/cluster");
  return res.json.groups as GroupInfo[];
}

/** Waits until /readyz says every group has a leader. */
export async function ready(): Promise<void> {
  await waitFor(async () => ((await get("/readyz")).status === 200 ? true : undefined), 15_000, "readyz");
}

/** Every group has a leader and every peer is up and caught up with its group's commit index. */
export async function settled(timeoutMs: number): Promise<boolean> {
  try {
    await waitFor(
      async () => {
        const groups = await clusterGroups();
        const ok = groups.every(
          (g) => g.leader !== null && g.peers.every((p) => p.role !== "down" && p.matchIndex >= g.commitIndex),
        );
        return ok ? true : undefined;
      },
      timeoutMs,
      "cluster to settle",
    );
    return true;
  } catch {
    return false;
  }
}
