/**
 * One seeded run of the whole replicated system: 2–3 Raft groups of 3–5 peers, each peer the
 * real core (createGroupCore) hosted as objects/raft-peer.ts hosts it, the Worker's routes in
 * front, clients of locks and queues behind it. Faults for `faultMs` of simulated time: message
 * drops, duplicates and delays, partitions (symmetric and one-way), crashes (also inside the
 * handling of a Ready) and restarts from the durable log, pauses, clock offsets and drift, lost
 * replies at every hop. Then everything heals: every group must commit under a leader within a
 * bound (liveness), the queues are drained, and the histories are checked (locks.ts, queues.ts,
 * replicas.ts). Everything derives from the seed.
 */
import type { ConfState } from "../../../shared/raft/index.js";
import { Rand } from "../../../shared/raft/rand.js";
import { CacheLinks, orderTransport, randomClock, SimCacheNode } from "./cache.js";
import { CacheChecker } from "./cache-check.js";
import { PeerClock } from "./clock.js";
import { Faults, randomCacheRates, randomRates } from "./faults.js";
import { LinearLocks } from "./linear.js";
import { LockChecker } from "./locks.js";
import { PeerNetwork } from "./net.js";
import { answeredBy, type Bug, SimPeer } from "./peer.js";
import { QueueChecker } from "./queues.js";
import { ReplicaChecker } from "./replicas.js";
import { SimWorker } from "./worker.js";
import { type Phase, Workload } from "./workload.js";
import { World } from "./world.js";

export interface GroupSimOptions {
  seed: number;
  /** Simulated ms of the faulty phase (default 12 s). */
  faultMs?: number;
  trace?: boolean;
  bug?: Bug;
  /** Idle groups quiesce (default: in 7 seeds of 8). */
  quiesce?: boolean;
}

export interface GroupSimResult {
  seed: number;
  /** Events run. */
  steps: number;
  violations: string[];
  trace: string[];
  stats: Record<string, number | string>;
}

const LIVENESS_MS = 10_000;
const DRAIN_MS = 60_000;
/** How long the cache may take to finish its requests after the drain, and its final reads. */
const CACHE_IDLE_MS = 60_000;
const TICK_MS = 50;
/** After healing and with no client traffic, every group must quiesce within this (when quiescence is on). */
const QUIESCE_MS = 15_000;
/** A request sent to a quiet group (its leader maybe crashed meanwhile) must be served within this. */
const WAKE_MS = 8_000;

