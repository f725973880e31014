/**
 * White-box checks on the replicated state machine of every group, from instrumentation that
 * only observes the real cores (it wraps methods on the instances, calls the originals, changes
 * nothing):
 *
 * - the committed log: every Ready's committed entries are recorded per group; one index
 *   committed with two different entries is a state machine safety violation;
 * - a reference replica per group applies that log through the real Deduplicated + GroupState,
 *   and checks every command's result against the simple models of test/locks/reference-model.ts,
 *   test/queue/reference-model.ts and cache-reference.ts (for the cache directory also the key's
 *   entry after the command, and the answers to retries);
 * - agreement: sampled now and then, every live replica that applied the same index as another
 *   (or as the reference) must have an identical `state.snapshot()`;
 * - stale reads: a leader that says a shard has nothing deliverable before it has applied the
 *   first entry of its own term is recorded as a suspect, with the messages that the log it must
 *   reflect (everything committed before its term, and its own entries so far) leaves deliverable;
 *   queues.ts turns a suspect into a violation when a receive answered empty for that shard
 *   although one of those messages was acknowledged before the receive was sent.
 */
import type { CacheApplied, CacheCommand } from "../../../shared/cache/types.js";
import type { GroupCore } from "../../../shared/group/core.js";
import { type GroupResult, GroupState, type StoredResult } from "../../../shared/group/state.js";
import type { LockCommand } from "../../../shared/locks/types.js";
import type { QueueReply, QueueRequest } from "../../../shared/queue/queue-service.js";
import type { QueueTable } from "../../../shared/queue/queue-table.js";
import { DEFAULT_DEDUP_CAP, DEFAULT_MAX_SHARD_MESSAGES, type QueueCommand } from "../../../shared/queue/types.js";
import type { Entry, Ready } from "../../../shared/raft/index.js";
import { Deduplicated, decodeEnvelope } from "../../../shared/replica/dedup.js";
import { ReferenceLocks } from "../../locks/reference-model.js";
import { ReferenceQueue } from "../../queue/reference-model.js";
import { ReferenceDirectory } from "./cache-reference.js";
import type { SimPeer } from "./peer.js";

/** A leader skipped a shard from a state older than its term guarantees (see queues.ts). */
export interface StaleSuspect {
  group: number;
  peer: string;
  /** The receive being served (the only one in progress there for that shard). */
  requestId: string;
  queue: string;
  shard: number;
  at: number;
  term: number;
  applied: number;
  firstOfTerm: number;
  /** Messages deliverable in the state the leader should have read. */
  ids: string[];
}

interface GroupLog {
  /** entries[i - 1] is the committed entry at index i. */
  entries: Entry[];
  /** Committed entries recorded ahead of a gap (should not happen; kept until it closes). */
  ahead: Map<number, Entry>;
  reference: Deduplicated<GroupResult, StoredResult>;
  referenceState: ModelCheckedState;
  /** The index of the first entry of each leader's term. */
  firstOfTerm: Map<number, number>;
  /** Request ids of the committed commands (envelope ids). */
  requestIds: Set<string>;
}

export class ReplicaChecker {
  private readonly logs: GroupLog[] = [];
  readonly suspects: StaleSuspect[] = [];
  /** Request ids of cache ops that took effect in some group (a committed attempt other than a conflict). */
  readonly cacheApplied = new Set<string>();
  comparisons = 0;
  /** Shards a leader found empty before applying its term's first entry (each checked for staleness). */
  youngEmpty = 0;
  youngReceives = 0;

  private turn = 0;
  /** The life in which each peer was last compared (a restart rebuilt its state from storage). */
  private readonly checkedLife = new Map<SimPeer, number>();

  constructor(
    groups: number,
    private readonly violation: (what: string) => void,
    private readonly log: (line: () => string) => void,
    private readonly now: () => number,
    /** Told when a peer becomes leader. */
    private readonly onElected: (peer: SimPeer) => void = () => {},
  ) {
    for (let g = 0; g < groups; g++) {
      const referenceState = new ModelCheckedState(g, violation);
      // The exactly-once layer as createGroupMachine (shared/group/core.ts) builds it.
      const reference = new Deduplicated<GroupResult, StoredResult>(referenceState, {
        compact: (result) => referenceState.compact(result),
        replay: (stored) => referenceState.replay(stored),
      });
      this.logs.push({
        entries: [],
        ahead: new Map(),
        reference,
        referenceState,
        firstOfTerm: new Map(),
        requestIds: new Set(),
      });
    }
  }

