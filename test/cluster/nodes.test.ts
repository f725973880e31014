/**
 * The multi-process cluster: every node a separate process started with the container's command
 * (`node dist/node/node.mjs`, bench/nodes.ts), peers talking over signed HTTP. Each test makes a
 * cluster of its own on fresh data and runs real traffic through every node while it breaks
 * something: kill -9 of a node, of a leader, nodes joining and leaving, a partition. Lock
 * histories go through the linearizability checker (test/workers/lock-model.ts); queue messages
 * acknowledged to a producer must all be received; a cache key written by one sequential writer
 * must never read older than its last acknowledged write.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { LocalCluster } from "../../bench/nodes.js";
import { Rand } from "../../shared/raft/rand.js";
import { checkOperations } from "../../shared/sim/linearizability.js";
import type { Env } from "../../workers/env.js";
import { groupOf } from "../../workers/groups.js";
import { fencingViolations, lockModel } from "../workers/lock-model.js";
import { call, type GroupView, groups, LockHistory, tryCall, waitFor } from "./client.js";

const RESOURCES = ["r-a", "r-b", "r-c", "r-d", "r-e", "r-f"];
const env = { RAFT_GROUPS: "3" } as Env;

let cluster: LocalCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
}, 60_000);

async function startCluster(count: number, settings: Record<string, string> = {}): Promise<LocalCluster> {
  cluster = await LocalCluster.start(count, settings);
  const c = cluster;
  await waitFor("every group to have a leader", 30_000, async () => {
    const r = await tryCall(c.node("p1").origin, "GET", "/readyz");
    return r?.status === 200 ? true : undefined;
  });
  return c;
}

/** The lock history checks: linearizable, fencing tokens only grow, no reply outside the API. */
function expectLockHistorySound(history: LockHistory): void {
  expect(history.unexpected).toEqual([]);
  const result = checkOperations(lockModel, history.ops);
  expect(result.result, result.result === "illegal" ? result.explanation : "").toBe("ok");
  expect(fencingViolations(history.ops, (resource) => groupOf(env, resource))).toEqual([]);
}

/** Receives and acks every message of `queue` (through `origin`) until `want` are all seen, or `ms` pass. */
async function drain(origin: string, queue: string, want: Set<string>, ms: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const deadline = Date.now() + ms;
  while ([...want].some((id) => !seen.has(id)) && Date.now() < deadline) {
    const r = await tryCall(origin, "POST", `/v1/queues/${queue}/receive`, { max: 10, visibilityMs: 30_000 });
    const messages = (r?.status === 200 ? r.json.messages : []) as { id: string; receipt: string }[];
    for (const m of messages) seen.add(m.id);
    if (messages.length > 0) {
      await tryCall(origin, "POST", `/v1/queues/${queue}/ack`, { receipts: messages.map((m) => m.receipt) });
    }
    if (messages.length === 0) await sleep(100);
  }
  return seen;
}

function leaderOf(view: GroupView[] | undefined, group: string): string | null | undefined {
  return view?.find((g) => g.group === group)?.leader;
}

