// Test helpers: call the Worker inside workerd, as a client would over HTTP.
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Rand } from "../../shared/raft/rand";

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

/** The leader ("p2") group `group` ("g0") reports, waiting up to `timeoutMs` for it to have one. */
export function leaderOf(group: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(
    async () => (await clusterGroups()).find((x) => x.group === group)?.leader ?? undefined,
    timeoutMs,
    `a leader of ${group}`,
  );
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

export const PEERS = ["p1", "p2", "p3"];

/**
 * One fault of a workload, held for `holdMs` and then undone: a crash of `leader` (the same peer
 * id goes down in every group), or a partition that cuts one peer off from the other two (the
 * leader three times in four). Returns what it did and to whom, for the run's log.
 */
export async function injectFault(
  kind: "crash" | "partition",
  leader: string | undefined,
  r: Rand,
  holdMs: number,
): Promise<string> {
  if (kind === "crash") {
    const victim = leader ?? r.pick(PEERS);
    expect((await post(`/v1/admin/peers/${victim}/crash`)).status).toBe(200);
    await sleep(holdMs);
    expect((await post(`/v1/admin/peers/${victim}/restart`)).status).toBe(200);
    return `crash ${victim}`;
  }
  const victim = leader !== undefined && r.chance(3, 4) ? leader : r.pick(PEERS);
  const others = PEERS.filter((p) => p !== victim);
  expect((await post("/v1/admin/partition", { sides: [[victim], others] })).status).toBe(200);
  await sleep(holdMs);
  expect((await post("/v1/admin/heal")).status).toBe(200);
  return `partition ${victim}`;
}