  /** The committed log of `group` so far (entries[i - 1] is index i). */
  committed(group: number): readonly Entry[] {
    return (this.logs[group] as GroupLog).entries;
  }

  /** The reference replica's queue table (the committed state of the group's queues). */
  referenceQueues(group: number): QueueTable {
    return (this.logs[group] as GroupLog).referenceState.queues;
  }

  /** The index of the first entry of `term` in `group`, if a leader of that term appended one. */
  firstOfTerm(group: number, term: number): number | undefined {
    return (this.logs[group] as GroupLog).firstOfTerm.get(term);
  }

  /** Whether a command with this request id was committed in `group`. */
  wasCommitted(group: number, requestId: string): boolean {
    return (this.logs[group] as GroupLog).requestIds.has(requestId);
  }

  /** Instruments a freshly built core (observation only). */
  attach(peer: SimPeer, core: GroupCore): void {
    const raw = core.replica.raw;
    const ready = raw.ready.bind(raw);
    raw.ready = (): Ready => {
      const rd = ready();
      this.onReady(peer, core, rd);
      return rd;
    };
    // Receives in progress here, so that a "nothing deliverable" can be tied to one of them.
    const receiving = new Set<{ req: Extract<QueueRequest, { op: "receive" }>; requestId: string }>();
    const service = core.queues;
    const handle = service.handle.bind(service);
    service.handle = (req: QueueRequest, requestId: string): Promise<QueueReply> => {
      if (req.op !== "receive") return handle(req, requestId);
      const raft = core.replica.raw.raft;
      const first = (this.logs[peer.group] as GroupLog).firstOfTerm.get(raft.term);
      if (raft.role === "leader" && (first === undefined || raft.log.applied < first)) this.youngReceives++;
      const active = { req, requestId };
      receiving.add(active);
      const done = () => receiving.delete(active);
      const out = handle(req, requestId);
      out.then(done, done);
      return out;
    };
    const table = core.state.queues;
    const hasDeliverable = table.hasDeliverable.bind(table);
    table.hasDeliverable = (queue: string, shard: number, now: number): boolean => {
      const found = hasDeliverable(queue, shard, now);
      if (found || !core.replica.isLeader()) return found;
      const asking = [...receiving].filter((a) => a.req.queue === queue && a.req.shards.includes(shard));
      if (asking.length === 1)
        this.checkFreshness(peer, core, queue, shard, now, (asking[0] as { requestId: string }).requestId);
      return found;
    };
  }

  private onReady(peer: SimPeer, core: GroupCore, rd: Ready): void {
    const g = this.logs[peer.group] as GroupLog;
    const raft = core.replica.raw.raft;
    if (rd.softState !== undefined) {
      const soft = rd.softState;
      this.log(() => `${peer.name} ${soft.role} term ${raft.term} lead ${soft.lead}`);
      if (soft.role === "leader") this.onElected(peer);
    }
    if (raft.role === "leader" && !g.firstOfTerm.has(raft.term)) {
      const first = rd.entries.find((e) => e.term === raft.term);
      if (first !== undefined) g.firstOfTerm.set(raft.term, first.index);
    }
    for (const e of rd.committedEntries) this.onCommitted(peer, g, e);
  }

