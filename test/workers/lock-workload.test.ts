// A randomized try-lock workload against the whole cluster while a seeded fault schedule crashes
// leaders and partitions peers away; the history is then checked for linearizability against a
// sequential lock model (test/workers/lock-model.ts), and fencing tokens are checked directly.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { Rand } from "../../shared/raft/rand";
import { checkOperations } from "../../shared/sim/linearizability";
import { groupOf } from "../../workers/groups";
import { call, injectFault, leaderOf, PEERS, post, ready, settled, sleep, waitFor } from "./client";
import {
  fencingViolations,
  type HolderObs,
  type LockInput,
  type LockMode,
  type LockOperation,
  type LockOutput,
  lockModel,
} from "./lock-model";

const SEED = 0x5eed_10c5;
/** Clients stop issuing new operations after this long, or after MAX_OPS operations. */
const RUN_MS = 20_000;
const MAX_OPS = 800;
const CLIENTS = 4;
const OWNERS_PER_CLIENT = 2;
/** Long leases: nothing expires during a run, so the model needs no clock. */
const TTL_MS = 60_000;
/** A reply slower than this counts as lost (its outcome unknown). The Worker gives up after ~4 s. */
const CLIENT_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Pure: the model bites (no cluster involved).

/** A hand-made history from compact rows: [client, call, return (Infinity: pending), input, output]. */
function history(rows: [number, number, number, LockInput, LockOutput?][]): LockOperation[] {
  return rows.map(([clientId, c, r, input, output]) =>
    r === Infinity
      ? { clientId, call: c, return: r, input, pending: true }
      : { clientId, call: c, return: r, input, output },
  );
}

const acq = (owner: string, mode: LockMode = "exclusive"): LockInput => ({ op: "acquire", resource: "r", owner, mode });
const rel = (owner: string): LockInput => ({ op: "release", resource: "r", owner });
const view: LockInput = { op: "view", resource: "r" };
const granted = (fencingToken: number, mode: LockMode = "exclusive"): LockOutput => ({
  type: "granted",
  mode,
  fencingToken,
});
const conflict = (...holders: HolderObs[]): LockOutput => ({ type: "conflict", holders });
const ex = (owner: string): HolderObs => ({ owner, mode: "exclusive" });

