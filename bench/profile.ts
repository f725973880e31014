/**
 * npx tsx bench/profile.ts [--nodes 3] [--seconds 10] [--concurrency 16] [--interval-us 250]
 *
 * Where a lock operation's time goes. Starts an N-node multi-process cluster (bench/nodes.ts) with an
 * inspector port per node (INSPECTOR_PORT, which scripts/node.ts hands to Miniflare), runs the locks
 * scenario against it (round-robin over the nodes), and meanwhile takes a V8 CPU profile of every
 * node's isolates over the inspector protocol (Profiler.start/stop on a WebSocket): `core:user:`, the
 * project's Worker and its Durable Objects (one isolate), and `core:entry`, Miniflare's entry Worker
 * that every HTTP request passes through first. Self time is mapped through the bundle's source map
 * to the project's files and summed by category. Beside it, the CPU time each process used (from
 * /proc: workerd and its node launcher per node, and this client), per lock op.
 */
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { request, WebSocket } from "undici";
import { Client } from "./http.js";
import { runPhase } from "./load.js";
import { locks } from "./locks.js";
import { LocalCluster } from "./nodes.js";
import { freePort, waitReady } from "./server.js";
import { fmt, table } from "./stats.js";

const ROOT = resolve(import.meta.dirname, "..");
const BUNDLE = join(ROOT, "dist", "node", "worker", "index.js");

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "16" },
    "interval-us": { type: "string", default: "250" },
    isolates: { type: "string", default: "core:user:" },
  },
});
/** The isolates profiled on each node, by inspector target id. */
const TARGETS = values.isolates.split(",");
const nodes = Number(values.nodes);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const intervalUs = Number(values["interval-us"]);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** A minimal Chrome DevTools Protocol session on one inspector target. */
class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { done: (v: unknown) => void; fail: (e: Error) => void }>();
  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (event) => {
      const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (waiter === undefined || msg.id === undefined) return;
      this.pending.delete(msg.id);
      if (msg.error) waiter.fail(new Error(msg.error.message));
      else waiter.done(msg.result);
    });
  }

  static connect(url: string): Promise<Inspector> {
    return new Promise((done, fail) => {
      const ws = new WebSocket(url);
      ws.addEventListener("open", () => done(new Inspector(ws)), { once: true });
      ws.addEventListener("error", () => fail(new Error(`cannot open ${url}`)), { once: true });
    });
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((done, fail) => {
      this.pending.set(id, { done: done as (v: unknown) => void, fail });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Category of a piece of the project's source (a path from the source map). */
function categoryOfSource(source: string): string {
  const path = source.replace(/^.*?(?=(workers|objects|shared|node_modules)\/)/, "");
  const lib = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  if (lib !== undefined)
    return lib === "hono" ? "Worker: Hono router" : lib === "zod" ? "Worker: zod validation" : `library: ${lib}`;
  if (path.startsWith("workers/node/")) return "node-to-node RPC (workers/node)";
  if (path.startsWith("workers/groups")) return "Worker: forward to group (workers/groups.ts)";
  if (path.startsWith("workers/")) return "Worker: routes, auth, problems (workers/)";
  if (path.startsWith("objects/sqlite-storage")) return "SQLite storage layer (objects/sqlite-storage.ts)";
  if (path.startsWith("objects/raft-peer")) return "Raft peer DO (objects/raft-peer.ts)";
  if (path.startsWith("objects/")) return `DO: ${path}`;
  if (path.startsWith("shared/raft/")) return "Raft (shared/raft)";
  if (path.startsWith("shared/replica/")) return "replica host loop (shared/replica)";
  if (path.startsWith("shared/locks/")) return "lock state machine: apply (shared/locks)";
  if (path.startsWith("shared/node/")) return "node-to-node RPC (shared/node)";
  if (path.startsWith("shared/metrics/")) return "metrics (shared/metrics)";
  if (path.startsWith("shared/")) return `shared/${path.split("/")[1]}`;
  return `other: ${path}`;
}

/** Category of one profile node: V8's pseudo-frames, workerd's built-ins (native code called from JS), or a source file. */
function categorize(node: ProfileNode, target: string, map: SourceMap | undefined): string {
  const { functionName, url, lineNumber, columnNumber } = node.callFrame;
  if (functionName === "(idle)") return "(idle)";
  if (functionName === "(program)") return "(program): workerd native, outside any JS frame";
  if (functionName === "(garbage collector)") return "V8 garbage collector";
  if (functionName === "(root)") return "(root)";
  if (target === "core:entry") return "Miniflare entry Worker (HTTP hop in front of the Worker)";
  if (url === "") return `runtime built-in: ${functionName || "(anonymous)"}`;
  if (map !== undefined && url.endsWith("index.js")) {
    const entry = map.findEntry(lineNumber, columnNumber) as { originalSource?: string };
    if (entry.originalSource) return categoryOfSource(entry.originalSource);
  }
  return `other: ${url.split("/").pop()}`;
}

/** The brief's coarse split: which part of a lock op's path a category belongs to. */
function bucketOf(category: string): string {
  if (category.startsWith("Miniflare entry")) return "Miniflare entry Worker (HTTP hop)";
  if (category.startsWith("Worker:")) return "Worker (routing, auth, validation)";
  if (/RPC|: (fetch|sign|verify|Response|text|json|encode|URL|Request|Headers|AbortController|timeout)$/.test(category))
    return "RPC/HTTP hops (fetch, signing, bodies)";
  if (/Raft|replica|: (setAlarm|set scheduledTime|setTimeout|clearTimeout|idFromName)$/.test(category))
    return "Raft (log, replication, timers, DO plumbing)";
  if (/SQLite|: (exec|transactionSync|set kv|get|sync|toArray|one|raw)$/.test(category))
    return "SQLite (storage calls)";
  if (category.startsWith("lock state machine")) return "apply (lock state machine)";
  if (category.startsWith("metrics")) return "metrics";
  if (category.startsWith("V8 garbage")) return "GC";
  if (category.startsWith("(program)")) return "(program): native, outside JS";
  return "other";
}

/** Self milliseconds per profile node id, from the samples and their time deltas. */
function selfTimes(profile: Profile): Map<number, number> {
  const times = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // Each delta is the time before its sample; attribute the next one's delta to this sample.
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    const id = samples[i] as number;
    times.set(id, (times.get(id) ?? 0) + dt);
  }
  return times;
}

/** utime + stime of a process, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function targetsOf(port: number): Promise<{ id: string; webSocketDebuggerUrl: string }[]> {
  const res = await request(`http://127.0.0.1:${port}/json/list`);
  return (await res.body.json()) as { id: string; webSocketDebuggerUrl: string }[];
}

async function main(): Promise<void> {
  const inspectorPorts = new Map<string, number>();
  for (let i = 1; i <= nodes; i++) inspectorPorts.set(`p${i}`, await freePort());
  console.error(`starting a ${nodes}-node cluster with an inspector per node ...`);
  const cluster = await LocalCluster.start(nodes, {}, (id) => ({ INSPECTOR_PORT: String(inspectorPorts.get(id)) }));
  const client = new Client(cluster.origins(), concurrency);
  const sessions: { node: string; target: string; inspector: Inspector }[] = [];
  try {
    await Promise.all(cluster.origins().map((o) => waitReady(o)));
    // Warm up unprofiled (first requests start the Durable Objects and compile the bundle).
    await runPhase(locks.iteration?.(client) ?? (() => Promise.resolve()), {
      concurrency,
      seconds: 2,
      warmupSeconds: 0,
    });

    for (const [node, port] of inspectorPorts) {
      const list = await targetsOf(port);
      for (const target of TARGETS) {
        const t = list.find((x) => x.id === target);
        if (t === undefined) throw new Error(`${node}: no inspector target ${target} (have ${list.map((x) => x.id)})`);
        const inspector = await Inspector.connect(t.webSocketDebuggerUrl);
        await inspector.send("Profiler.enable");
        await inspector.send("Profiler.setSamplingInterval", { interval: intervalUs });
        sessions.push({ node, target, inspector });
      }
    }
    const procs = [...cluster.nodes.values()].flatMap((n) => {
      const launcher = n.child.pid as number;
      return [
        { name: `${n.id} workerd`, pids: childrenOf(launcher) },
        { name: `${n.id} node launcher`, pids: [launcher] },
      ];
    });
    const cpuOf = (pids: number[]) => pids.reduce((s, p) => s + cpuMs(p), 0);
    await Promise.all(sessions.map((s) => s.inspector.send("Profiler.start")));
    const before = procs.map((p) => cpuOf(p.pids));
    const clientBefore = process.cpuUsage();
    const rec = await runPhase(locks.iteration?.(client) ?? (() => Promise.resolve()), {
      concurrency,
      seconds,
      warmupSeconds: 0,
    });
    const clientCpu = process.cpuUsage(clientBefore);
    const after = procs.map((p) => cpuOf(p.pids));
    const profiles = await Promise.all(
      sessions.map(async (s) => ({
        ...s,
        profile: (await s.inspector.send<{ profile: Profile }>("Profiler.stop")).profile,
      })),
    );
    const ops = rec.summary(seconds).count;
    const errors = rec.errorCount();

    const map = (() => {
      try {
        return new SourceMap(JSON.parse(readFileSync(`${BUNDLE}.map`, "utf8")));
      } catch {
        console.error(`no source map at ${BUNDLE}.map: the project's code is not split by file`);
        return undefined;
      }
    })();
    const byCategory = new Map<string, number>();
    const byFunction = new Map<string, number>();
    const perSession: string[][] = [];
    for (const { node: nodeId, target, profile } of profiles) {
      const nodesById = new Map(profile.nodes.map((n) => [n.id, n]));
      const split = { js: 0, program: 0, idle: 0 };
      for (const [id, ms] of selfTimes(profile)) {
        const node = nodesById.get(id);
        if (node === undefined) continue;
        const category = categorize(node, target, map);
        if (category === "(idle)" || category === "(root)") split.idle += ms;
        else if (category.startsWith("(program)")) split.program += ms;
        else split.js += ms;
        byCategory.set(category, (byCategory.get(category) ?? 0) + ms);
        if (!category.startsWith("(")) {
          const fn = `${node.callFrame.functionName || "(anonymous)"} [${category}]`;
          byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
        }
      }
      const wall = (profile.endTime - profile.startTime) / 1000;
      perSession.push([nodeId, target, fmt(wall), fmt(split.js), fmt(split.program), fmt(split.idle)]);
    }

    const summary = rec.summary(seconds);
    console.log(
      `${nodes}-node cluster, locks at c=${concurrency} for ${seconds} s: ${fmt(summary.perSecond)} ops/s ` +
        `(p50 ${fmt(summary.p50, 1)} ms), ${ops} ops, ${errors} errors; ${cpus().length} CPUs, ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(" ")} (other work on the machine included)`,
    );

    const cpuRows = procs.map((p, i) => {
      const ms = (after[i] ?? 0) - (before[i] ?? 0);
      return [p.name, fmt(ms), fmt((1000 * ms) / ops, 0), `${fmt((100 * ms) / (seconds * 1000))}%`];
    });
    const clientMs = (clientCpu.user + clientCpu.system) / 1000;
    cpuRows.push([
      "client (this process)",
      fmt(clientMs),
      fmt((1000 * clientMs) / ops, 0),
      `${fmt((100 * clientMs) / (seconds * 1000))}%`,
    ]);
    const totalMs = cpuRows.reduce((s, r) => s + Number(r[1]), 0);
    cpuRows.push([
      "total",
      fmt(totalMs),
      fmt((1000 * totalMs) / ops, 0),
      `${fmt((100 * totalMs) / (seconds * 1000))}%`,
    ]);
    console.log(`\nCPU time by process over the profiled run (/proc utime+stime; 100% = one core):\n`);
    console.log(table(["process", "CPU ms", "CPU µs per op", "of one core"], cpuRows));

    console.log("\nper isolate: wall ms of its profile, and its samples' self time in JS, (program) and (idle):\n");
    console.log(table(["node", "isolate", "wall ms", "JS ms", "(program) ms", "(idle) ms"], perSession));

    const busy = [...byCategory].filter(([c]) => c !== "(idle)" && c !== "(root)");
    const busyMs = busy.reduce((s, [, ms]) => s + ms, 0);
    const rows = busy
      .sort((a, b) => b[1] - a[1])
      .map(([c, ms]) => [c, fmt(ms), fmt((1000 * ms) / ops), `${fmt((100 * ms) / busyMs, 1)}%`]);
    console.log(
      `\nV8 CPU profile, self time over all nodes' isolates (${TARGETS.join(", ")}), sampled every ${intervalUs} µs:\n`,
    );
    console.log(table(["category", "self ms", "µs per op", "share"], rows));
    console.log(`  (idle): ${fmt(byCategory.get("(idle)") ?? 0)} ms, not counted`);

    const buckets = new Map<string, number>();
    for (const [c, ms] of busy) buckets.set(bucketOf(c), (buckets.get(bucketOf(c)) ?? 0) + ms);
    console.log("\nthe same, by part of the path:\n");
    console.log(
      table(
        ["part", "self ms", "µs per op", "share"],
        [...buckets]
          .sort((a, b) => b[1] - a[1])
          .map(([b, ms]) => [b, fmt(ms), fmt((1000 * ms) / ops), `${fmt((100 * ms) / busyMs, 1)}%`]),
      ),
    );

    const top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25);
    console.log(`\ntop functions by self time:\n`);
    console.log(
      table(
        ["function [category]", "self ms", "share"],
        top.map(([f, ms]) => [f, fmt(ms), `${fmt((100 * ms) / busyMs, 1)}%`]),
      ),
    );
  } finally {
    for (const s of sessions) s.inspector.close();
    await client.close();
    await sleep(100);
    await cluster.stop();
  }
}

await main();
