// The client library (client/) against the Worker in workerd while group leaders crash and peers
// are cut off: withLock's fencing tokens and lease signal, consume's at-least-once delivery with
// acks that stick, and a caller's abort that lands at the moment of a leader crash.
import { SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { SyncClient } from "../../client/index.js";
import { Rand } from "../../shared/raft/rand";
import { groupOf } from "../../workers/groups";
import { clusterGroups, injectFault, PEERS, post, ready, settled, sleep, waitFor } from "./client";

const SEED = 0xc11e_47f5;

const serviceFetch: typeof fetch = (input, init) => SELF.fetch(input as string, init as RequestInit);
const client = new SyncClient({
  url: "http://x",
  fetch: serviceFetch,
  retry: { attempts: 8, baseMs: 50, maxMs: 1000 },
});

beforeAll(ready, 20_000);

/** The leader of group `g` now, or undefined if none shows up within a few seconds. */
async function currentLeader(g: number): Promise<string | undefined> {
  const name = `g${g}`;
  return waitFor(async () => (await clusterGroups()).find((x) => x.group === name)?.leader ?? undefined, 5000).catch(
    () => undefined,
  );
}

type FaultKind = "crash" | "partition" | "no-quorum";

/**
 * Faults until `until`, each held 1.2–2.5 s and undone, with time to settle after each: a crash of
 * the leader of one of `groups`, a partition cutting one peer off (injectFault), or every peer cut
 * off from every other (no group has a quorum: renewals fail, so leases run out). The first three
 * are one of each, in a random order. Whatever happens, every peer is up and healed at the end.
 */
async function faultSchedule(groups: number[], r: Rand, until: number, log: string[]): Promise<void> {
  const kinds: FaultKind[] = ["crash", "partition", "no-quorum"];
  const first = r.shuffle([...kinds]);
  try {
    await sleep(r.range(300, 800));
    while (Date.now() + 4000 < until) {
      const kind = first.shift() ?? r.pick(kinds);
      const g = r.pick(groups);
      const holdMs = r.range(1200, 2500);
      if (kind === "no-quorum") {
        expect((await post("/v1/admin/partition", { sides: PEERS.map((p) => [p]) })).status).toBe(200);
        await sleep(holdMs);
        expect((await post("/v1/admin/heal")).status).toBe(200);
        log.push("no quorum");
      } else {
        log.push(`${await injectFault(kind, await currentLeader(g), r, holdMs)} (g${g})`);
      }
      await settled(10_000);
      await sleep(r.range(200, 600));
    }
  } finally {
    await post("/v1/admin/heal");
    for (const p of PEERS) await post(`/v1/admin/peers/${p}/restart`);
  }
}

/** `p`'s outcome, or "unsettled" if it neither resolved nor rejected within `ms`. */
async function settleWithin<T>(
  p: Promise<T>,
  ms: number,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | "unsettled"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"unsettled">((resolve) => {
    timer = setTimeout(() => resolve("unsettled"), ms);
  });
  const outcome = p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  try {
    return await Promise.race([outcome, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** `count` resource names with `prefix` that all live in one Raft group. */
function resourcesOfOneGroup(prefix: string, count: number): { group: number; resources: string[] } {
  const names = Array.from({ length: 64 }, (_, i) => `${prefix}${i}`);
  const group = groupOf(env, names[0] as string);
  const resources = names.filter((n) => groupOf(env, n) === group).slice(0, count);
  if (resources.length < count) throw new Error(`fewer than ${count} names of ${prefix} in g${group}`);
  return { group, resources };
}

describe("withLock while the resources' leader crashes and is cut off", () => {
  /** One run of fn: which grant, when it ran, and when (if ever) its lease signal fired. */
  interface Body {
    resource: string;
    owner: string;
    fencingToken: number;
    start: number;
    end: number;
    lostAt?: number;
  }

  it("fencing tokens follow the order of the bodies, which overlap only after the earlier one's signal fired; all settle, nothing is left held", async () => {
    const TTL_MS = 1500;
    const WAIT_MS = 4000;
    const RUN_MS = 15_000;
    const started = Date.now();
    const until = started + RUN_MS;
    const rand = new Rand(SEED);
    const { group, resources } = resourcesOfOneGroup("cf-lock-", 3);
    const bodies: Body[] = [];
    const outcomes = new Map<string, number>();
    const unsettled: string[] = [];
    const faults: string[] = [];

    async function caller(id: number, resource: string, r: Rand): Promise<void> {
      for (let n = 0; Date.now() < until; n++) {
        const owner = `cf1-c${id}-${n}`;
        const call = client.withLock(
          resource,
          async (lease) => {
            const body: Body = { resource, owner, fencingToken: lease.fencingToken, start: Date.now(), end: 0 };
            bodies.push(body);
            const lost = new Promise<void>((resolve) => {
              const onLost = () => {
                body.lostAt = Date.now();
                resolve();
              };
              if (lease.signal.aborted) onLost();
              else lease.signal.addEventListener("abort", onLost, { once: true });
            });
            // Most bodies stop when told the lease is lost; some carry on regardless (then a later
            // grant may overlap them, but only once their signal has fired).
            const work = sleep(r.range(50, 2000));
            await (r.chance(2, 3) ? Promise.race([work, lost]) : work);
            body.end = Date.now();
            return body.fencingToken;
          },
          { owner, ttlMs: TTL_MS, waitMs: WAIT_MS },
        );
        const out = await settleWithin(call, 40_000);
        const kind = out === "unsettled" ? "unsettled" : out.ok ? "ok" : (out.error as Error).name;
        if (out === "unsettled") unsettled.push(owner);
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
        await sleep(r.range(0, 100));
      }
    }

    const callers = resources.flatMap((resource, i) =>
      Array.from({ length: 3 }, (_, j) => caller(i * 3 + j, resource, rand.fork())),
    );
    const faulting = faultSchedule([group], rand.fork(), until, faults);
    await Promise.all([...callers, faulting]);
    expect(await settled(15_000)).toBe(true);

    console.log(
      `withLock under faults (g${group}: ${resources.join(" ")}): ${bodies.length} bodies, ` +
        `${bodies.filter((b) => b.lostAt !== undefined).length} lost leases; outcomes ${[...outcomes]
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}; faults: ${faults.join("; ")}; ${Date.now() - started}ms`,
    );

    expect(unsettled).toEqual([]);
    // Only the refusals a waiting acquire under faults can meet (no TypeError, no deadlock).
    const allowed = new Set(["ok", "LockConflictError", "LeaseLostError", "NoQuorumError", "RequestTimeoutError"]);
    expect([...outcomes.keys()].filter((k) => !allowed.has(k))).toEqual([]);
    expect(faults.length).toBeGreaterThanOrEqual(2);
    expect(outcomes.get("ok") ?? 0).toBeGreaterThan(10);

    for (const resource of resources) {
      const mine = bodies.filter((b) => b.resource === resource).sort((a, b) => a.fencingToken - b.fencingToken);
      const tokens = mine.map((b) => b.fencingToken);
      expect(new Set(tokens).size, `a token of ${resource} was handed out twice`).toBe(tokens.length);
      // A later grant's body starts after the earlier one ended, or after its lease signal fired:
      // the service grants again only once the lease ran out (never before t + ttl of its last
      // confirming request), and the client fires the signal at t + 5/6 ttl.
      for (let i = 0; i < mine.length; i++) {
        for (let j = i + 1; j < mine.length; j++) {
          const [a, b] = [mine[i] as Body, mine[j] as Body];
          const fine = b.start >= a.end || (a.lostAt !== undefined && a.lostAt <= b.start);
          expect(fine, `${JSON.stringify(a)} overlaps the later grant ${JSON.stringify(b)}`).toBe(true);
        }
      }
    }

    // Nothing is left held or waiting for these owners. A grant of an acquire aborted before it
    // reached the service may outlive its release by one TTL (client/README.md, limits).
    const leftovers = await waitFor(
      async () => {
        const { locks } = await client.locks.list({ prefix: "cf-lock-" });
        return locks.length === 0 ? locks : undefined;
      },
      TTL_MS + WAIT_MS + 5000,
      "no lock of cf-lock-* held or waited for",
    ).catch(async () => (await client.locks.list({ prefix: "cf-lock-" })).locks);
    expect(leftovers).toEqual([]);
  }, 60_000);
});
