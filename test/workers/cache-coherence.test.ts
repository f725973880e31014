// Coherence of the MESI cache through its HTTP routes (shared/API.md "Cache"), under a seeded random
// workload of several concurrent clients on every cache node, with and without cache-node faults:
// - every key's history of GET/PUT/DELETE is linearizable (a register with delete: 404 = absent;
//   a 503 GET is dropped, a 503 PUT or DELETE may have taken effect or not);
// - at every quiescent point (no request in flight) the nodes' own listings obey MESI: at most one
//   node holds a key in M or E, and never while another node holds it in S;
// plus directed scenarios: silent M lines across crashes (also writes in flight at the crash), a node
// cut off in S (served only until its lease ends) or in M (others answer 503, never a stale value), a
// node's own DELETE racing an update-mode push to it, and write-then-read on every node.
// Workloads print their seed and a summary; a failure prints the offending key's whole history.
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { cacheSettings } from "../../shared/cluster";
import { Rand } from "../../shared/raft/rand";
import {
  checkOperations,
  isPending,
  type Model,
  type Operation,
  type StepResult,
} from "../../shared/sim/linearizability";
import { groupOf } from "../../workers/groups";
import { call, clusterGroups, get, post, ready, sleep, waitFor } from "./client";

const SEED = 0xcac4e;
const { nodes: NODE_COUNT, leaseMs: LEASE_MS } = cacheSettings(env);
const NODES = Array.from({ length: NODE_COUNT }, (_, i) => `n${i + 1}`);

type LineState = "M" | "E" | "S";
type Propagation = "invalidate" | "update";

// ---------------------------------------------------------------------------------------------
// The sequential model: one register per key, absent (null) until written, with DELETE answering
// whether there was a value. Values are JSON texts (unique per PUT in a run).

type CacheInput =
  | { key: string; node: string; op: "get" }
  | { key: string; node: string; op: "put"; value: string }
  | { key: string; node: string; op: "delete" };

type CacheOutput = { type: "value"; value: string | null } | { type: "stored" } | { type: "deleted"; existed: boolean };

type CacheOperation = Operation<CacheInput, CacheOutput>;
type RegisterState = string | null;

function cacheStep(
  state: RegisterState,
  input: CacheInput,
  output: CacheOutput | undefined,
): StepResult<RegisterState> {
  switch (input.op) {
    case "get":
      return { ok: output === undefined || (output.type === "value" && output.value === state), state };
    case "put":
      return { ok: output === undefined || output.type === "stored", state: input.value };
    case "delete":
      return {
        ok: output === undefined || (output.type === "deleted" && output.existed === (state !== null)),
        state: null,
      };
  }
}

function describeCacheOp(input: CacheInput, output: CacheOutput | undefined): string {
  const head =
    input.op === "put" ? `put(${input.key}, ${input.value})@${input.node}` : `${input.op}(${input.key})@${input.node}`;
  if (output === undefined) return `${head} -> ?`;
  if (output.type === "value") return `${head} -> ${output.value ?? "absent"}`;
  if (output.type === "deleted") return `${head} -> existed=${output.existed}`;
  return `${head} -> stored`;
}

/** Checked one key at a time; GETs without an answer are dropped (they change nothing). */
const cacheModel: Model<RegisterState, CacheInput, CacheOutput> = {
  init: () => null,
  step: cacheStep,
  key: (s) => (s === null ? "N" : `V${s}`),
  partition(history) {
    const byKey = new Map<string, CacheOperation[]>();
    for (const op of history) {
      if (op.input.op === "get" && isPending(op)) continue;
      const list = byKey.get(op.input.key) ?? [];
      list.push(op);
      byKey.set(op.input.key, list);
    }
    return [...byKey.values()];
  },
  describeOperation: describeCacheOp,
};

/** One node's listing as GET /v1/cache/nodes/{node} answers it. */
interface NodeLines {
  node: string;
  lines: { key: string; state: LineState }[];
}