describe("multi-process cluster", () => {
  it("loses nothing acknowledged when a node is killed with -9 under load and restarted", async () => {
    const c = await startCluster(3);
    const rand = new Rand(0xc1a5_7e41);
    const history = new LockHistory(RESOURCES);
    let running = true;
    const live = () => c.origins();
    const anyLive = (r: Rand) => () => r.pick(live());

    // Producers: message ids acknowledged (200) must all come out of the queue later.
    const acked = new Set<string>();
    let produced = 0;
    const producer = async (r: Rand) => {
      while (running) {
        const id = `m-${produced++}`;
        const reply = await tryCall(anyLive(r)(), "POST", "/v1/queues/jobs/messages", { messages: [{ id, body: id }] });
        if (reply?.status === 200) acked.add(id);
        await sleep(r.range(5, 30));
      }
    };
    // One sequential cache writer through cache nodes n1 and n3 (hosted by p1 and p3, never killed).
    let lastAckedVersion = 0;
    let lastTriedVersion = 0;
    const cacheWriter = async (r: Rand) => {
      while (running) {
        const version = ++lastTriedVersion;
        const node = r.pick(["n1", "n3"]);
        const reply = await tryCall(c.node(`p${node.slice(1)}`).origin, "PUT", `/v1/cache/ck?node=${node}`, {
          value: String(version),
        });
        if (reply?.status === 200) lastAckedVersion = version;
        await sleep(r.range(10, 50));
      }
    };

    const load = Promise.all([
      ...Array.from({ length: 6 }, (_, i) => history.client(i, rand.fork(), anyLive(rand.fork()), () => running)),
      producer(rand.fork()),
      producer(rand.fork()),
      cacheWriter(rand.fork()),
    ]);
    // Kill once the load has really run (on a loaded machine that takes longer), and stop once it
    // has gone on after the restart: counts of acknowledged work, not fixed times.
    const progress = (what: string, grants: number, acks: number) =>
      waitFor(what, 60_000, async () => (history.granted >= grants && acked.size >= acks ? true : undefined));
    await progress("load before the kill", 20, 20);
    await c.kill("p2", "SIGKILL");
    await sleep(2_000);
    const beforeRestart = { granted: history.granted, acked: acked.size };
    await c.restart("p2");
    await progress("load after the restart", beforeRestart.granted + 20, beforeRestart.acked + 20);
    running = false;
    await load;
    expectLockHistorySound(history);

    const seen = await drain(c.node("p2").origin, "jobs", acked, 30_000);
    expect([...acked].filter((id) => !seen.has(id))).toEqual([]);

    // The restarted node's cache node serves the key no older than the last acknowledged write.
    const read = await call(c.node("p2").origin, "GET", "/v1/cache/ck?node=n2");
    expect(read.status).toBe(200);
    expect(Number(read.json.value)).toBeGreaterThanOrEqual(lastAckedVersion);
    expect(Number(read.json.value)).toBeLessThanOrEqual(lastTriedVersion);
  });

  it("elects a new leader on the other nodes when the leader's node is killed, and serves on", async () => {
    const c = await startCluster(3);
    const view = await waitFor("g0 to have a leader", 10_000, async () => {
      const v = await groups(c.node("p1").origin);
      return leaderOf(v, "g0") ? v : undefined;
    });
    const old = leaderOf(view, "g0") as string;
    const oldTerm = view.find((g) => g.group === "g0")?.term ?? 0;
    const survivor = c.node(old === "p1" ? "p2" : "p1").origin;

    // An idle group may be quiesced: its followers notice a dead leader when a request wakes
    // them. So a client keeps asking for a g0 lock through the survivor until it is served.
    const resource = RESOURCES.find((r) => groupOf(env, r) === 0) ?? "r-a";
    const killedAt = Date.now();
    await c.kill(old, "SIGKILL");
    await waitFor("a g0 lock through the survivor", 20_000, async () => {
      const r = await tryCall(survivor, "POST", `/v1/locks/${resource}/acquire`, { owner: "after", ttlMs: 10_000 });
      return r?.status === 200 ? true : undefined;
    });
    const next = (await groups(survivor))?.find((x) => x.group === "g0");
    expect(next?.leader).not.toBe(old);
    expect(next?.term).toBeGreaterThan(oldTerm);
    // How long failover took is a measurement, reported by the test and the benchmarks; not asserted.
    console.log(
      `g0: leader ${old} killed; ${next?.leader} serves in term ${next?.term} after ${Date.now() - killedAt} ms`,
    );

    // The old leader's node comes back as a follower and catches up.
    await c.restart(old);
    await waitFor(`${old} to catch up in g0`, 20_000, async () => {
      const g = (await groups(survivor))?.find((x) => x.group === "g0");
      const peer = g?.peers.find((p) => p.id === old);
      return peer?.role === "follower" && peer.matchIndex >= (g?.commitIndex ?? Infinity) ? true : undefined;
    });
  });

  it("adds a 4th and 5th node and removes one while traffic flows", async () => {
    const c = await startCluster(3);
    const rand = new Rand(0xadd_5);
    const history = new LockHistory(RESOURCES);
    let running = true;
    // Traffic through the nodes that stay members; p1 is removed half way.
    const stay = ["p2", "p3"];
    const load = Promise.all(
      Array.from({ length: 4 }, (_, i) => {
        const r = rand.fork();
        return history.client(
          i,
          rand.fork(),
          () => c.node(r.pick(stay)).origin,
          () => running,
        );
      }),
    );
    // p4 is added by hand (POST /v1/cluster/peers with its url), p5 asks by itself (JOIN).
    const p4 = await c.startExtra("p4");
    const added = await call(c.node("p1").origin, "POST", "/v1/cluster/peers", { id: "p4", url: p4.origin });
    expect(added.status).toBe(202);
    await c.join("p5", c.node("p2").origin);
    const voters = (v: GroupView[] | undefined, want: string[]) =>
      v?.length === 3 &&
      v.every((g) => {
        const roles = new Map(g.peers.map((p) => [p.id, p.role]));
        return (
          want.every((id) => roles.get(id) === "leader" || roles.get(id) === "follower") && roles.size === want.length
        );
      });
    await waitFor("p4 and p5 to be voters in every group", 30_000, async () =>
      voters(await groups(c.node("p2").origin), ["p1", "p2", "p3", "p4", "p5"]) ? true : undefined,
    );
    const removed = await call(c.node("p3").origin, "DELETE", "/v1/cluster/peers/p1");
    expect(removed.status).toBe(202);
    await waitFor("every group to be p2..p5", 20_000, async () =>
      voters(await groups(c.node("p2").origin), ["p2", "p3", "p4", "p5"]) ? true : undefined,
    );
    await sleep(1_000);
    running = false;
    await load;
    expect(history.granted).toBeGreaterThan(10);
    expectLockHistorySound(history);
    // The joined nodes serve the API too.
    const viaJoiner = await call(c.node("p5").origin, "POST", "/v1/locks/joined/acquire", {
      owner: "p5",
      ttlMs: 5_000,
    });
    expect(viaJoiner.status).toBe(200);

    // p5 joined by itself, so SIGTERM (docker stop, scaling down) makes it leave every group first.
    await c.kill("p5", "SIGTERM");
    expect(c.node("p5").output()).toContain("node p5: left every group");
    await waitFor("every group to be p2..p4", 20_000, async () =>
      voters(await groups(c.node("p2").origin), ["p2", "p3", "p4"]) ? true : undefined,
    );
  });

  it("cuts a node off with the partition route; the others lead and commit; it catches up after heal", async () => {
    const c = await startCluster(3, { FAULT_INJECTION: "true" });
    const p2 = c.node("p2").origin;
    const cut = await call(p2, "POST", "/v1/admin/partition", { sides: [["p1"], ["p2", "p3"]] });
    expect(cut.status).toBe(200);
    // Writes through the majority, to every group, commit while p1 hears nothing. A group led
    // from p1 may have been quiet: the first requests wake it, and may get 503 while it elects.
    const everyGroup = [0, 1, 2].map((g) => {
      for (let i = 0; ; i++) if (groupOf(env, `cut-${i}`) === g) return `cut-${i}`;
    });
    for (const resource of [...everyGroup, ...RESOURCES]) {
      await waitFor(`a lock on ${resource} through p2`, 20_000, async () => {
        const r = await tryCall(p2, "POST", `/v1/locks/${resource}/acquire`, { owner: "majority", ttlMs: 30_000 });
        if (r !== undefined && r.status !== 200 && r.status !== 503) throw new Error(JSON.stringify(r.json));
        return r?.status === 200 ? true : undefined;
      });
    }
    const led = await groups(p2);
    expect(led?.map((g) => g.leader).every((l) => l === "p2" || l === "p3")).toBe(true);
    const during = await groups(p2);
    const lagging = during?.filter((g) => (g.peers.find((p) => p.id === "p1")?.matchIndex ?? 0) < g.commitIndex);
    expect(lagging?.length).toBe(3);

    expect((await call(p2, "POST", "/v1/admin/heal")).status).toBe(200);
    await waitFor("p1 to catch up in every group", 20_000, async () => {
      const v = await groups(p2);
      return v?.every((g) => (g.peers.find((p) => p.id === "p1")?.matchIndex ?? 0) >= g.commitIndex) ? true : undefined;
    });
    // And p1 serves what the majority wrote.
    const view = await call(c.node("p1").origin, "GET", `/v1/locks/${RESOURCES[0]}`);
    expect((view.json.holders as { owner: string }[]).map((h) => h.owner)).toEqual(["majority"]);
  });

  it("refuses unsigned, mis-signed and replayed node-to-node calls", async () => {
    const c = await startCluster(1);
    const origin = c.node("p1").origin;
    const { newNonce, sign, SIGNATURE_HEADER } = await import("../../shared/node/signing.js");
    const body = JSON.stringify({ nodes: [] });
    const post = (signature?: string) =>
      fetch(`${origin}/internal/hello`, {
        method: "POST",
        headers: signature ? { [SIGNATURE_HEADER]: signature } : {},
        body,
      });
    expect((await post()).status).toBe(401);
    expect(
      (await post(await sign("another-secret-0123456789", "/internal/hello", body, Date.now(), newNonce()))).status,
    ).toBe(401);
    const good = await sign(c.secret, "/internal/hello", body, Date.now(), newNonce());
    expect((await post(good)).status).toBe(200);
    expect((await post(good)).status).toBe(401); // the same call again: a replay
    const stale = await sign(c.secret, "/internal/hello", body, Date.now() - 120_000, newNonce());
    expect((await post(stale)).status).toBe(401);
  });

  it("names PORT in one line when the port is taken, instead of a workerd stack trace", async () => {
    const c = await startCluster(1);
    const taken = c.node("p1").port;
    const { spawnSync } = await import("node:child_process");
    const r = spawnSync(process.execPath, ["dist/node/node.mjs"], {
      env: { ...process.env, NODE_ID: "p1", PORT: String(taken), CLUSTER_SECRET: c.secret, DATA_DIR: c.root },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(
      `PORT=${taken} is already in use (another server running?): set PORT to a free port, e.g. PORT=${taken + 1}`,
    );
  });
});