  private onCommitted(peer: SimPeer, g: GroupLog, e: Entry): void {
    const known = g.entries[e.index - 1] ?? g.ahead.get(e.index);
    if (known !== undefined) {
      if (known.term !== e.term || known.data !== e.data) {
        this.violation(
          `state machine safety: g${peer.group} index ${e.index} committed as term ${known.term} and as term ${e.term} (at ${peer.name})`,
        );
      }
      return;
    }
    g.ahead.set(e.index, e);
    for (let next = g.ahead.get(g.entries.length + 1); next !== undefined; next = g.ahead.get(g.entries.length + 1)) {
      g.ahead.delete(next.index);
      g.entries.push(next);
      const result = g.reference.apply(next);
      if (next.type === "normal" && next.data !== "") {
        const id = decodeEnvelope(next.data).id;
        if (id !== "") g.requestIds.add(id);
        // A cache op's attempts are proposed as `<request id>#<attempt>`; a conflict changed nothing.
        if (result?.kind === "cache" && result.result.type !== "conflict")
          this.cacheApplied.add(id.replace(/#\d+$/, ""));
      }
    }
  }

  /**
   * Agreement: replicas that applied the same index as the reference hold the same state. A
   * snapshot costs time proportional to the state, so a sample compares, per group, the peers
   * that restarted since they were last compared and one more in turn; `all` compares every
   * replica with every other at the same index (the final sample, when all are caught up).
   */
  sample(group: number, peers: readonly SimPeer[], all = false): void {
    const g = this.logs[group] as GroupLog;
    const at = new Map<number, SimPeer[]>();
    for (const p of peers) {
      if (p.core === undefined || p.paused) continue;
      const applied = p.core.replica.raw.raft.log.applied;
      at.set(applied, [...(at.get(applied) ?? []), p]);
    }
    const refIndex = g.entries.length;
    for (const [index, list] of at) {
      let chosen = list;
      if (!all) {
        if (index !== refIndex) continue;
        const turn = list[this.turn++ % list.length] as SimPeer;
        chosen = list.filter((p) => p === turn || this.checkedLife.get(p) !== p.life);
      }
      const images = chosen.map((p) => {
        this.checkedLife.set(p, p.life);
        return { who: p.name, image: (p.core as GroupCore).state.snapshot() };
      });
      if (index === refIndex) images.push({ who: "reference", image: g.referenceState.snapshot() });
      const first = images[0] as { who: string; image: string };
      for (const other of images.slice(1)) {
        this.comparisons++;
        if (other.image !== first.image) {
          this.violation(
            `replica agreement: g${group} ${first.who} and ${other.who} applied index ${index} but their states differ: ${difference(first.image, other.image)}`,
          );
          return;
        }
      }
    }
  }

  /** See the file comment: records a suspect when a young leader's "nothing here" may be stale. */
  private checkFreshness(
    peer: SimPeer,
    core: GroupCore,
    queue: string,
    shard: number,
    at: number,
    requestId: string,
  ): void {
    const g = this.logs[peer.group] as GroupLog;
    const raft = core.replica.raw.raft;
    const first = g.firstOfTerm.get(raft.term);
    const applied = raft.log.applied;
    if (first === undefined || applied >= first) return;
    this.youngEmpty++;
    // What a leader that serves would read: its log up to its term's first entry applied (all of
    // it is committed once that entry is), and maybe some of its own entries after it. A message
    // counts only if it is deliverable in every one of those states.
    const clone = new GroupState();
    clone.restore(core.state.snapshot());
    const replay = (e: Entry) => {
      if (e.type !== "normal" || e.data === "") return;
      clone.apply({ ...e, data: decodeEnvelope(e.data).body });
    };
    const log = raft.log.slice(applied + 1, raft.log.lastIndex() + 1);
    let ids: string[] | undefined;
    for (const e of log) {
      replay(e);
      if (e.index < first) continue;
      const now = deliverableIds(clone, queue, shard, at);
      ids = ids === undefined ? now : ids.filter((id) => now.includes(id));
      if (ids.length === 0) return;
    }
    if (ids === undefined || ids.length === 0) return;
    this.suspects.push({
      group: peer.group,
      peer: peer.name,
      requestId,
      queue,
      shard,
      at: this.now(),
      term: raft.term,
      applied,
      firstOfTerm: first,
      ids,
    });
  }
}

interface ShardImage {
  shards: [string, number, { id: string; key?: string; visibleAt: number }[]][];
  time: number;
}

/** The ids a receive at `now` would take from the shard, in order (the rule of scanDeliverable). */
export function deliverableIds(state: GroupState, queue: string, shard: number, now: number): string[] {
  const image = JSON.parse(state.queues.snapshot()) as ShardImage;
  const t = Math.max(image.time, now);
  const messages = image.shards.find(([q, s]) => q === queue && s === shard)?.[2] ?? [];
  const blocked = new Set<string>();
  const out: string[] = [];
  for (const m of messages) {
    if (m.key !== undefined && blocked.has(m.key)) continue;
    if (m.key !== undefined) blocked.add(m.key);
    if (m.visibleAt <= t) out.push(m.id);
  }
  return out;
}

/** Where two images first differ, briefly. */
function difference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const show = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 30), i + 30));
  return `at char ${i}: ${show(a)} vs ${show(b)}`;
}

