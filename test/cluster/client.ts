// What the multi-process cluster tests share: a JSON client with a bound on every request, a
// recorder of try-lock histories for the linearizability checker, and readers of /v1/cluster.
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import type { Rand } from "../../shared/raft/rand.js";
import type { Operation } from "../../shared/sim/linearizability.js";
import type { HolderObs, LockInput, LockMode, LockOutput } from "../workers/lock-model.js";

/** Bounds a request that never answers (a group without a leader answers 503 after ~4 s). */
const REQUEST_TIMEOUT_MS = 12_000;

export type Json = Record<string, unknown>;
export interface Reply {
  status: number;
  json: Json;
}

export const agent = new Agent({
  headersTimeout: REQUEST_TIMEOUT_MS,
  bodyTimeout: REQUEST_TIMEOUT_MS,
  connectTimeout: 2_000,
});

export async function call(origin: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await request(`${origin}${path}`, {
    dispatcher: agent,
    method: method as "GET",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = { text };
  }
  return { status: res.statusCode, json };
}

/** undefined when the request failed (refused, reset, timed out): its outcome is unknown. */
export async function tryCall(origin: string, method: string, path: string, body?: unknown) {
  try {
    return await call(origin, method, path, body);
  } catch {
    return undefined;
  }
}

export interface GroupView {
  group: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  peers: { id: string; role: string; matchIndex: number }[];
}

export async function groups(origin: string): Promise<GroupView[] | undefined> {
  const r = await tryCall(origin, "GET", "/v1/cluster");
  return r?.status === 200 ? (r.json.groups as GroupView[]) : undefined;
}

/** Polls `probe` every 100 ms until it answers something other than undefined, or throws after `ms`. */
export async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

export type LockOperation = Operation<LockInput, LockOutput>;

/** Nothing expires during a run: the lock model has no clock. */
const TTL_MS = 600_000;

/**
 * Try-lock clients over a set of resources, through whichever node `origin()` names per request;
 * every operation is recorded with logical call/return times, pending when its outcome is unknown.
 */
export class LockHistory {
  readonly ops: LockOperation[] = [];
  readonly unexpected: string[] = [];
  granted = 0;
  private clock = 0;

  constructor(private readonly resources: string[]) {}

  async client(id: number, r: Rand, origin: () => string, running: () => boolean): Promise<void> {
    const owners = [`c${id}-a`, `c${id}-b`];
    const mayHold = new Set<string>();
    while (running()) {
      const resource = r.pick(this.resources);
      const owner = r.pick(owners);
      const key = `${resource} ${owner}`;
      const roll = r.int(100);
      let input: LockInput;
      if (roll < 15) input = { op: "view", resource };
      else if (mayHold.has(key) ? roll < 70 : roll < 25) input = { op: "release", resource, owner };
      else input = { op: "acquire", resource, owner, mode: r.chance(1, 5) ? "shared" : "exclusive" };
      const out = await this.run(id, input, origin());
      if (input.op === "acquire" && (out === undefined || out.type === "granted")) mayHold.add(key);
      if (input.op === "release" && out !== undefined) mayHold.delete(key);
      await sleep(r.range(5, 40));
    }
  }

  private async run(clientId: number, input: LockInput, origin: string): Promise<LockOutput | undefined> {
    const path = `/v1/locks/${encodeURIComponent(input.resource)}`;
    const callAt = ++this.clock;
    const reply =
      input.op === "view"
        ? await tryCall(origin, "GET", path)
        : input.op === "release"
          ? await tryCall(origin, "POST", `${path}/release`, { owner: input.owner })
          : await tryCall(origin, "POST", `${path}/acquire`, {
              owner: input.owner,
              mode: input.mode,
              ttlMs: TTL_MS,
              waitMs: 0,
            });
    const returnAt = ++this.clock;
    const output = this.outputOf(input, reply);
    if (output !== undefined) {
      if (output.type === "granted") this.granted++;
      this.ops.push({ clientId, call: callAt, return: returnAt, input, output });
    } else if (input.op !== "view") {
      this.ops.push({ clientId, call: callAt, return: Infinity, input, pending: true });
    }
    return output;
  }

  private outputOf(input: LockInput, reply: Reply | undefined): LockOutput | undefined {
    if (reply === undefined || reply.status === 503) return undefined;
    const { status, json } = reply;
    const bad = () => {
      this.unexpected.push(`${JSON.stringify(input)} -> ${status} ${JSON.stringify(json)}`);
      return undefined;
    };
    const holders = () =>
      Array.isArray(json.holders)
        ? (json.holders as HolderObs[]).map((h) => ({ owner: h.owner, mode: h.mode as LockMode }))
        : undefined;
    switch (input.op) {
      case "acquire":
        if (status === 200 && json.owner === input.owner && typeof json.fencingToken === "number") {
          return { type: "granted", mode: json.mode as LockMode, fencingToken: json.fencingToken };
        }
        if (status === 409 && json.type === "/problems/lock-conflict" && holders() !== undefined) {
          return { type: "conflict", holders: holders() as HolderObs[] };
        }
        return bad();
      case "release":
        if (status === 200 && json.released === true) return { type: "released" };
        if (status === 409 && json.type === "/problems/not-holder") return { type: "notHolder" };
        return bad();
      case "view":
        return status === 200 && holders() !== undefined ? { type: "view", holders: holders() as HolderObs[] } : bad();
    }
  }
}
