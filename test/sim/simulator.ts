import {
  type ConfChange,
  type Entry,
  type NodeId,
  ProposalDroppedError,
  Rand,
  type RawNode,
} from "../../shared/raft/index.js";
import { checkOperations, kvModel, type Model, type Operation } from "../../shared/sim/linearizability.js";
import { SafetyChecker } from "./checker.js";
import type { KvCommand } from "./kv.js";
import { Network } from "./network.js";
import { type Bug, type CrashPoint, SimNode } from "./node.js";

export interface SimOptions {
  seed: number;
  /** Initial voters; random in 3..7 when absent. */
  nodes?: number;
  /** Time units of the faulty phase (a node ticks every ~10 units). */
  steps?: number;
  trace?: boolean;
  bug?: Bug;
  /** Overrides of the randomised fault rates (per mille per time unit), for targeted searches. */
  crashPerMille?: number;
  restartPerMille?: number;
  /** Idle leaders quiesce (Raft.quiesce); default: in 7 seeds of 8. */
  quiesce?: boolean;
}

export interface SimResult {
  seed: number;
  steps: number;
  violations: string[];
  trace: string[];
  stats: {
    nodes: number;
    ops: number;
    committed: number;
    leaders: number;
    crashes: number;
    partitions: number;
    quiesce: number;
    quietSpells: number;
    quietFaults: number;
    /** Units (a node ticks every ~10) and messages from the request after the final quiet to its commit. */
    wakeUnits: number;
    wakeMessages: number;
  };
}

type KvInput = Parameters<typeof kvModel.step>[1];
type KvOutput = Parameters<typeof kvModel.step>[2] & object;
type Op = Operation<KvInput, KvOutput> & { failed?: true };

interface Client {
  id: number;
  busy: boolean;
  deadline: number;
  leaderHint: NodeId;
}

/** The bounds of the liveness phase: after healing, a commit must happen within this many units. */
const LIVENESS_UNITS = 4000;
const CLIENT_TIMEOUT = 600;
const ELECTION_TICK = 10;
/** After healing, with no client traffic, every node must be quiesced within this many units. */
const QUIESCE_UNITS = 1500;

/**
 * One seeded run: a Raft cluster over a faulty network with crashes, clients writing and reading a
 * replicated key-value store, and the safety checkers after every step. Then the faults heal and
 * the run must make progress (liveness), and the client history must be linearizable.
 * Everything derives from the seed: the same seed gives the same run, step for step.
 */