describe("lock model (pure)", () => {
  it("rejects two overlapping exclusive grants to different owners with no release in between", () => {
    const overlapping = history([
      [1, 1, 3, acq("alice"), granted(5)],
      [2, 2, 4, acq("bob"), granted(6)],
    ]);
    const res = checkOperations(lockModel, overlapping);
    expect(res.result).toBe("illegal");
    expect(res.explanation).toContain("acquire(r, bob, exclusive)");

    // The same, one after the other, and a release that came too late to explain it.
    const sequential = history([
      [1, 1, 2, acq("alice"), granted(5)],
      [2, 3, 4, acq("bob"), granted(6)],
      [1, 5, 6, rel("alice"), { type: "released" }],
    ]);
    expect(checkOperations(lockModel, sequential).result).toBe("illegal");
  });

  it("accepts a legal history, with pending operations taking effect or not", () => {
    const legal = history([
      [1, 1, 2, acq("alice"), granted(5)],
      [2, 3, 4, acq("bob"), conflict(ex("alice"))],
      [3, 5, 6, view, { type: "view", holders: [ex("alice")] }],
      [1, 7, 8, rel("alice"), { type: "released" }],
      [2, 9, 10, acq("bob"), granted(9)],
      // Lost answers: carol's acquire took effect (dave saw her), erin's release did not.
      [2, 11, 12, rel("bob"), { type: "released" }],
      [3, 13, Infinity, acq("carol")],
      [4, 14, 15, acq("dave"), conflict(ex("carol"))],
      [5, 16, Infinity, rel("erin")],
      [4, 17, 18, rel("carol"), { type: "released" }],
      // A lost acquire that never took effect.
      [5, 19, Infinity, acq("frank")],
      [4, 20, 21, acq("dave"), granted(30)],
      [4, 22, 23, acq("dave"), granted(30)], // idempotent re-acquire: same token
      // Shared holders coexist; the sole shared holder upgrades with a new token.
      [4, 24, 25, rel("dave"), { type: "released" }],
      [1, 26, 27, acq("alice", "shared"), granted(31, "shared")],
      [2, 28, 29, acq("bob", "shared"), granted(32, "shared")],
      [
        3,
        30,
        31,
        acq("alice", "exclusive"),
        conflict({ owner: "alice", mode: "shared" }, { owner: "bob", mode: "shared" }),
      ],
      [2, 32, 33, rel("bob"), { type: "released" }],
      [1, 34, 35, acq("alice", "exclusive"), granted(40)],
    ]);
    const res = checkOperations(lockModel, legal);
    expect(res.explanation).toBeUndefined();
    expect(res.result).toBe("ok");
  });

  it("rejects a wrong conflict, a stale view, a bogus not-holder and a fencing token going backwards", () => {
    const wrongHolders = history([
      [1, 1, 2, acq("alice"), granted(5)],
      [2, 3, 4, acq("bob"), conflict(ex("carol"))],
    ]);
    expect(checkOperations(lockModel, wrongHolders).result).toBe("illegal");

    const staleView = history([
      [1, 1, 2, acq("alice"), granted(5)],
      [1, 3, 4, rel("alice"), { type: "released" }],
      [2, 5, 6, view, { type: "view", holders: [ex("alice")] }],
    ]);
    expect(checkOperations(lockModel, staleView).result).toBe("illegal");

    const lostRelease = history([
      [1, 1, 2, acq("alice"), granted(5)],
      [1, 3, 4, rel("alice"), { type: "notHolder" }],
    ]);
    expect(checkOperations(lockModel, lostRelease).result).toBe("illegal");

    const backwards = history([
      [1, 1, 2, acq("alice"), granted(9)],
      [1, 3, 4, rel("alice"), { type: "released" }],
      [2, 5, 6, acq("bob"), granted(7)],
    ]);
    expect(checkOperations(lockModel, backwards).result).toBe("illegal");
    expect(fencingViolations(backwards, () => 0)).toHaveLength(1);

    // A re-acquire that is not idempotent (a different token for the same holding).
    const changedToken = history([
      [1, 1, 2, acq("alice"), granted(9)],
      [1, 3, 4, acq("alice"), granted(10)],
    ]);
    expect(checkOperations(lockModel, changedToken).result).toBe("illegal");

    // A shared holder re-acquiring after another shared grant keeps its older token: legal.
    const sharedRenewal = history([
      [1, 1, 2, acq("alice", "shared"), granted(5, "shared")],
      [2, 3, 4, acq("bob", "shared"), granted(6, "shared")],
      [1, 5, 6, acq("alice", "shared"), granted(5, "shared")],
    ]);
    expect(checkOperations(lockModel, sharedRenewal).result).toBe("ok");
    expect(fencingViolations(sharedRenewal, () => 0)).toEqual([]);

    // One group's token handed to holders of two different resources.
    const shared: LockOperation[] = [
      { clientId: 1, call: 1, return: 2, input: { ...acq("alice"), resource: "a" }, output: granted(4) },
      { clientId: 2, call: 1, return: 3, input: { ...acq("bob"), resource: "b" }, output: granted(4) },
    ];
    expect(checkOperations(lockModel, shared).result).toBe("ok"); // each resource alone is fine
    expect(fencingViolations(shared, () => 0)).toHaveLength(1);
    expect(fencingViolations(shared, (r) => (r === "a" ? 0 : 1))).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The workload against the cluster.

type Reply = Awaited<ReturnType<typeof call>>;

/** Resources named wl-<i>, chosen so that they span at least two Raft groups. */
function pickResources(): string[] {
  const names = Array.from({ length: 64 }, (_, i) => `wl-${i}`);
  const group = (r: string) => groupOf(env, r);
  const first = names[0] as string;
  const other = names.find((r) => group(r) !== group(first));
  const sameAsFirst = names.find((r) => r !== first && group(r) === group(first));
  if (other === undefined || sameAsFirst === undefined) throw new Error("cannot spread resources over two groups");
  return [first, sameAsFirst, other];
}

/** The current leader of `resource`'s group ("p2"), or undefined if none shows up soon. */
async function leaderFor(resource: string): Promise<string | undefined> {
  const g = `g${groupOf(env, resource)}`;
  try {
    return await leaderOf(g, 5000);
  } catch {
    return undefined;
  }
}

function holdersOf(json: unknown): HolderObs[] | undefined {
  const holders = (json as { holders?: unknown } | undefined)?.holders;
  if (!Array.isArray(holders)) return undefined;
  return holders.map((h: { owner: string; mode: LockMode }) => ({ owner: h.owner, mode: h.mode }));
}

describe("lock workload under faults", () => {
  beforeAll(ready, 20_000);

  it("is linearizable, with fencing tokens that only grow, while leaders crash and peers are cut off", async () => {
    const started = Date.now();
    const rand = new Rand(SEED);
    const resources = pickResources();
    const ops: LockOperation[] = [];
    /** Replies the API does not allow here (400, 500, deadlock for a try-lock, bad bodies). */
    const unexpected: string[] = [];
    const faults: string[] = [];
    const counts = { issued: 0, pending: 0, droppedViews: 0, clientTimeouts: 0, viaPeer: 0 };
    let clock = 0;
    let stop = false;
    const deadline = started + RUN_MS;

    /** Sends one request, or gives up after CLIENT_TIMEOUT_MS (undefined: no answer). */
    async function send(method: string, path: string, body: unknown, headers: Record<string, string>) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), CLIENT_TIMEOUT_MS);
      });
      try {
        const reply = await Promise.race([call(method, path, body, headers), timeout]);
        if (reply === undefined) counts.clientTimeouts++;
        return reply;
      } catch {
        return undefined; // a network error: the outcome is unknown
      } finally {
        clearTimeout(timer);
      }
    }

    /** Interprets a reply; undefined: the outcome is unknown (503, no answer). */
    function outputOf(input: LockInput, reply: Reply | undefined): LockOutput | undefined {
      if (reply === undefined || reply.status === 503) return undefined;
      const { status, json } = reply;
      const bad = () => {
        unexpected.push(`${JSON.stringify(input)} -> ${status} ${JSON.stringify(json)}`);
        return undefined;
      };
      switch (input.op) {
        case "acquire":
          if (status === 200) {
            if (json?.owner !== input.owner || json?.resource !== input.resource || json?.mode !== input.mode) {
              return bad();
            }
            if (typeof json.fencingToken !== "number" || !(json.expiresAt > Date.now())) return bad();
            return { type: "granted", mode: json.mode, fencingToken: json.fencingToken };
          }
          if (status === 409 && json?.type === "/problems/lock-conflict") {
            const holders = holdersOf(json);
            return holders === undefined ? bad() : { type: "conflict", holders };
          }
          return bad();
        case "release":
          if (status === 200 && json?.released === true) return { type: "released" };
          if (status === 409 && json?.type === "/problems/not-holder") return { type: "notHolder" };
          return bad();
        case "view": {
          const holders = holdersOf(json);
          if (status === 200 && json?.resource === input.resource && holders !== undefined) {
            return { type: "view", holders };
          }
          return bad();
        }
      }
    }

    /** Runs one operation and records it (a view without an answer is not recorded). */
    async function run(clientId: number, input: LockInput, via?: string): Promise<LockOutput | undefined> {
      const headers: Record<string, string> = via === undefined ? {} : { "x-raft-peer": via };
      const path = `/v1/locks/${encodeURIComponent(input.resource)}`;
      const callAt = ++clock;
      const reply =
        input.op === "view"
          ? await send("GET", path, undefined, headers)
          : input.op === "release"
            ? await send("POST", `${path}/release`, { owner: input.owner }, headers)
            : await send(
                "POST",
                `${path}/acquire`,
                { owner: input.owner, mode: input.mode, ttlMs: TTL_MS, waitMs: 0 },
                headers,
              );
      const returnAt = ++clock;
      const output = outputOf(input, reply);
      if (output !== undefined) {
        ops.push({ clientId, call: callAt, return: returnAt, input, output });
      } else if (input.op === "view") {
        counts.droppedViews++;
      } else {
        counts.pending++;
        ops.push({ clientId, call: callAt, return: Infinity, input, pending: true });
      }
      return output;
    }

    async function client(clientId: number, r: Rand): Promise<void> {
      const owners = Array.from({ length: OWNERS_PER_CLIENT }, (_, j) => `c${clientId}-o${j}`);
      /** What this client believes it may hold (granted, or asked for without an answer). */
      const mayHold = new Set<string>();
      while (!stop && Date.now() < deadline && counts.issued < MAX_OPS) {
        counts.issued++;
        const resource = r.pick(resources);
        const owner = r.pick(owners);
        const key = `${resource} ${owner}`;
        const roll = r.int(100);
        let input: LockInput;
        if (roll < 15) input = { op: "view", resource };
        else if (mayHold.has(key) ? roll < 70 : roll < 25) input = { op: "release", resource, owner };
        else input = { op: "acquire", resource, owner, mode: r.chance(1, 5) ? "shared" : "exclusive" };
        let via: string | undefined;
        if (r.chance(1, 10)) {
          via = r.pick(PEERS);
          counts.viaPeer++;
        }
        const out = await run(clientId, input, via);
        if (input.op === "acquire" && (out === undefined || out.type === "granted")) mayHold.add(key);
        if (input.op === "release" && out !== undefined) mayHold.delete(key);
        await sleep(r.range(5, 80));
      }
    }

    async function faultLoop(r: Rand): Promise<void> {
      await sleep(r.range(1000, 2000));
      // Start a fault only if it can end (and the cluster recover) before the clients stop.
      // The first two faults are one crash and one partition, in a random order; then any.
      const firstKinds = r.shuffle<"crash" | "partition">(["crash", "partition"]);
      while (!stop && Date.now() + 5000 < deadline) {
        const kind = firstKinds.shift() ?? r.pick<"crash" | "partition">(["crash", "partition"]);
        const resource = r.pick(resources);
        const leader = await leaderFor(resource);
        const holdMs = r.range(1000, 3000);
        const at = `+${Date.now() - started}ms`;
        const did = await injectFault(kind, leader, r, holdMs);
        faults.push(`${at} ${did} (leader of ${resource}: ${leader ?? "?"})`);
        await settled(10_000);
        await sleep(r.range(200, 800));
      }
    }

    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i + 1, rand.fork()));
    const faultErrors: string[] = [];
    const faulting = faultLoop(rand.fork()).catch((e: unknown) => {
      faultErrors.push(String(e));
      // Whatever failed, leave no peer down or cut off for the rest of the run.
      return post("/v1/admin/heal").then(() => Promise.all(PEERS.map((p) => post(`/v1/admin/peers/${p}/restart`))));
    });
    await Promise.all(clients);
    stop = true;
    await faulting;
    const workloadMs = Date.now() - started;

    // Heal everything, then the cluster must serve again: final views go into the history too.
    expect((await post("/v1/admin/heal")).status).toBe(200);
    for (const p of PEERS) expect((await post(`/v1/admin/peers/${p}/restart`)).status).toBe(200);
    expect(await settled(15_000)).toBe(true);
    for (const resource of resources) {
      const out = await waitFor(
        async () => (await run(0, { op: "view", resource })) ?? undefined,
        10_000,
        `a view of ${resource}`,
      );
      expect(out.type).toBe("view");
    }
    const probe = `wl-probe-${SEED}`;
    const grant = await run(0, { op: "acquire", resource: probe, owner: "probe", mode: "exclusive" });
    expect(grant?.type).toBe("granted");
    expect((await run(0, { op: "release", resource: probe, owner: "probe" }))?.type).toBe("released");

    const checkStarted = Date.now();
    const result = checkOperations(lockModel, ops);
    const checkMs = Date.now() - checkStarted;
    const fencing = fencingViolations(ops, (r) => groupOf(env, r));

    const completed = ops.filter((op) => op.return !== Infinity);
    const kinds = new Map<string, number>();
    for (const op of completed) {
      const k = `${op.input.op}:${op.output?.type}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    console.log(
      [
        `lock workload seed ${SEED}: resources ${resources.map((r) => `${r}(g${groupOf(env, r)})`).join(" ")}`,
        `  ${ops.length} ops recorded (${completed.length} completed, ${counts.pending} pending), ` +
          `${counts.droppedViews} views dropped, ${counts.viaPeer} via a chosen peer, ${counts.clientTimeouts} client timeouts`,
        `  outcomes: ${[...kinds].map(([k, n]) => `${k}=${n}`).join(" ")}`,
        `  faults (${faults.length}): ${faults.join("; ")}`,
        `  workload ${workloadMs}ms, total ${Date.now() - started}ms; checker ${result.result} in ${result.steps} steps over ${result.partitions} partitions, ${checkMs}ms`,
      ].join("\n"),
    );

    expect(faultErrors).toEqual([]);
    expect(unexpected).toEqual([]);
    if (result.result !== "ok") {
      const opsDump = ops.map((op) => JSON.stringify(op)).join("\n");
      throw new Error(`history is ${result.result}\n${result.explanation ?? ""}\n--- history ---\n${opsDump}`);
    }
    expect(fencing).toEqual([]);
    expect(faults.length).toBeGreaterThan(0);
    expect(kinds.get("acquire:granted") ?? 0).toBeGreaterThan(10);
    expect(kinds.get("release:released") ?? 0).toBeGreaterThan(5);
    expect(kinds.get("acquire:conflict") ?? 0).toBeGreaterThan(0);
  }, 60_000);
});