export async function simulateGroups(opts: GroupSimOptions): Promise<GroupSimResult> {
  const rand = new Rand(opts.seed);
  const cfgRand = rand.fork();
  const faultRand = rand.fork();
  // Quiescence and quiet spells draw from a Rand of their own: the rest of a seed's run keeps its shape.
  const quietRand = new Rand((opts.seed ^ 0x51e5ce) >>> 0);
  const quiesce = opts.quiesce ?? quietRand.chance(7, 8);
  const trace: string[] = [];
  const violations: string[] = [];
  const violation = (what: string) => {
    violations.push(what);
    log(() => `VIOLATION ${what}`);
  };
  const world = new World((e) => violation(`exception: ${errorText(e)}`));
  const log = (line: () => string) => {
    if (opts.trace) trace.push(`${world.now} ${line()}`);
  };

  // ---- the configuration, from the seed -------------------------------------------------------
  const faultMs = opts.faultMs ?? 12_000;
  const groupCount = cfgRand.range(2, 3);
  const shards = cfgRand.range(3, 8);
  const chunkUnits = cfgRand.range(1, 64);
  const compactEvery = cfgRand.range(20, 200);
  const netFaults = {
    dropPerMille: cfgRand.range(0, 80),
    dupPerMille: cfgRand.range(0, 30),
    minDelay: 1,
    maxDelay: cfgRand.range(2, 60),
  };
  const link = { minDelay: 1, maxDelay: cfgRand.range(2, 15), lossPerMille: cfgRand.range(0, 20) };
  const rates = randomRates(cfgRand);
  const maxOffsetMs = cfgRand.pick([0, 1000, 4000, 8000]);
  const maxDriftPpm = cfgRand.pick([0, 100, 1000]);
  const diskMs = cfgRand.range(0, 4);
  const workloadCfg = {
    lockClients: cfgRand.range(2, 5),
    resources: ["r0", "r1", "r2", "r3", "r4"].slice(0, cfgRand.range(2, 5)),
    producers: cfgRand.range(1, 3),
    consumers: cfgRand.range(1, 4),
    queues: ["jobs", "mail"].slice(0, cfgRand.range(1, 2)),
    keys: ["k0", "k1", "k2", "k3"].slice(0, cfgRand.range(1, 4)),
    httpLossPerMille: cfgRand.range(0, 30),
    idempotencyPerMille: cfgRand.pick([0, 300, 1000]),
    linearClients: cfgRand.range(0, 2),
  };

  // ---- the system -----------------------------------------------------------------------------
  let phase: Phase = "faults";
  /** A quiet spell: clients start nothing new. */
  let quiet = false;
  const quietCounts = {
    quiesce: quiesce ? 1 : 0,
    quietFaults: 0,
    quietFaultsOnQuiesced: 0,
    wakeProbes: 0,
    wakeProbesLeaderDown: 0,
    wakeMaxMs: 0,
    wakeMaxSends: 0,
    quiescedWithinMs: 0,
  };
  let faults: Faults | undefined;
  const replicas = new ReplicaChecker(
    groupCount,
    violation,
    log,
    () => world.now,
    (p) => faults?.elected(p, phase === "faults"),
  );
  const locks = new LockChecker(violation);
  const linear = new LinearLocks();
  const queues = new QueueChecker(violation);
  const cache = new CacheChecker(violation);
  const cacheNodes = new Map<string, SimCacheNode>();
  const cacheLinks = new CacheLinks(rand.fork(), {
    minDelay: 1,
    maxDelay: cfgRand.range(2, 40),
    lossPerMille: cfgRand.range(0, 50),
  });
  const cacheLeaseMs = cfgRand.pick([500, 1000, 2000, 4000]);
  const orderCounts = { orders: 0, ordersFailed: 0 };
  const groups: SimPeer[][] = [];
  const nets: PeerNetwork[] = [];
  for (let g = 0; g < groupCount; g++) {
    const size = cfgRand.range(3, 5);
    const genesis: ConfState = { voters: Array.from({ length: size }, (_, i) => i + 1), learners: [] };
    const net = new PeerNetwork(world, rand.fork(), netFaults);
    nets.push(net);
    const peers: SimPeer[] = [];
    groups.push(peers);
    for (let id = 1; id <= size; id++) {
      const clock = new PeerClock(cfgRand.range(-maxOffsetMs, maxOffsetMs), cfgRand.range(-maxDriftPpm, maxDriftPpm));
      const peer = new SimPeer(g, id, clock, rand.fork(), {
        world,
        net,
        peer: (to) => peers[to - 1] as SimPeer,
        genesis,
        tickMs: TICK_MS,
        compactEvery,
        chunking: { units: chunkUnits, naive: opts.bug === "naiveSnapshotChunks" },
        diskMs,
        maxDriftPpm,
        cacheNodes: (p) => orderTransport(p, cacheNodes, cacheLinks, world, opts.bug, orderCounts),
        cacheLeaseMs,
        quiesce,
        bug: opts.bug,
        onStart: (p, core) => replicas.attach(p, core),
        crashAfterAnswer: () => faults?.answered(phase === "faults") ?? false,
        onError: (p, e) => violation(`${p.name}: unexpected error ${errorText(e)}`),
        log,
      });
      peers.push(peer);
    }
  }
  const all = groups.flat();
  const worker = new SimWorker({
    world,
    rand: rand.fork(),
    groups,
    shards,
    link,
    bug: opts.bug,
    queues,
    replicas,
    log,
  });
  // ---- the cache nodes, n1..n3 ------------------------------------------------------------------
  const cacheCfg = {
    cacheClients: cfgRand.range(1, 3),
    cacheKeys: ["ck0", "ck1", "ck2", "ck3"].slice(0, cfgRand.range(1, 4)),
  };
  const cacheCapacity = cfgRand.range(1, 4);
  const cacheRates = randomCacheRates(cfgRand);
  for (const name of ["n1", "n2", "n3"]) {
    const node = new SimCacheNode(name, randomClock(cfgRand, maxOffsetMs, maxDriftPpm), rand.fork(), {
      world,
      worker,
      links: cacheLinks,
      capacity: cacheCapacity,
      leaseMs: cacheLeaseMs,
      maxDriftPpm,
      bug: opts.bug,
      crashAfterAnswer: () => faults?.nodeAnswered(phase === "faults") ?? false,
      log,
    });
    cacheNodes.set(name, node);
  }
  const nodes = [...cacheNodes.values()];
  // Only a cache node's own events (its calls, their answers, orders, clients' requests) run its
  // code: no other event can add or change a line, and time only ends S leases.
  world.afterEvent = (actor) => {
    if (actor instanceof SimCacheNode) cache.coherence(nodes);
  };
  const workload = new Workload(
    { ...workloadCfg, ...cacheCfg },
    {
      world,
      rand: rand.fork(),
      worker,
      locks,
      linear,
      queues,
      cache,
      cacheNodes: nodes,
      phase: () => phase,
      quiet: () => quiet,
      log,
      onError: (e) => violation(`client: ${errorText(e)}`),
    },
  );
  const stop = () => violations.length > 0;

  // ---- setup: every queue keeps its messages (no dead-lettering: a DLQ would hide deliveries) ---
  for (const q of workloadCfg.queues) {
    let done = false;
    void (async () => {
      while (!(await worker.configure(q, 1_000_000))) await world.sleep(100);
      done = true;
    })();
    await world.run(world.now + 30_000, () => done || stop());
  }

  // ---- phase 1: faults ------------------------------------------------------------------------
  const injector = new Faults(faultRand, rates, groups, nets, { maxOffsetMs, maxDriftPpm }, log, {
    nodes,
    links: cacheLinks,
    rates: cacheRates,
    keyGroups: cacheCfg.cacheKeys.map((k) => worker.groupOf(k)),
  });
  faults = injector;
  const faultStep = () => {
    if (phase !== "faults") return;
    injector.step();
    world.after(100, faultStep);
  };
  const sampleStep = () => {
    for (const [g, peers] of groups.entries()) replicas.sample(g, peers);
    if (phase !== "done") world.after(2500, sampleStep);
  };
  world.after(100, faultStep);
  world.after(2500, sampleStep);
  workload.start();
  const faultEnd = world.now + faultMs;
  await world.run(faultEnd, stop);

  // ---- phase 1b: a quiet spell under faults (idle groups quiesce), a leader crashed or cut off while quiet, then requests again
  quiet = true;
  log(() => "quiet spell");
  const quietMs = quietRand.range(3000, 12_000);
  for (const [g, peers] of groups.entries()) {
    if (!quietRand.chance(1, 2)) continue;
    const crash = quietRand.chance(1, 2);
    world.after(quietRand.range(1000, quietMs), () => {
      const leader = peers.find((p) => p.up && p.core?.replica.isLeader());
      if (leader === undefined || phase !== "faults") return;
      quietCounts.quietFaults++;
      if (leader.core?.replica.isQuiesced()) quietCounts.quietFaultsOnQuiesced++;
      if (crash) leader.crash("while quiet");
      else {
        const rest = peers.filter((p) => p !== leader).map((p) => p.id);
        (nets[g] as PeerNetwork).partition([[leader.id], rest], false);
        log(() => `g${g} leader ${leader.name} cut off while quiet`);
      }
    });
  }
  await world.run(world.now + quietMs, stop);
  quiet = false;
  await world.run(world.now + quietRand.range(500, 3000), stop);

  // ---- phase 2: heal; every group must commit under a leader --------------------------------------
  phase = "drain";
  worker.faulty = false;
  injector.healAll((p) => world.resume(p));
  log(() => "heal all: liveness, then drain");
  const healedAt = world.now;
  const committing = (g: number) =>
    (groups[g] as SimPeer[]).some((p) => {
      const raft = p.core?.replica.raw.raft;
      if (raft?.role !== "leader") return false;
      const first = replicas.firstOfTerm(g, raft.term);
      return first !== undefined && raft.log.applied >= first;
    });
  const live = () => groups.every((_, g) => committing(g));
  await world.run(healedAt + LIVENESS_MS, () => live() || stop());
  if (!live() && !stop()) {
    const stuck = groups.flatMap((_, g) => (committing(g) ? [] : [`g${g}`]));
    violation(`liveness: ${stuck.join(", ")} had no leader that committed within ${LIVENESS_MS} ms of healing`);
  }
  const liveAfter = world.now - healedAt;

  // ---- phase 2b: quiet after healing: every group quiesces; then a leader may crash, and a request to any peer is served in time
  if (quiesce && !stop()) {
    quiet = true;
    const quietSince = world.now;
    const seenQuiet = new Set<number>();
    const allQuiet = (g: number) => (groups[g] as SimPeer[]).every((p) => p.core?.replica.isQuiesced() === true);
    const poll = () => {
      for (let g = 0; g < groups.length; g++) if (allQuiet(g)) seenQuiet.add(g);
      if (seenQuiet.size < groups.length && world.now < quietSince + QUIESCE_MS) world.after(10, poll);
    };
    poll();
    await world.run(quietSince + QUIESCE_MS, () => seenQuiet.size === groups.length || stop());
    if (seenQuiet.size < groups.length && !stop()) {
      const awake = groups.flatMap((_, g) => (seenQuiet.has(g) ? [] : [`g${g}`]));
      violation(`quiescence: ${awake.join(", ")} never quiesced within ${QUIESCE_MS} ms of healing with no traffic`);
    }
    quietCounts.quiescedWithinMs = world.now - quietSince;
    // Quiet for a while more (let the quiet last), then a leader dies (or not), then one request per group.
    await world.run(world.now + quietRand.range(0, 3000), stop);
    const crashed: SimPeer[] = [];
    const probes = groups.map(async (peers, g) => {
      const leader = peers.find((p) => p.up && p.core?.replica.isLeader());
      if (leader !== undefined && quietRand.chance(1, 2)) {
        leader.crash("while quiet, before a request");
        crashed.push(leader);
        quietCounts.wakeProbesLeaderDown++;
      }
      const live = peers.filter((p) => p.up);
      const resource = resourceOf(g, (k) => worker.groupOf(k));
      const started = world.now;
      const sendsBefore = peers.reduce((n, p) => n + p.sends, 0);
      let next = quietRand.pick(live);
      for (let attempt = 0; world.now < started + WAKE_MS && !stop(); attempt++) {
        const reply = await next.lock({ op: "view", resource }, `wake-probe-${g}-${attempt}`);
        if (reply.ok) {
          quietCounts.wakeProbes++;
          quietCounts.wakeMaxMs = Math.max(quietCounts.wakeMaxMs, world.now - started);
          const sends = peers.reduce((n, p) => n + p.sends, 0) - sendsBefore;
          quietCounts.wakeMaxSends = Math.max(quietCounts.wakeMaxSends, sends);
          log(() => `g${g} wake probe served by ${answeredBy.get(reply.value) ?? "?"} after ${world.now - started} ms`);
          return;
        }
        const hint = reply.error === "not-leader" ? reply.leader : 0;
        const hinted = peers.find((p) => p.id === hint && p.up);
        next = hinted ?? quietRand.pick(live);
        await world.sleep(50);
      }
      if (!stop()) violation(`liveness after quiet: g${g} did not serve a request within ${WAKE_MS} ms`);
    });
    let done = 0;
    for (const p of probes) void p.then(() => done++);
    await world.run(world.now + WAKE_MS + 1000, () => done === probes.length || stop());
    for (const p of crashed) p.restart();
    quiet = false;
  }

  // ---- phase 3: drain the queues ----------------------------------------------------------------
  const empty = () =>
    groups.every((_, g) => replicas.referenceQueues(g).depths(Number.MAX_SAFE_INTEGER).size === 0) &&
    queues.pending === 0 &&
    workload.running <= workloadCfg.consumers;
  await world.run(world.now + DRAIN_MS, () => empty() || stop());
  const drainMs = world.now - healedAt - liveAfter;

  // ---- phase 4: the cache: no request in flight, then every key read on every node ------------------
  const cacheIdle = () =>
    nodes.every((n) => n.serving.size === 0 && n.calls === 0) && all.every((p) => p.cacheOps === 0);
  await world.run(world.now + CACHE_IDLE_MS, () => cacheIdle() || stop());
  if (!cacheIdle() && !stop()) {
    const busy = [
      ...nodes
        .filter((n) => n.serving.size > 0 || n.calls > 0)
        .map((n) => `${n.name} (${n.serving.size} served, ${n.calls} calls)`),
      ...all.filter((p) => p.cacheOps > 0).map((p) => `${p.name} (${p.cacheOps} directory ops)`),
    ];
    violation(`cache liveness: requests still in flight ${CACHE_IDLE_MS} ms after the drain: ${busy.join(", ")}`);
  }
  if (!stop()) {
    let finished = false;
    void cache
      .finalReads(
        cacheCfg.cacheKeys,
        nodes,
        (node, key) => worker.cacheCall(node, (x) => x.get(key)),
        () => world.sleep(200),
      )
      .then(
        (found) => {
          for (const v of found) violation(v);
          finished = true;
        },
        (e) => violation(`final reads: ${errorText(e)}`),
      );
    await world.run(world.now + CACHE_IDLE_MS, () => finished || stop());
    if (!finished && !stop()) violation(`cache liveness: the final reads did not finish within ${CACHE_IDLE_MS} ms`);
  }
  phase = "done";
  for (const [g, peers] of groups.entries()) replicas.sample(g, peers, true);
  let linearUnknown = false;
  let cacheUnknown = false;
  if (!stop()) {
    locks.finish(world.now);
    queues.finish();
    const lin = linear.check((resource) => worker.groupOf(resource));
    for (const v of lin.violations) violation(v);
    linearUnknown = lin.unknown;
    const cacheLin = cache.check((id) => nodes.some((n) => n.done.has(id)) || replicas.cacheApplied.has(id));
    for (const v of cacheLin.violations) violation(v);
    cacheUnknown = cacheLin.unknown;
  }

  return {
    seed: opts.seed,
    steps: world.events,
    violations,
    trace,
    stats: {
      groups: groupCount,
      peers: all.length,
      shards,
      simMs: world.now,
      ...injector.counts,
      maxOffsetMs,
      maxDriftPpm,
      chunkUnits,
      liveAfterMs: liveAfter,
      drainMs,
      calls: worker.calls,
      ...locks.counts,
      ...queues.counts,
      ...workload.counts,
      comparisons: replicas.comparisons,
      linearOps: linear.operations,
      linearUnknown: linearUnknown ? 1 : 0,
      cacheLeaseMs,
      cacheCapacity,
      ...cache.counts,
      cacheOrders: orderCounts.orders,
      cacheOrdersFailed: orderCounts.ordersFailed,
      cacheLateGrants: nodes.reduce((n, x) => n + x.lateGrants, 0),
      ...Object.fromEntries(
        (["evictions", "invalidations", "writebacks", "updates"] as const).map((k) => [
          `cache${k[0]?.toUpperCase()}${k.slice(1)}`,
          nodes.reduce((n, x) => n + x.stats()[k], 0),
        ]),
      ),
      cacheUnknown: cacheUnknown ? 1 : 0,
      ...quietCounts,
      alarms: all.reduce((n, p) => n + p.alarms, 0),
      youngEmpty: replicas.youngEmpty,
      youngReceives: replicas.youngReceives,
      suspects: replicas.suspects.length,
      committed: groups.reduce((n, _, g) => n + replicas.committed(g).length, 0),
    },
  };
}

/** A lock resource on group `g`. */
function resourceOf(g: number, groupOf: (key: string) => number): string {
  for (let i = 0; ; i++) if (groupOf(`quiet${i}`) === g) return `quiet${i}`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.message}${e.stack ? ` @ ${e.stack.split("\n")[1]?.trim()}` : ""}` : String(e);
}