export function simulate(opts: SimOptions): SimResult {
  const rand = new Rand(opts.seed);
  const cfgRand = rand.fork();
  const netRand = rand.fork();
  const faultRand = rand.fork();
  const clientRand = rand.fork();
  // Quiescence draws from a Rand of its own, so the rest of a seed's run keeps its shape.
  const quietRand = new Rand((opts.seed ^ 0x51e5ce) >>> 0);
  const quiesce = opts.quiesce ?? quietRand.chance(7, 8);
  const quietSpellPerMille = quietRand.range(1, 4);
  let quietUntil = 0;
  /** A quiesced leader's next host deadline (time unit), when its quiet is bounded. */
  const deadlines = new Map<NodeId, number>();
  let quietSpells = 0;
  let quietFaults = 0;

  // Randomise the whole configuration per seed (TigerBeetle's VOPR does the same).
  const voters = opts.nodes ?? cfgRand.range(3, 7);
  const membership = cfgRand.chance(1, 2);
  const spares = membership ? cfgRand.range(1, 2) : 0;
  const steps = opts.steps ?? 3000;
  const dropPerMille = cfgRand.range(0, 100);
  const dupPerMille = cfgRand.range(0, 50);
  const maxDelay = cfgRand.range(2, 40);
  const partitionPerMille = cfgRand.range(0, 6);
  const healPerMille = cfgRand.range(4, 30);
  const crashPerMille = opts.crashPerMille ?? cfgRand.range(0, 4);
  const restartPerMille = opts.restartPerMille ?? cfgRand.range(5, 40);
  const clientPerMille = cfgRand.range(20, 150);
  const compactEvery = cfgRand.range(10, 200);
  const keys = ["a", "b", "c", "d"].slice(0, cfgRand.range(1, 4));
  const trace: string[] = [];
  const log = (line: () => string) => {
    if (opts.trace) trace.push(`${now} ${line()}`);
  };

  const net = new Network(netRand, { dropPerMille, dupPerMille, minDelay: 1, maxDelay });
  const checker = new SafetyChecker();
  const bootstrap = { voters: Array.from({ length: voters }, (_, i) => i + 1), learners: [] };
  const nodes = new Map<NodeId, SimNode>();
  const maxInflight = cfgRand.range(1, 16);
  const maxEntriesPerMsg = cfgRand.range(1, 64);
  const broadcastCommit = cfgRand.chance(1, 2);
  for (let id = 1; id <= voters + spares; id++) {
    const tuning = {
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      tickEvery: cfgRand.range(8, 12),
      tickPhase: cfgRand.int(12),
      maxInflight,
      maxEntriesPerMsg,
      broadcastCommit,
    };
    // Every peer, even one that joins later, starts from the same genesis configuration: the log
    // holds only changes to it.
    nodes.set(id, new SimNode(id, bootstrap, tuning, rand.fork(), opts.bug));
  }
  const storages = new Map([...nodes].map(([id, n]) => [id, n.storage]));
  const ids = [...nodes.keys()];

  const history: Op[] = [];
  const clients: Client[] = Array.from({ length: clientRand.range(2, 5) }, (_, i) => ({
    id: i,
    busy: false,
    deadline: 0,
    leaderHint: 1,
  }));
  /** Writes waiting for their entry to be applied: node → index → proposal. */
  const writes = new Map<NodeId, Map<number, { term: number; op: Op; client: Client }>>();
  /** Reads waiting for a ReadState and then for the apply to reach it. */
  const reads = new Map<string, { node: NodeId; index: number; key: string; op: Op; client: Client }>();
  let readSeq = 0;
  let writeSeq = 0;
  let now = 0;
  /** Logical time of the history: every call and return gets its own instant, in real-time order. */
  let clock = 0;
  let crashes = 0;
  let partitions = 0;
  let leaderTerms = 0;
  let faulty = true;
  let livenessProbe: { node: NodeId; index: number; term: number } | undefined;
  let live = false;
  /** The liveness phase's client: proposes a probe at the leader until one commits. */
  let probing = true;

  const finish = (op: Op, client: Client, output: KvOutput) => {
    op.output = output;
    op.return = ++clock;
    op.pending = undefined;
    client.busy = false;
  };

  const crash = (n: SimNode, point: string) => {
    log(() => `n${n.id} crash (${point})`);
    n.crash();
    deadlines.delete(n.id);
    crashes++;
    // Its waiting writes have unknown outcomes; its reads simply never answer.
    for (const w of writes.get(n.id)?.values() ?? []) w.client.busy = false;
    writes.delete(n.id);
    for (const [ctx, r] of reads) {
      if (r.node !== n.id) continue;
      r.op.failed = true;
      r.client.busy = false;
      reads.delete(ctx);
    }
  };

  const handleReady = (n: SimNode, raw: RawNode) => {
    const rd = raw.ready();
    const first = rd.entries[0];
    if (first !== undefined) checker.onAppend(n.id, rd.entries, raw.raft.log.term(first.index - 1) ?? -1);
    if (rd.softState) log(() => `n${n.id} ${rd.softState?.role} term ${raw.raft.term} lead n${rd.softState?.lead}`);
    const point: CrashPoint | undefined = n.crashAt;
    // The planted bug breaks the persistence contract: acks and votes leave before they are durable.
    const sendFirst = opts.bug === "sendBeforePersist";
    if (sendFirst) for (const m of rd.messages) net.send(m, now);
    if (point === "beforePersist") return crash(n, point);
    n.persist(rd);
    if (point === "afterPersist") return crash(n, point);
    if (!sendFirst) for (const m of rd.messages) net.send(m, now);
    if (point === "afterSend") return crash(n, point);
    if (rd.snapshot !== undefined) {
      n.kv.restore(rd.snapshot.data);
      n.applied = rd.snapshot.metadata.index;
    }
    for (const e of rd.committedEntries) applyEntry(n, e);
    for (const rs of rd.readStates) {
      const r = reads.get(rs.context);
      if (r !== undefined && r.node === n.id) r.index = rs.index;
    }
    raw.advance(rd);
    for (const [ctx, r] of reads) {
      if (r.node !== n.id || r.index < 0 || r.index > n.applied) continue;
      reads.delete(ctx);
      finish(r.op, r.client, { value: n.kv.get(r.key) });
    }
    n.maybeCompact(compactEvery);
  };

  const applyEntry = (n: SimNode, e: Entry) => {
    if (e.index !== n.applied + 1) checker.violations.push(`n${n.id} applied ${e.index} after ${n.applied}`);
    n.applied = e.index;
    checker.onApply(n.id, e);
    const result = e.type === "normal" ? n.kv.apply(e) : null;
    const w = writes.get(n.id)?.get(e.index);
    if (w !== undefined) {
      writes.get(n.id)?.delete(e.index);
      // Another entry at our index means ours was overwritten: definitely not applied anywhere.
      if (e.term === w.term) finish(w.op, w.client, { value: result });
      else {
        w.op.failed = true;
        w.client.busy = false;
      }
    }
    if (livenessProbe?.node === n.id && livenessProbe.index === e.index) {
      if (livenessProbe.term === e.term) live = true;
      livenessProbe = undefined;
    }
  };

  const propose = (raw: RawNode, cmd: KvCommand) => raw.propose([JSON.stringify(cmd)]);

  const clientStep = (c: Client) => {
    if (c.busy) {
      if (now < c.deadline) return;
      // Timed out: a write's outcome stays unknown (pending in the history); a read is dropped.
      c.busy = false;
      for (const [ctx, r] of reads) {
        if (r.client !== c) continue;
        reads.delete(ctx);
        r.op.failed = true;
      }
      for (const ws of writes.values()) for (const [i, w] of ws) if (w.client === c) ws.delete(i);
      return;
    }
    if (!faulty || now < quietUntil || !clientRand.chance(clientPerMille, 1000)) return;
    const target = clientRand.chance(3, 4) ? c.leaderHint : clientRand.pick(ids);
    const n = nodes.get(target);
    const key = clientRand.pick(keys);
    if (n?.raw === undefined) {
      c.leaderHint = clientRand.pick(ids);
      return; // connection refused: never happened
    }
    const op: Op = {
      clientId: c.id,
      input: { op: "get", key },
      call: ++clock,
      return: Number.POSITIVE_INFINITY,
      pending: true,
    };
    if (clientRand.chance(1, 2)) {
      const value = `${c.id}.${writeSeq++}`;
      op.input = { op: "put", key, value };
      try {
        const { index, term } = propose(n.raw, { op: "put", key, value });
        const ws = writes.get(n.id) ?? new Map();
        writes.set(n.id, ws);
        ws.set(index, { term, op, client: c });
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
        if (e.leader !== 0) c.leaderHint = e.leader;
        else c.leaderHint = clientRand.pick(ids);
        return; // refused before anything was appended
      }
      log(() => `c${c.id} put ${key}=${value} at n${n.id}`);
    } else {
      const ctx = `r${readSeq++}`;
      reads.set(ctx, { node: n.id, index: -1, key, op, client: c });
      n.raw.readIndex(ctx);
      log(() => `c${c.id} get ${key} at n${n.id} (${ctx})`);
    }
    history.push(op);
    c.busy = true;
    c.deadline = now + CLIENT_TIMEOUT;
  };

  const leaderOf = (): SimNode | undefined => {
    let best: SimNode | undefined;
    for (const n of nodes.values()) {
      const r = n.raw?.raft;
      if (r?.role === "leader" && (best === undefined || r.term > (best.raw?.raft.term ?? 0))) best = n;
    }
    return best;
  };

  const membershipStep = () => {
    const leader = leaderOf()?.raw;
    if (leader === undefined) return;
    const { conf, progress, lastIndex } = leader.status();
    const members = new Set([...conf.voters, ...conf.learners]);
    const options: ConfChange[] = [];
    for (const id of ids) if (!members.has(id)) options.push({ type: "addLearner", node: id });
    for (const p of progress) {
      if (conf.learners.includes(p.id) && p.match + 5 >= lastIndex) options.push({ type: "promote", node: p.id });
    }
    if (conf.voters.length > 3) for (const id of conf.voters) options.push({ type: "remove", node: id });
    if (options.length === 0) return;
    const cc = faultRand.pick(options);
    try {
      leader.proposeConfChange(cc);
      log(() => `admin ${cc.type} n${cc.node} via n${leader.raft.id}`);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  };

  const faultStep = () => {
    if (faultRand.chance(partitionPerMille, 1000) && !net.isPartitioned()) {
      const shuffled = faultRand.shuffle(ids.slice());
      const cut = faultRand.range(1, shuffled.length - 1);
      const sides = [shuffled.slice(0, cut), shuffled.slice(cut)];
      const oneWay = faultRand.chance(1, 4);
      net.partition(sides, oneWay);
      partitions++;
      log(() => `partition ${oneWay ? "one-way " : ""}${sides.map((s) => `[${s}]`).join(" | ")}`);
    } else if (net.isPartitioned() && faultRand.chance(healPerMille, 1000)) {
      net.heal();
      log(() => "heal");
    }
    for (const n of nodes.values()) {
      if (n.up && faultRand.chance(crashPerMille, 1000)) {
        const points: (CrashPoint | "idle")[] = ["idle", "beforePersist", "afterPersist", "afterSend"];
        const point = faultRand.pick(points);
        if (point === "idle") crash(n, point);
        else n.crashAt = point;
      } else if (!n.up && faultRand.chance(restartPerMille, 1000)) {
        n.start();
        log(() => `n${n.id} restart`);
      }
    }
    if (membership && faultRand.chance(3, 1000)) membershipStep();
  };

  const livenessStep = () => {
    if (!probing) return;
    if (livenessProbe !== undefined && nodes.get(livenessProbe.node)?.raw?.raft.role !== "leader") {
      livenessProbe = undefined;
    }
    const leader = leaderOf();
    if (livenessProbe !== undefined || leader?.raw === undefined) return;
    try {
      const { index, term } = propose(leader.raw, { op: "put", key: "liveness", value: `${now}` });
      livenessProbe = { node: leader.id, index, term };
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  };

  /** The host has nothing in flight at `n` (no write or read waiting there): its leader may quiesce. */
  const hostIdle = (n: SimNode) =>
    (writes.get(n.id)?.size ?? 0) === 0 &&
    livenessProbe?.node !== n.id &&
    ![...reads.values()].some((r) => r.node === n.id);

  /** Quiet spells: clients send nothing for a while; sometimes the leader crashes or is cut off meanwhile. */
  const quietStep = () => {
    if (now < quietUntil) {
      if (quietRand.chance(2, 1000)) {
        const leader = leaderOf();
        if (leader === undefined) return;
        quietFaults++;
        if (quietRand.chance(1, 2)) crash(leader, "while quiet");
        else if (!net.isPartitioned()) {
          net.partition([[leader.id], ids.filter((id) => id !== leader.id)], false);
          partitions++;
          log(() => `partition leader n${leader.id} while quiet`);
        }
      }
      return;
    }
    if (!quietRand.chance(quietSpellPerMille, 1000)) return;
    quietUntil = now + quietRand.range(300, 1500);
    quietSpells++;
    log(() => `quiet until ${quietUntil}`);
  };

  const step = () => {
    now++;
    if (faulty) {
      faultStep();
      quietStep();
    } else livenessStep();
    for (const n of nodes.values()) {
      if (!n.raw || !n.ticksAt(now)) continue;
      n.raw.tick();
      // The host's side of quiescence (Replica.maybeQuiesce): nothing of its own in flight; a
      // random deadline now and then bounds the followers' quiet.
      // A quiet leader's host deadline came (the alarm RaftPeer arms): the leader wakes for it.
      const due = deadlines.get(n.id);
      if (due !== undefined && now >= due) {
        deadlines.delete(n.id);
        if (n.raw.raft.quiesced && n.raw.raft.role === "leader") n.raw.wake();
      }
      if (quiesce && n.raw.raft.role === "leader" && hostIdle(n)) {
        const quietTicks = quietRand.chance(1, 3) ? quietRand.range(3, 60) : Number.POSITIVE_INFINITY;
        if (n.raw.quiesce(quietTicks) && Number.isFinite(quietTicks)) {
          deadlines.set(n.id, now + quietTicks * n.tuning.tickEvery);
        }
      }
    }
    for (const m of net.due(now)) {
      const raw = nodes.get(m.to)?.raw;
      if (raw === undefined) continue;
      log(
        () =>
          `n${m.from}→n${m.to} ${m.type} t${m.term} i${m.index} lt${m.logTerm} c${m.commit} e${m.entries.length}${m.reject ? " reject" : ""}${m.context ? ` ${m.context}` : ""}`,
      );
      raw.step(m);
    }
    for (const c of clients) clientStep(c);
    for (const n of nodes.values()) {
      while (n.raw?.hasReady()) handleReady(n, n.raw);
    }
    let newest: SimNode | undefined;
    for (const n of nodes.values()) {
      const r = n.raw?.raft;
      if (r?.role !== "leader") continue;
      if (checker.onLeader(r)) leaderTerms++;
      if (newest === undefined || r.term > (newest.raw?.raft.term ?? 0)) newest = n;
    }
    if (newest?.raw !== undefined && now % 16 === 0) checker.checkDurability(newest.raw.raft, storages);
  };

  // A broken invariant inside Raft throws ("fail loudly"): that is a violation too.
  const guardedStep = () => {
    try {
      step();
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      checker.violations.push(`invariant: ${e.message}`);
    }
  };
  // Phase 1: safety under faults.
  while (now < steps && checker.violations.length === 0) guardedStep();
  // Phase 2: heal everything; a leader must emerge and commit within a bound.
  faulty = false;
  net.heal();
  net.faulty = false;
  for (const n of nodes.values()) {
    n.crashAt = undefined;
    if (!n.up) n.start();
  }
  log(() => "heal all: liveness phase");
  // The probe below is a request: it reaches some node first (its host wakes it).
  quietRand.pick([...nodes.values()].filter((n) => n.up)).raw?.wake();
  const deadline = now + LIVENESS_UNITS;
  while (!live && now < deadline && checker.violations.length === 0) guardedStep();
  if (!live && checker.violations.length === 0) {
    checker.violations.push(`liveness: no commit within ${LIVENESS_UNITS} units after healing`);
  }

  // Phase 3: quiet. Every node quiesces; then the leader may die; then a request at any node is served in time.
  let wakeUnits = 0;
  let wakeMessages = 0;
  if (quiesce && checker.violations.length === 0) {
    probing = false;
    const quietDeadline = now + QUIESCE_UNITS;
    // Voters of the configuration, that is: a peer removed (or never added) hears from nobody.
    const members = () => {
      let newest: RawNode | undefined;
      for (const n of nodes.values()) if (n.raw && n.raw.raft.term >= (newest?.raft.term ?? 0)) newest = n.raw;
      const conf = (leaderOf()?.raw ?? newest)?.raft.conf;
      // Voters: a learner cannot campaign, so one woken by a late answer (a ReadIndex reply, say)
      // stays awake until the leader next wakes (Replica does not quiesce while a learner exists).
      return conf === undefined ? [] : [...conf.voters];
    };
    const allQuiet = () =>
      members().length > 0 &&
      members().every((id) => nodes.get(id)?.raw === undefined || nodes.get(id)?.raw?.raft.quiesced === true);
    while (!allQuiet() && now < quietDeadline && checker.violations.length === 0) guardedStep();
    if (!allQuiet() && checker.violations.length === 0) {
      const awake = members().filter((id) => nodes.get(id)?.raw?.raft.quiesced === false);
      checker.violations.push(`quiescence: n${awake.join(", n")} not quiesced ${QUIESCE_UNITS} units after healing`);
    }
    for (let i = quietRand.range(0, 500); i > 0 && checker.violations.length === 0; i--) guardedStep();
    const leader = leaderOf();
    const group = members();
    if (leader !== undefined && quietRand.chance(1, 2)) crash(leader, "while quiet, before a request");
    // A request reaches some peer of the group (its host wakes it); the Worker retries at the
    // next peer every so often until it is served (a learner, say, cannot replace a dead leader).
    const up = group.filter((id) => nodes.get(id)?.up === true);
    if (up.length === 0) checker.violations.push("quiescence: no member of the group is up after the quiet");
    const reach = () => {
      if (up.length === 0) return;
      const target = quietRand.pick(up);
      log(() => `request reaches n${target}`);
      nodes.get(target)?.raw?.wake();
    };
    reach();
    const from = now;
    const sentBefore = net.sent;
    live = false;
    probing = true;
    const wakeDeadline = now + LIVENESS_UNITS;
    while (!live && now < wakeDeadline && checker.violations.length === 0) {
      guardedStep();
      if ((now - from) % 300 === 0) reach();
    }
    if (!live && checker.violations.length === 0) {
      checker.violations.push(`liveness after quiet: no commit within ${LIVENESS_UNITS} units of a request`);
    }
    wakeUnits = now - from;
    wakeMessages = net.sent - sentBefore;
  }

  // Linearizability of everything the clients saw.
  const ops = history.filter((op) => !op.failed);
  if (checker.violations.length === 0) {
    const res = checkOperations(kvModel as Model<string | null, KvInput, KvOutput>, ops, { maxSteps: 2_000_000 });
    if (res.result === "illegal") {
      checker.violations.push(`linearizability: ${res.explanation ?? `partition ${res.partition}`}`);
    }
  }

  return {
    seed: opts.seed,
    steps: now,
    violations: checker.violations,
    trace,
    stats: {
      nodes: nodes.size,
      ops: ops.length,
      committed: checker.maxCommitted,
      leaders: leaderTerms,
      crashes,
      partitions,
      quiesce: quiesce ? 1 : 0,
      quietSpells,
      quietFaults,
      wakeUnits,
      wakeMessages,
    },
  };
}