/**
 * The reference replica's state: the real GroupState, plus the simple models run on the same
 * commands; any difference in a result is reported (once per group: the models diverge after).
 */
class ModelCheckedState extends GroupState {
  private readonly lockModel = new ReferenceLocks();
  private readonly queueModel = new ReferenceQueue(DEFAULT_DEDUP_CAP, DEFAULT_MAX_SHARD_MESSAGES);
  private readonly cacheModel = new ReferenceDirectory();
  private diverged = false;

  constructor(
    private readonly group: number,
    private readonly violation: (what: string) => void,
  ) {
    super();
  }

  override apply(entry: Entry): GroupResult {
    const groupTime = this.now;
    const result = super.apply(entry);
    if (this.diverged || result === null || result.kind === "idem") return result;
    // The models see the command as the tables did: its time raised to the group's time.
    const cmd = JSON.parse(entry.data) as LockCommand | QueueCommand | CacheCommand;
    cmd.now = Math.max(cmd.now, groupTime);
    let actual: unknown;
    let expected: unknown;
    if (result.kind === "cache") {
      const c = cmd as CacheCommand;
      const model = this.cacheModel.apply(c, entry.index);
      // The order of the holders pushed to is not part of the contract.
      const sorted = (a: CacheApplied) =>
        a.push === undefined ? a : { ...a, push: { ...a.push, nodes: [...a.push.nodes].sort() } };
      actual = sorted({ result: result.result, push: result.push });
      expected = sorted(model);
      const entryDiff = deepEqual(actual, expected)
        ? this.cacheModel.differs(c.key, this.cache.entry(c.key))
        : undefined;
      if (entryDiff !== undefined) {
        this.diverged = true;
        this.violation(
          `reference model: g${this.group} index ${entry.index} ${JSON.stringify(cmd).slice(0, 200)}: ${entryDiff}`,
        );
        return result;
      }
    } else if (result.kind === "lock") {
      const model = this.lockModel.step(cmd as LockCommand, entry.index);
      const { result: r, events } = result;
      // The model does not pick a deadlock cycle (the unit model test checks the cycles).
      actual = { result: r.type === "deadlock" ? { ...r, cycle: [] } : r, events };
      expected = model;
    } else if (result.kind === "queue") {
      const model = this.queueModel.apply(cmd as QueueCommand);
      if (model.result.type === "rejected" && result.result.type === "rejected")
        model.result.detail = result.result.detail;
      actual = { result: result.result, wake: result.wake };
      expected = model;
    }
    if (!deepEqual(actual, expected)) {
      this.diverged = true;
      this.violation(
        `reference model: g${this.group} index ${entry.index} ${JSON.stringify(cmd).slice(0, 200)} gave ${JSON.stringify(actual).slice(0, 300)}, the model ${JSON.stringify(expected).slice(0, 300)}`,
      );
    }
    return result;
  }

  /** A retry answered from the exactly-once memory: a cache grant is rebuilt from the state now. */
  override replay(stored: StoredResult): GroupResult {
    const result = super.replay(stored);
    if (this.diverged || stored?.kind !== "cache" || result?.kind !== "cache") return result;
    const expected = this.cacheModel.replay(stored.result) ?? stored.result;
    if (!deepEqual(result.result, expected)) {
      this.diverged = true;
      this.violation(
        `reference model: g${this.group} replay of ${JSON.stringify(stored.result)} gave ${JSON.stringify(result.result)}, the model ${JSON.stringify(expected)}`,
      );
    }
    return result;
  }
}

/** Structural equality; a property set to undefined counts as absent (as toEqual does). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  for (const k of keys) if (!deepEqual(ra[k], rb[k])) return false;
  return true;
}