/** MESI across nodes: at most one node lists a key in M or E, and then no other node lists it in S. */
function mesiViolations(infos: readonly NodeLines[]): string[] {
  const holders = new Map<string, string[]>();
  for (const { node, lines } of infos) {
    for (const { key, state } of lines) holders.set(key, [...(holders.get(key) ?? []), `${node}:${state}`]);
  }
  const out: string[] = [];
  for (const [key, list] of holders) {
    const owners = list.filter((h) => h.endsWith(":M") || h.endsWith(":E"));
    if (owners.length > 1) out.push(`${key} held in M/E by several nodes: ${list.join(" ")}`);
    else if (owners.length === 1 && list.length > 1) out.push(`${key} held in M/E beside S: ${list.join(" ")}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recording a history through the routes.

type Reply = Awaited<ReturnType<typeof call>>;

/** One request as a client saw it. */
interface Rec {
  clientId: number;
  input: CacheInput;
  propagation?: Propagation;
  /** Logical times (one counter for the whole history); `ret` stays Infinity for an unknown outcome. */
  call: number;
  ret: number;
  /** Wall-clock times in this isolate. */
  calledAt: number;
  returnedAt?: number;
  answered: boolean;
  status?: number;
  /** A 503's detail. */
  detail?: string;
  output?: CacheOutput;
  /** For a GET that answered 200: the line state and whether it was a hit. */
  state?: LineState;
  hit?: boolean;
}

class History {
  readonly recs: Rec[] = [];
  /** Answers the API does not allow (not 200/404/503 as expected, malformed bodies). */
  readonly unexpected: string[] = [];
  private clock = 0;
  private readonly inFlight = new Set<Promise<void>>();

  /**
   * Sends one request and records it. Resolves with its record when it answers, or after
   * `waitMs` with the record still open (the answer, whenever it comes, is recorded then).
   */
  run(clientId: number, input: CacheInput, propagation?: Propagation, waitMs = 30_000): Promise<Rec> {
    const query = `?node=${input.node}${input.op === "put" && propagation !== undefined ? `&propagation=${propagation}` : ""}`;
    const path = `/v1/cache/${encodeURIComponent(input.key)}${query}`;
    const rec: Rec = {
      clientId,
      input,
      propagation,
      call: ++this.clock,
      ret: Infinity,
      calledAt: Date.now(),
      answered: false,
    };
    this.recs.push(rec);
    const method = input.op === "get" ? "GET" : input.op === "put" ? "PUT" : "DELETE";
    const body = input.op === "put" ? { value: JSON.parse(input.value) } : undefined;
    const done = call(method, path, body).then(
      (reply) => this.finish(rec, reply),
      () => this.finish(rec, undefined),
    );
    this.inFlight.add(done);
    void done.then(() => this.inFlight.delete(done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    return Promise.race([done, timeout]).then(() => {
      clearTimeout(timer);
      return rec;
    });
  }

  get = (clientId: number, node: string, key: string, waitMs?: number) =>
    this.run(clientId, { key, node, op: "get" }, undefined, waitMs);
  put = (clientId: number, node: string, key: string, value: string, propagation?: Propagation) =>
    this.run(clientId, { key, node, op: "put", value }, propagation);
  del = (clientId: number, node: string, key: string) => this.run(clientId, { key, node, op: "delete" });

  /** Waits until no request is in flight (including ones a client stopped waiting for). */
  async quiesce(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * The history for the checker: 503 GETs dropped, 503 (or unanswered) PUTs and DELETEs pending.
   * Pending operations that could not have changed any answer are dropped too (as if they never
   * took effect), since each one multiplies the checker's search; values are unique per run:
   * - a PUT whose value no GET returned, unless a DELETE answering `deleted: true` returned after
   *   its call (the PUT could be what that DELETE found);
   * - a DELETE, unless a GET answering 404 or a DELETE answering `deleted: false` returned after
   *   its call (it could be why they found nothing).
   */
  operations(): CacheOperation[] {
    const read = new Set<string>();
    const foundSomething: Rec[] = [];
    const foundNothing: Rec[] = [];
    for (const r of this.recs) {
      const out = r.output;
      if (out?.type === "value" && out.value !== null) read.add(`${r.input.key} ${out.value}`);
      if ((out?.type === "value" && out.value === null) || (out?.type === "deleted" && !out.existed)) {
        foundNothing.push(r);
      }
      if (out?.type === "deleted" && out.existed) foundSomething.push(r);
    }
    const after = (list: Rec[], r: Rec) => list.some((o) => o.input.key === r.input.key && o.ret > r.call);
    const ops: CacheOperation[] = [];
    for (const r of this.recs) {
      const { clientId, call, input } = r;
      if (r.output !== undefined) {
        ops.push({ clientId, call, return: r.ret, input, output: r.output });
      } else if (
        (input.op === "put" && (read.has(`${input.key} ${input.value}`) || after(foundSomething, r))) ||
        (input.op === "delete" && after(foundNothing, r))
      ) {
        ops.push({ clientId, call, return: Infinity, input, pending: true });
      }
    }
    return ops;
  }

  /** Throws with the failing key's history when the recorded history is not linearizable. */
  checkLinearizable(): { steps: number; partitions: number; ops: number; pending: number } {
    const ops = this.operations();
    // Pending writes (503s while a holder is down or cut off) make the search wide: a larger budget.
    const result = checkOperations(cacheModel, ops, { maxSteps: 10_000_000 });
    if (result.result !== "ok") {
      const bad = cacheModel.partition?.(ops)[result.partition ?? 0]?.[0]?.input.key;
      const dump = this.recs
        .filter((r) => r.input.key === bad)
        .map(
          (r) =>
            `  [${r.call}, ${r.ret}] c${r.clientId} ${describeCacheOp(r.input, r.output)}` +
            ` (${r.status ?? "no answer"}${r.state !== undefined ? ` ${r.state}${r.hit ? " hit" : ""}` : ""}` +
            `${r.propagation !== undefined ? ` ${r.propagation}` : ""}, ${r.calledAt}..${r.returnedAt ?? "?"})`,
        )
        .join("\n");
      throw new Error(`cache history is ${result.result}\n${result.explanation ?? ""}\n--- ${bad} ---\n${dump}`);
    }
    return {
      steps: result.steps,
      partitions: result.partitions,
      ops: ops.length,
      pending: ops.filter(isPending).length,
    };
  }

  count(pred: (r: Rec) => boolean): number {
    return this.recs.filter(pred).length;
  }

  private finish(rec: Rec, reply: Reply | undefined): void {
    const ret = ++this.clock;
    rec.answered = true;
    rec.returnedAt = Date.now();
    rec.status = reply?.status;
    if (reply?.status === 503) rec.detail = String(reply.json?.detail ?? "");
    if (reply === undefined || reply.status === 503) return; // unknown outcome
    const output = this.interpret(rec, reply);
    if (output === undefined) {
      this.unexpected.push(`${describeCacheOp(rec.input, undefined)} -> ${reply.status} ${JSON.stringify(reply.json)}`);
      return;
    }
    rec.output = output;
    rec.ret = ret;
  }

  private interpret(rec: Rec, { status, json }: Reply): CacheOutput | undefined {
    const { input } = rec;
    switch (input.op) {
      case "get":
        if (status === 404 && String(json?.type).split("/").pop() === "not-found") {
          return { type: "value", value: null };
        }
        if (status !== 200 || json?.key !== input.key || json?.node !== input.node || typeof json.hit !== "boolean") {
          return undefined;
        }
        if (!["M", "E", "S"].includes(json.state) || !("value" in json)) return undefined;
        rec.state = json.state;
        rec.hit = json.hit;
        return { type: "value", value: JSON.stringify(json.value) };
      case "put": {
        // A write answers M, or S after an update-mode write that gave others the value.
        const states = rec.propagation === "update" ? ["M", "S"] : ["M"];
        if (status !== 200 || json?.key !== input.key || json?.node !== input.node || !states.includes(json.state)) {
          return undefined;
        }
        return { type: "stored" };
      }
      case "delete":
        if (status !== 200 || typeof json?.deleted !== "boolean") return undefined;
        return { type: "deleted", existed: json.deleted };
    }
  }
}

/** Every node's listing now; nodes that are down (503) are left out and named. */
async function listings(): Promise<{ infos: NodeLines[]; down: string[]; errors: string[] }> {
  const replies = await Promise.all(NODES.map(async (node) => ({ node, reply: await get(`/v1/cache/nodes/${node}`) })));
  const infos: NodeLines[] = [];
  const down: string[] = [];
  const errors: string[] = [];
  for (const { node, reply } of replies) {
    if (reply.status === 503) down.push(node);
    else if (reply.status !== 200 || reply.json?.node !== node || !Array.isArray(reply.json?.lines)) {
      errors.push(`GET /v1/cache/nodes/${node} -> ${reply.status} ${JSON.stringify(reply.json)}`);
    } else infos.push({ node, lines: reply.json.lines });
  }
  return { infos, down, errors };
}

/** The MESI invariants at a quiescent point; every node must be up unless named in `mayBeDown`. */
async function quiescentViolations(label: string, mayBeDown: string[] = []): Promise<string[]> {
  const { infos, down, errors } = await listings();
  const out = [...errors, ...mesiViolations(infos)];
  for (const node of down) if (!mayBeDown.includes(node)) out.push(`${node} is down`);
  return out.map((v) => `${label}: ${v}`);
}

/** A JSON value carrying `tag` (unique per PUT), in one of a few shapes; answers its JSON text. */
function randomValue(r: Rand, tag: string): string {
  switch (r.int(4)) {
    case 0:
      return JSON.stringify(tag);
    case 1:
      return JSON.stringify({ tag, n: r.int(1000), nested: { ok: r.chance(1, 2) } });
    case 2:
      return JSON.stringify([tag, r.int(100), null]);
    default:
      return JSON.stringify({ tag, text: "x".repeat(r.int(300)) });
  }
}

/** The leader ("p2") of the Raft group that holds `key`'s directory, if there is one now. */
async function leaderOf(key: string): Promise<string | undefined> {
  const group = `g${groupOf(env, key)}`;
  return (await clusterGroups()).find((g) => g.group === group)?.leader ?? undefined;
}

async function admin(path: string, body?: unknown): Promise<void> {
  const reply = await post(path, body);
  if (reply.status !== 200) throw new Error(`POST ${path} -> ${reply.status} ${JSON.stringify(reply.json)}`);
}

const crash = (node: string) => admin(`/v1/admin/cache/${node}/crash`);
const restart = (node: string) => admin(`/v1/admin/cache/${node}/restart`);
/** Cuts `node` off from `peers` (all Raft peers when undefined); `[]` heals it. */
const partition = (node: string, peers?: string[]) =>
  admin(`/v1/admin/cache/${node}/partition`, peers === undefined ? {} : { peers });

// ---------------------------------------------------------------------------------------------
// The randomized workload.

interface Workload {
  label: string;
  seed: number;
  keys: string[];
  clients: number;
  phases: number;
  /** Operations per client per phase (at least: clients go on while the phase's fault task runs). */
  opsPerClient: number;
  propagation: Propagation | "mixed";
  /**
   * Runs alongside each phase's clients: undoes the previous phase's fault, if any, then may start
   * one that lasts into the next phase (so quiescent points fall both inside and outside faults).
   */
  fault?: (f: FaultContext) => Promise<Fault | undefined>;
}

interface FaultContext {
  r: Rand;
  phase: number;
  last: boolean;
  keys: string[];
  /** The fault in force since the previous phase, to undo first. */
  previous?: Fault;
  /** The run's history, for requests the fault task makes itself (as client 0). */
  h: History;
}

/** A fault in force: what it is, the node it took down (if any), and how to end it. */
interface Fault {
  did: string;
  down?: string;
  undo: () => Promise<void>;
}

interface WorkloadOutcome {
  history: History;
  violations: string[];
  faults: string[];
  summary: string;
}

/** Half of the operations go to the first three keys (contention), the rest anywhere. */
function pickKey(r: Rand, keys: string[]): string {
  return r.chance(1, 2) ? (keys[r.int(Math.min(3, keys.length))] as string) : r.pick(keys);
}

async function runWorkload(w: Workload): Promise<WorkloadOutcome> {
  const started = Date.now();
  const h = new History();
  const rand = new Rand(w.seed);
  const clientRands = Array.from({ length: w.clients }, () => rand.fork());
  const faultRand = rand.fork();
  const violations: string[] = [];
  const faults: string[] = [];
  const written = new Map<number, number>();

  async function client(clientId: number, r: Rand, faultActive: () => boolean): Promise<void> {
    let node = r.pick(NODES);
    let key = pickKey(r, w.keys);
    for (let i = 0; i < w.opsPerClient || faultActive(); i++) {
      if (i >= 4 * w.opsPerClient) break;
      // Some locality: a client often stays on its last node and key (hits, silent writes in M).
      if (r.chance(3, 5)) {
        node = r.pick(NODES);
        key = pickKey(r, w.keys);
      }
      const roll = r.int(100);
      let rec: Rec;
      if (roll < 50) rec = await h.get(clientId, node, key);
      else if (roll < 85) {
        const n = (written.get(clientId) ?? 0) + 1;
        written.set(clientId, n);
        const propagation = w.propagation === "mixed" ? r.pick<Propagation>(["invalidate", "update"]) : w.propagation;
        rec = await h.put(clientId, node, key, randomValue(r, `${w.label}/c${clientId}/${n}`), propagation);
      } else rec = await h.del(clientId, node, key);
      // A client backs off after a 503 (the draw is made anyway: the choices stay the seed's).
      const pause = r.int(8);
      await sleep(rec.status === 503 ? 250 : pause);
    }
  }

  let current: Fault | undefined;
  try {
    for (let phase = 0; phase < w.phases; phase++) {
      let faultActive = w.fault !== undefined;
      const faulting = (async () => {
        if (w.fault === undefined) return;
        try {
          const undo = current;
          current = undefined;
          const last = phase === w.phases - 1;
          const next = await w.fault({ r: faultRand, phase, last, keys: w.keys, previous: undo, h });
          if (next !== undefined) faults.push(`phase ${phase}: ${next.did}`);
          current = next;
        } catch (e) {
          violations.push(`phase ${phase}: a fault failed: ${String(e)}`);
        } finally {
          faultActive = false;
        }
      })();
      await Promise.all([...clientRands.map((r, i) => client(i + 1, r, () => faultActive)), faulting]);
      await h.quiesce();
      const label = `${w.label} after phase ${phase}${current !== undefined ? ` (${current.did})` : ""}`;
      violations.push(...(await quiescentViolations(label, current?.down === undefined ? [] : [current.down])));
    }
  } finally {
    await admin("/v1/admin/heal");
    for (const node of NODES) await restart(node);
  }
  await h.quiesce();

  // Converged: each key reads the same on every node (retrying 503s a while), then MESI once more.
  for (const key of w.keys) {
    const seen: string[] = [];
    for (const node of NODES) {
      const rec = await waitFor(
        async () => {
          const r = await h.get(0, node, key);
          return r.output !== undefined ? r : undefined;
        },
        15_000,
        `${key} on ${node} after the workload`,
      );
      seen.push(rec.output?.type === "value" ? (rec.output.value ?? "absent") : "?");
    }
    if (new Set(seen).size !== 1) violations.push(`${key} did not converge: ${NODES.map((n, i) => `${n}=${seen[i]}`)}`);
  }
  violations.push(...(await quiescentViolations(`${w.label} at the end`)));
  await h.quiesce();

  const checkStarted = Date.now();
  const checked = h.checkLinearizable();
  const ops = (op: string, pred: (r: Rec) => boolean = () => true) => h.count((r) => r.input.op === op && pred(r));
  const summary = [
    `${w.label} (seed ${w.seed.toString(16)}): ${h.recs.length} requests over ${w.keys.length} keys in groups ` +
      `${[...new Set(w.keys.map((k) => groupOf(env, k)))].sort().join(",")}; ${w.clients} clients, ${w.phases} phases`,
    `  get: ${ops("get", (r) => r.output !== undefined && (r.output as { value: unknown }).value !== null)} values ` +
      `(${ops("get", (r) => r.hit === true)} hits; M ${ops("get", (r) => r.state === "M")}, E ${ops("get", (r) => r.state === "E")}, ` +
      `S ${ops("get", (r) => r.state === "S")}), ${ops("get", (r) => r.output?.type === "value" && r.output.value === null)} absent, ` +
      `${ops("get", (r) => r.status === 503)} 503; put: ${ops("put", (r) => r.output !== undefined)} stored, ` +
      `${ops("put", (r) => r.output === undefined)} unknown; delete: ${ops("delete", (r) => r.output !== undefined)} answered, ` +
      `${ops("delete", (r) => r.output === undefined)} unknown`,
    `  faults: ${faults.join("; ") || "none"}`,
    `  ${Date.now() - started}ms; checker: ${checked.ops} operations (${checked.pending} pending), ` +
      `${checked.steps} steps over ${checked.partitions} keys in ${Date.now() - checkStarted}ms`,
  ].join("\n");
  return { history: h, violations, faults, summary };
}

/** `count` keys named `<prefix>-<i>`, checked to span at least two Raft groups. */
function keysFor(prefix: string, count: number): string[] {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  if (new Set(keys.map((k) => groupOf(env, k))).size < 2) throw new Error(`${prefix}: keys all in one group`);
  return keys;
}

/** The workload's own sanity: it did what it claims (values read, both line kinds seen, writes stored). */
function expectExercised(o: WorkloadOutcome): void {
  const h = o.history;
  expect(h.unexpected).toEqual([]);
  expect(o.violations).toEqual([]);
  expect(h.count((r) => r.input.op === "put" && r.output !== undefined)).toBeGreaterThan(20);
  expect(h.count((r) => r.input.op === "delete" && r.output?.type === "deleted" && r.output.existed)).toBeGreaterThan(
    0,
  );
  expect(h.count((r) => r.hit === true)).toBeGreaterThan(0);
  expect(h.count((r) => r.state === "S")).toBeGreaterThan(0);
  expect(h.count((r) => r.state === "M")).toBeGreaterThan(0);
}

/** A random time into the phase, the fault in force since the previous one (if any) ends. */
async function endPrevious({ r, previous }: FaultContext): Promise<void> {
  await sleep(r.range(100, 700));
  if (previous === undefined) return;
  await previous.undo();
  await sleep(r.range(100, 500));
}

/**
 * Crashes: each phase a random time in, the node crashed in the previous phase (if any) restarts,
 * and (but in the last phase) another random node crashes, to stay down across the quiescent point.
 * Just before, the victim writes two keys twice: the second write is silent (M, no directory)
 * unless another client got in between, so the crash usually takes the only copy of a value.
 */
async function crashes(ctx: FaultContext): Promise<Fault | undefined> {
  const { r, phase, last, keys, h } = ctx;
  await endPrevious(ctx);
  if (last) return undefined;
  const victim = r.pick(NODES);
  const written: string[] = [];
  for (const [j, key] of [r.pick(keys), r.pick(keys)].entries()) {
    for (let i = 0; i < 2; i++) {
      const rec = await h.put(0, victim, key, randomValue(r, `wl-crash/${victim}/p${phase}/${j}/${i}`));
      if (i === 1 && rec.output !== undefined) written.push(key);
    }
  }
  await crash(victim);
  return {
    did: `crash ${victim} (just wrote ${written.join(", ") || "nothing"})`,
    down: victim,
    undo: () => restart(victim),
  };
}

/**
 * Partitions: each phase a random time in, the previous cut (if any) heals; then (but in the last
 * phase) a random node is cut off from the leader of a random key's group, a cut that lasts across
 * the quiescent point; in phase 1, from every peer instead, healed within the phase (its misses
 * wait for the directory until then).
 */
async function partitions(ctx: FaultContext): Promise<Fault | undefined> {
  const { r, phase, last, keys } = ctx;
  await endPrevious(ctx);
  if (last) return undefined;
  const victim = r.pick(NODES);
  const key = pickKey(r, keys);
  const leader = phase === 1 ? undefined : await leaderOf(key);
  await partition(victim, leader === undefined ? undefined : [leader]);
  // Long enough for leases to run out behind the cut while the clients go on.
  await sleep(r.range(LEASE_MS, LEASE_MS + 1000));
  if (leader === undefined) {
    await partition(victim, []);
    return { did: `${victim} cut off from every peer (healed)`, undo: async () => {} };
  }
  return { did: `${victim} cut off from ${leader} (leader of ${key})`, undo: () => partition(victim, []) };
}

// ---------------------------------------------------------------------------------------------

const stored: CacheOutput = { type: "stored" };

describe("cache coherence checks (pure)", () => {
  const op = (
    clientId: number,
    c: number,
    r: number,
    input: CacheInput extends infer T ? (T extends unknown ? Omit<T, "node"> : never) : never,
    output?: CacheOutput,
  ): CacheOperation =>
    r === Infinity
      ? { clientId, call: c, return: r, input: { ...input, node: "n1" } as CacheInput, pending: true }
      : { clientId, call: c, return: r, input: { ...input, node: "n1" } as CacheInput, output };
  const read = (value: string | null): CacheOutput => ({ type: "value", value });

  it("the register model rejects a stale read after a write answered, a read of a deleted value, a wrong existed", () => {
    const stale = [
      op(1, 1, 2, { key: "k", op: "put", value: "a" }, stored),
      op(1, 3, 4, { key: "k", op: "put", value: "b" }, stored),
      op(2, 5, 6, { key: "k", op: "get" }, read("a")),
    ];
    expect(checkOperations(cacheModel, stale).result).toBe("illegal");
    const deleted = [
      op(1, 1, 2, { key: "k", op: "put", value: "a" }, stored),
      op(1, 3, 4, { key: "k", op: "delete" }, { type: "deleted", existed: true }),
      op(2, 5, 6, { key: "k", op: "get" }, read("a")),
    ];
    expect(checkOperations(cacheModel, deleted).result).toBe("illegal");
    const existed = [op(1, 1, 2, { key: "k", op: "delete" }, { type: "deleted", existed: true })];
    expect(checkOperations(cacheModel, existed).result).toBe("illegal");
    // Reads that went back and forth between two concurrent writes' values.
    const flip = [
      op(1, 1, 10, { key: "k", op: "put", value: "a" }, stored),
      op(2, 2, 11, { key: "k", op: "put", value: "b" }, stored),
      op(3, 3, 4, { key: "k", op: "get" }, read("a")),
      op(3, 5, 6, { key: "k", op: "get" }, read("b")),
      op(3, 7, 8, { key: "k", op: "get" }, read("a")),
    ];
    expect(checkOperations(cacheModel, flip).result).toBe("illegal");
  });

  it("the register model accepts concurrent writes in either order and pending writes taking effect or not", () => {
    const legal = [
      op(1, 1, 10, { key: "k", op: "put", value: "a" }, stored),
      op(2, 2, 11, { key: "k", op: "put", value: "b" }, stored),
      op(3, 3, 4, { key: "k", op: "get" }, read("b")),
      op(3, 5, 6, { key: "k", op: "get" }, read("a")),
      op(4, 12, Infinity, { key: "k", op: "put", value: "c" }),
      op(3, 13, 14, { key: "k", op: "get" }, read("a")),
      op(3, 15, 16, { key: "k", op: "get" }, read("c")),
      op(5, 17, Infinity, { key: "k", op: "delete" }),
      op(3, 18, 19, { key: "k", op: "delete" }, { type: "deleted", existed: true }),
      op(3, 20, 21, { key: "j", op: "get" }, read(null)),
    ];
    const res = checkOperations(cacheModel, legal);
    expect(res.explanation).toBeUndefined();
    expect(res.result).toBe("ok");
    expect(res.partitions).toBe(2);
  });

  it("the history keeps the pending PUTs and DELETEs a later answer may depend on, and drops the others", () => {
    const h = new History();
    const rec = (c: number, r: number, input: CacheInput, output?: CacheOutput): Rec => ({
      clientId: 1,
      input,
      call: c,
      ret: output === undefined ? Infinity : r,
      calledAt: 0,
      answered: true,
      output,
    });
    const at = { key: "k", node: "n1" };
    h.recs.push(
      rec(1, 2, { ...at, op: "put", value: "read" }), // 503, but its value was read: kept
      rec(3, 4, { ...at, op: "put", value: "unread" }), // 503, never read, a DELETE found something after: kept
      rec(5, 6, { ...at, op: "delete" }, { type: "deleted", existed: true }),
      rec(7, 8, { ...at, op: "put", value: "dropped" }), // 503, never read, no DELETE found anything after
      rec(9, 10, { ...at, op: "get" }, read("read")),
      rec(11, 12, { ...at, op: "delete" }), // 503, and a GET found nothing after: kept
      rec(13, 14, { ...at, op: "get" }), // 503: dropped
      rec(15, 16, { ...at, op: "get" }, read(null)),
      rec(17, 18, { ...at, op: "delete" }), // 503, and nothing found nothing after: dropped
      rec(19, 20, { ...at, op: "put", value: "last" }, stored),
    );
    const ops = h.operations();
    expect(
      ops.map((o) => `${o.input.op}${o.input.op === "put" ? ` ${o.input.value}` : ""}${isPending(o) ? "?" : ""}`),
    ).toEqual(["put read?", "put unread?", "delete", "get", "delete?", "get", "put last"]);
    expect(checkOperations(cacheModel, ops).result).toBe("ok");
  });

  it("the MESI check flags two owners and an owner beside a sharer, and accepts sharers alone", () => {
    const at = (node: string, ...lines: [string, LineState][]): NodeLines => ({
      node,
      lines: lines.map(([key, state]) => ({ key, state })),
    });
    expect(mesiViolations([at("n1", ["a", "M"], ["b", "S"]), at("n2", ["b", "S"]), at("n3", ["c", "E"])])).toEqual([]);
    expect(mesiViolations([at("n1", ["a", "M"]), at("n2", ["a", "E"])])).toHaveLength(1);
    expect(mesiViolations([at("n1", ["a", "E"]), at("n2", ["a", "S"]), at("n3", ["a", "S"])])).toHaveLength(1);
    expect(mesiViolations([at("n1", ["a", "S"]), at("n4", ["a", "M"])])).toHaveLength(1);
  });
});

describe("cache coherence through the routes", () => {
  beforeAll(ready, 20_000);
  afterEach(async () => {
    // Whatever a test did, leave every cache node up and connected.
    await admin("/v1/admin/heal");
    for (const node of NODES) await restart(node);
  });

  it("runs on four cache nodes with short leases", () => {
    expect(NODES).toEqual(["n1", "n2", "n3", "n4"]);
    expect(LEASE_MS).toBeLessThanOrEqual(2000);
  });

  it.each<Propagation>(["invalidate", "update"])(
    "a random workload (%s): linearizable per key, MESI at every quiescent point",
    async (propagation) => {
      const out = await runWorkload({
        label: `wl-${propagation}`,
        seed: SEED + (propagation === "update" ? 1 : 0),
        keys: keysFor(`cc-${propagation}`, 12),
        clients: 6,
        phases: 3,
        opsPerClient: 20,
        propagation,
      });
      console.log(out.summary);
      expectExercised(out);
    },
    30_000,
  );

  it("a random workload while cache nodes crash and restart: linearizable per key, MESI at every quiescent point", async () => {
    const out = await runWorkload({
      label: "wl-crash",
      seed: SEED + 2,
      keys: keysFor("cc-crash", 16),
      clients: 5,
      phases: 5,
      opsPerClient: 12,
      propagation: "mixed",
      fault: crashes,
    });
    console.log(out.summary);
    expectExercised(out);
    expect(out.faults.filter((f) => f.includes("crash"))).toHaveLength(4);
    // The crashed nodes were asked for while down.
    expect(out.history.count((r) => r.status === 503)).toBeGreaterThan(0);
  }, 40_000);

  it("a random workload while cache nodes are cut off from Raft leaders: linearizable, MESI at every quiescent point", async () => {
    const out = await runWorkload({
      label: "wl-cut",
      seed: SEED + 3,
      keys: keysFor("cc-cut", 10),
      clients: 5,
      phases: 3,
      opsPerClient: 12,
      propagation: "mixed",
      fault: partitions,
    });
    console.log(out.summary);
    expectExercised(out);
    expect(out.faults.filter((f) => f.includes("cut off"))).toHaveLength(2);
  }, 40_000);

  it("silent M lines (read miss -> E, write -> M without the directory) survive crashes of their node", async () => {
    const h = new History();
    const keys = ["cc-silent-a", "cc-silent-b", "cc-silent-c"];
    const v1 = (k: string) => JSON.stringify({ key: k, v: 1 });
    const v2 = (k: string) => JSON.stringify({ key: k, v: 2 });
    for (const key of keys) {
      expect((await h.put(0, "n1", key, v1(key))).output).toEqual(stored);
      expect((await h.get(0, "n2", key)).state).toBe("S"); // n1 and n2 share it
    }
    await sleep(LEASE_MS + 200); // every S lease has ended: the next reader is alone
    for (const key of keys) {
      const miss = await h.get(0, "n3", key);
      expect([miss.output, miss.state, miss.hit]).toEqual([{ type: "value", value: v1(key) }, "E", false]);
      expect((await h.put(0, "n3", key, v2(key))).output).toEqual(stored);
      const hit = await h.get(0, "n3", key);
      expect([hit.output, hit.state, hit.hit]).toEqual([{ type: "value", value: v2(key) }, "M", true]);
    }
    const n3 = await get("/v1/cache/nodes/n3");
    for (const key of keys) expect(n3.json.lines).toContainEqual({ key, state: "M" });

    await crash("n3");
    // The only copy of v2 is on n3: nobody may answer with the directory's v1 meanwhile.
    const whileDown = await h.get(0, "n1", keys[0] as string);
    expect(whileDown.status).toBe(503);
    expect((await h.get(0, "n3", keys[1] as string)).status).toBe(503);
    expect(await quiescentViolations("n3 down", ["n3"])).toEqual([]);
    await restart("n3");
    await crash("n3"); // twice: the dirty values are durable, not held by the restarted node's memory
    await restart("n3");

    const [a, b, c] = keys as [string, string, string];
    // a: the restarted owner asks first (it hands its value back before reading).
    for (const node of ["n3", "n1", "n2", "n4"]) {
      expect((await h.get(0, node, a)).output, `${a} on ${node}`).toEqual({ type: "value", value: v2(a) });
    }
    // b: another node asks first (the directory recalls the value from n3).
    for (const node of ["n1", "n2", "n4", "n3"]) {
      expect((await h.get(0, node, b)).output, `${b} on ${node}`).toEqual({ type: "value", value: v2(b) });
    }
    // c: a delete elsewhere sees that the key exists; then it is gone everywhere.
    expect((await h.del(0, "n4", c)).output).toEqual({ type: "deleted", existed: true });
    for (const node of NODES) {
      expect((await h.get(0, node, c)).output, `${c} on ${node}`).toEqual({ type: "value", value: null });
    }
    expect(await quiescentViolations("after the restarts")).toEqual([]);
    expect(h.unexpected).toEqual([]);
    h.checkLinearizable();
  }, 20_000);

  it("writes in flight on a node when it crashes answer 503, or their value survives the restart", async () => {
    const h = new History();
    const key = "cc-crash-inflight";
    const v = (i: number) => JSON.stringify(`${key}/${i}`);
    expect((await h.put(0, "n3", key, v(0))).output).toEqual(stored);
    expect((await h.get(0, "n2", key)).state).toBe("S"); // n2 and n3 share it
    await partition("n2"); // n2 cannot answer: a write waits out its lease
    const first = h.put(1, "n1", key, v(1)); // through the directory, waiting for n2's lease
    await sleep(50);
    const second = h.put(2, "n1", key, v(2)); // queued behind it on n1: silent once n1 holds the line in M
    await sleep(200);
    await crash("n1");
    await restart("n1");
    const answers = await Promise.all([first, second]);
    await partition("n2", []);
    const seen: (string | null)[] = [];
    for (const node of NODES) {
      const r = await h.get(0, node, key);
      seen.push(r.output?.type === "value" ? r.output.value : "?");
    }
    // A write n1 answered 200 is n1's latest value: it must not have been lost with n1's memory.
    if (answers[1].status === 200) expect(seen).toEqual(NODES.map(() => v(2)));
    else expect(new Set(seen).size, seen.join(" ")).toBe(1);
    expect(await quiescentViolations("after the restart")).toEqual([]);
    expect(h.unexpected).toEqual([]);
    h.checkLinearizable();
  }, 15_000);

  it.each<"leader" | "every peer">(["leader", "every peer"])(
    "a node in S cut off from its key's %s serves the line only until its lease ends; a writer elsewhere succeeds; no read after it returns the old value",
    async (cut) => {
      const h = new History();
      const key = `cc-lease-${cut === "leader" ? "leader" : "all"}`;
      const v1 = JSON.stringify(`${key}/1`);
      const v2 = JSON.stringify(`${key}/2`);
      expect((await h.put(0, "n1", key, v1)).output).toEqual(stored);
      let granted: Rec | undefined;
      for (const node of ["n2", "n3", "n4"]) {
        granted = await h.get(0, node, key);
        expect([granted.output, granted.state]).toEqual([{ type: "value", value: v1 }, "S"]);
      }
      const n2Grant = h.recs.find((r) => r.input.node === "n2" && r.input.op === "get") as Rec;
      const leader = await leaderOf(key);
      expect(leader).toBeDefined();
      await partition("n2", cut === "leader" ? [leader as string] : undefined);

      // n2 reads its line alone, one GET at a time, until one is not a hit (or does not answer soon),
      // or until well past its lease (a node serving longer fails below).
      const n2: Rec[] = [];
      const pollUntil = (n2Grant.returnedAt as number) + LEASE_MS + 1500;
      const polling = (async () => {
        while (Date.now() < pollUntil) {
          const r = await h.get(2, "n2", key, 500);
          n2.push(r);
          if (r.hit !== true) return;
          await sleep(100);
        }
      })();
      // Readers on the other nodes throughout the write and after it.
      let reading = true;
      const readers = ["n1", "n3", "n4"].map(async (node, i) => {
        while (reading) {
          await h.get(10 + i, node, key);
          await sleep(40);
        }
      });
      await sleep(200);
      const started = Date.now();
      const write = await h.put(9, "n3", key, v2);
      const writeMs = Date.now() - started;
      await sleep(500);
      reading = false;
      await Promise.all([polling, ...readers]);

      expect(write.output).toEqual(stored);
      // The writer waited out n2's lease at most (plus order timeouts and a commit), not forever.
      expect(writeMs).toBeLessThanOrEqual(LEASE_MS + 5000);
      // n2 served its S line while cut off, but only within the lease of its grant.
      const hits = n2.filter((r) => r.hit === true);
      expect(hits.length).toBeGreaterThan(0);
      for (const r of hits) {
        expect(r.output).toEqual({ type: "value", value: v1 });
        expect(r.calledAt).toBeLessThanOrEqual((n2Grant.returnedAt as number) + LEASE_MS + 100);
      }
      expect(n2.at(-1)?.hit).not.toBe(true);

      await partition("n2", []);
      await h.quiesce(); // n2's last miss answers once it reaches the directory again
      // No GET called after the write answered returned anything but its value (n2's included).
      const after = h.recs.filter((r) => r.input.op === "get" && r.call > write.ret && r.output !== undefined);
      expect(after.length).toBeGreaterThan(3);
      expect(after.filter((r) => r.output?.type !== "value" || r.output.value !== v2).map((r) => r.input)).toEqual([]);
      for (const node of NODES) {
        expect((await h.get(0, node, key)).output, `${key} on ${node}`).toEqual({ type: "value", value: v2 });
      }
      expect(await quiescentViolations("after the heal")).toEqual([]);
      expect(h.unexpected).toEqual([]);
      h.checkLinearizable();
    },
    25_000,
  );

  it.each<"leader" | "every peer">(["leader", "every peer"])(
    "a node holding a key in M cut off from its %s: others' requests on the key answer 503, never an old value; after the heal all nodes agree",
    async (cut) => {
      const h = new History();
      const key = `cc-owner-${cut === "leader" ? "leader" : "all"}`;
      const other = `cc-owner-other-${cut === "leader" ? "leader" : "all"}`;
      const v1 = JSON.stringify({ key, v: 1 });
      const v2 = JSON.stringify({ key, v: 2 });
      expect((await h.put(0, "n3", key, v1)).output).toEqual(stored);
      const owned = await h.get(0, "n3", key);
      expect([owned.state, owned.hit]).toEqual(["M", true]);
      const leader = await leaderOf(key);
      expect(leader).toBeDefined();
      await partition("n3", cut === "leader" ? [leader as string] : undefined);

      // The owner still serves its line and writes it alone (silently, M stays M).
      const silent = await h.put(0, "n3", key, v2);
      expect(silent.output).toEqual(stored);
      const own = await h.get(0, "n3", key);
      expect([own.output, own.state, own.hit]).toEqual([{ type: "value", value: v2 }, "M", true]);
      // Everyone else: 503, since only n3 can say what the value is.
      const others = [
        await h.get(1, "n1", key),
        await h.get(2, "n2", key),
        await h.get(4, "n4", key),
        await h.put(1, "n1", key, JSON.stringify({ key, v: "n1" })),
        await h.del(2, "n2", key),
        await h.get(4, "n4", key),
      ];
      expect(others.map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 503]);
      // Other keys are not held up by it.
      expect((await h.put(1, "n1", other, JSON.stringify(other))).output).toEqual(stored);
      expect((await h.get(2, "n2", other)).output).toEqual({ type: "value", value: JSON.stringify(other) });

      await partition("n3", []);
      await h.quiesce();
      const seen: (string | null)[] = [];
      for (const node of ["n1", "n2", "n4", "n3"]) {
        const r = await h.get(0, node, key);
        expect(r.status, `${key} on ${node} after the heal`).not.toBe(503);
        seen.push(r.output?.type === "value" ? r.output.value : "?");
      }
      expect(new Set(seen).size, `after the heal: ${seen.join(" ")}`).toBe(1);
      expect(await quiescentViolations("after the heal")).toEqual([]);
      expect(h.unexpected).toEqual([]);
      h.checkLinearizable();
    },
    20_000,
  );

  it("a node's own DELETE queued behind an update-mode PUT that pushes to it: after the DELETE answered it serves nothing older", async () => {
    const h = new History();
    const key = "cc-delete-push";
    const v = (i: number) => JSON.stringify(`${key}/${i}`);
    expect((await h.put(0, "n1", key, v(0))).output).toEqual(stored);
    expect((await h.get(0, "n4", key)).state).toBe("S"); // n1 and n4 share it
    await sleep(LEASE_MS - 400); // n4's lease nearly over: the write below waits a little for it
    expect((await h.get(0, "n2", key)).state).toBe("S");
    await partition("n4"); // n4 cannot answer: the write waits out its lease, then pushes to n1 and n2
    const write = h.put(3, "n3", key, v(1), "update");
    await sleep(100);
    const deleted = await h.del(2, "n2", key); // reaches the directory while the write waits
    expect((await write).output).toEqual(stored);
    expect(deleted.output).toEqual({ type: "deleted", existed: true });
    // The push may have reached n2 while its DELETE was on its way; the DELETE came after it.
    expect((await h.get(2, "n2", key)).output).toEqual({ type: "value", value: null });
    expect((await h.put(1, "n1", key, v(2))).output).toEqual(stored);
    expect((await h.get(2, "n2", key)).output).toEqual({ type: "value", value: v(2) });
    await partition("n4", []);
    expect(await quiescentViolations("after the heal")).toEqual([]);
    expect(h.unexpected).toEqual([]);
    h.checkLinearizable();
  }, 15_000);

  it.each<Propagation>(["invalidate", "update"])(
    "direct coherence (%s): after S copies on every node, a PUT elsewhere is read back by every node at once",
    async (propagation) => {
      const h = new History();
      const key = `cc-direct-${propagation}`;
      let value = JSON.stringify(`${key}/0`);
      expect((await h.put(0, "n1", key, value)).output).toEqual(stored);
      // Each round: every node reads (S everywhere), then the next node writes.
      for (let round = 1; round <= NODES.length; round++) {
        const writer = NODES[round % NODES.length] as string;
        for (const node of NODES) {
          const r = await h.get(0, node, key);
          expect(r.output, `round ${round}: ${node} before the write`).toEqual({ type: "value", value });
        }
        const { infos } = await listings();
        for (const { node, lines } of infos) {
          expect(lines, `round ${round}: ${node} before the write`).toContainEqual({ key, state: "S" });
        }

        value = JSON.stringify(`${key}/${round}`);
        expect((await h.put(0, writer, key, value, propagation)).output).toEqual(stored);
        // Right after the write answered: the writer alone holds it (invalidate), or all in S (update).
        const after = await listings();
        for (const { node, lines } of after.infos) {
          const line = lines.find((l) => l.key === key);
          const what = `round ${round}: ${node} after ${writer} wrote`;
          if (propagation === "update") expect(line, what).toEqual({ key, state: "S" });
          else expect(line, what).toEqual(node === writer ? { key, state: "M" } : undefined);
        }
        const reads = await Promise.all(NODES.map((node) => h.get(0, node, key)));
        for (const r of reads) {
          expect(r.output, `round ${round}: ${r.input.node} after ${writer} wrote`).toEqual({ type: "value", value });
          // Update mode gave every sharer the value already.
          if (propagation === "update") expect(r.hit, r.input.node).toBe(true);
        }
      }
      expect(h.unexpected).toEqual([]);
      h.checkLinearizable();
    },
    15_000,
  );
});
