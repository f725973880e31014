/**
 * The cache's checks (shared/API.md "Cache"):
 *
 * - coherence, after every event: per key, at most one node has a line it would serve now as a
 *   hit in M or E, and no other node has one in S meanwhile (`CacheNodeCore.info()` lists only
 *   the lines it would serve: M, E, and S within their lease on the node's clock);
 * - linearizability of GET, PUT and DELETE per key against a register with delete
 *   (shared/sim/linearizability.ts, `kvModel`; a DELETE's `deleted` must also say whether the key
 *   had a value). Every call and return gets its own instant in real-time order. A GET that
 *   failed tells nothing (dropped); a PUT or DELETE that failed or whose answer was lost may
 *   have taken effect or not (pending), unless it is known not to have (its node never answered
 *   it as done and no group applied it: left out);
 * - nothing acknowledged lost: once everything has healed and no cache request is in flight, a
 *   GET of every key on every node; they must agree, and they join the history above, so each
 *   must return the last value the linearization leaves (an acknowledged PUT or DELETE cannot
 *   have vanished).
 */
import type { DeleteReply, GetReply, PutReply } from "../../../shared/cache/node.js";
import type { Propagation } from "../../../shared/cache/types.js";
import {
  checkOperations,
  type KvInput,
  type KvOutput,
  kvModel,
  type Model,
  type Operation,
  type RegisterState,
} from "../../../shared/sim/linearizability.js";
import type { SimCacheNode } from "./cache.js";

/** `requestId`: a PUT's or DELETE's, to tell afterwards whether one without an answer took effect. */
export type CacheInput = KvInput & { node: string; propagation?: Propagation; requestId?: string };
/** `existed`: a DELETE's answer. */
export type CacheOutput = KvOutput & { existed?: boolean };
export type CacheOperation = Operation<CacheInput, CacheOutput>;

/** kvModel, plus: a DELETE answered `deleted: existed` must agree with the register. */
export const cacheModel: Model<RegisterState, CacheInput, CacheOutput> = {
  init: kvModel.init,
  key: kvModel.key,
  step(state, input, output) {
    if (input.op === "delete" && output?.existed !== undefined) {
      return { ok: output.existed === (state !== null), state: null };
    }
    return kvModel.step(state, input, output);
  },
  partition: (history) => ((kvModel.partition?.(history) ?? [history.slice()]) as CacheOperation[][]).map(unobserved),
  describeOperation(input, output) {
    const at = ` on ${input.node}`;
    if (input.op === "delete") return `delete(${input.key})${at} -> ${output === undefined ? "?" : output.existed}`;
    if (input.op === "put")
      return `put(${input.key}, ${input.value}${input.propagation === "update" ? ", update" : ""})${at}`;
    return `${kvModel.describeOperation?.(input, output) ?? input.op}${at}`;
  },
};

export class CacheChecker {
  private readonly history: CacheOperation[] = [];
  private instant = 0;
  /** Keys already reported incoherent (one report each). */
  private readonly reported = new Set<string>();
  counts = {
    cacheGets: 0,
    cacheHits: 0,
    cachePuts: 0,
    cacheDeletes: 0,
    cacheFailed: 0,
    /** Failed PUTs and DELETEs known not to have taken effect. */
    cacheNoEffect: 0,
    coherenceChecks: 0,
  };

  constructor(private readonly violation: (what: string) => void) {}

  get operations(): number {
    return this.history.length;
  }

  /** Records the call of one client operation; the returned function records its answer. */
  begin(clientId: number, input: CacheInput): (reply: GetReply | PutReply | DeleteReply | undefined) => void {
    const op: CacheOperation = {
      clientId,
      input,
      call: ++this.instant,
      return: Number.POSITIVE_INFINITY,
      pending: true,
    };
    this.history.push(op);
    if (input.op === "get") this.counts.cacheGets++;
    else if (input.op === "put") this.counts.cachePuts++;
    else this.counts.cacheDeletes++;
    return (reply) => {
      const output = observed(input, reply);
      if (reply !== undefined && reply.type === "value" && reply.hit) this.counts.cacheHits++;
      if (output === undefined) {
        this.counts.cacheFailed++;
        return; // no answer: a GET says nothing, a write may or may not have happened
      }
      op.return = ++this.instant;
      op.output = output;
      op.pending = undefined;
    };
  }

  /** After every event: no two nodes serve a key in M/E, and none serves it in S beside an M/E. */
  coherence(nodes: readonly SimCacheNode[]): void {
    this.counts.coherenceChecks++;
    let owners: Map<string, string[]> | undefined;
    let sharers: Map<string, string[]> | undefined;
    for (const n of nodes) {
      const core = n.core;
      if (core === undefined) continue;
      for (const line of core.info().lines) {
        if (line.state === "S") {
          sharers ??= new Map();
          sharers.set(line.key, [...(sharers.get(line.key) ?? []), n.name]);
        } else {
          owners ??= new Map();
          owners.set(line.key, [...(owners.get(line.key) ?? []), `${n.name} (${line.state})`]);
        }
      }
    }
    if (owners === undefined) return;
    for (const [key, list] of owners) {
      if (this.reported.has(key)) continue;
      const s = sharers?.get(key) ?? [];
      if (list.length > 1 || s.length > 0) {
        this.reported.add(key);
        this.violation(
          `cache coherence: ${key} served in M/E by ${list.join(", ")}${s.length > 0 ? ` and in S by ${s.join(", ")}` : ""}`,
        );
      }
    }
  }

  /**
   * The final reads (see the file comment), as one client: every key on every node, one at a
   * time, each retried while unavailable. Returns the violations.
   */
  async finalReads(
    keys: readonly string[],
    nodes: readonly SimCacheNode[],
    get: (node: SimCacheNode, key: string) => Promise<GetReply | undefined>,
    retry: () => Promise<void>,
  ): Promise<string[]> {
    const out: string[] = [];
    for (const key of keys) {
      const seen: string[] = [];
      let first: string | null | undefined;
      for (const node of nodes) {
        let reply: GetReply | undefined;
        for (let attempt = 0; attempt < 20; attempt++) {
          const done = this.begin(-1, { op: "get", key, node: node.name });
          reply = await get(node, key);
          done(reply);
          if (reply !== undefined && reply.type !== "unavailable") break;
          await retry();
        }
        if (reply === undefined || reply.type === "unavailable") {
          out.push(
            `cache liveness: after healing, GET ${key} on ${node.name} kept failing: ${reply === undefined ? "no answer" : reply.detail}`,
          );
          continue;
        }
        const value = reply.type === "value" ? reply.value : null;
        seen.push(`${node.name}: ${value}`);
        if (first === undefined) first = value;
        else if (value !== first) out.push(`cache final reads: ${key} differs between nodes (${seen.join(", ")})`);
      }
    }
    return out;
  }

  /**
   * Linearizability of the whole history (final reads included). `tookEffect(requestId)`: whether a
   * PUT or DELETE whose answer never came took effect after all (its node answered it as done, or
   * the directory applied it); one that did not is left out of the history instead of pending.
   */
  check(tookEffect: (requestId: string) => boolean): { violations: string[]; unknown: boolean } {
    const history = this.history.filter((op) => {
      if (op.pending !== true || op.input.requestId === undefined || tookEffect(op.input.requestId)) return true;
      this.counts.cacheNoEffect++;
      return false;
    });
    const res = checkOperations(cacheModel, history, { maxSteps: 500_000 });
    const violations =
      res.result === "illegal" ? [`cache linearizability: ${res.explanation ?? "illegal"}`] : ([] as string[]);
    return { violations, unknown: res.result === "unknown" };
  }
}

/**
 * Drops the pending writes nothing observed: they may have happened or not, and "not" explains
 * the history as well. With unique values a PUT of `v` is observed only by a GET that returned `v`,
 * or by a DELETE that answered `deleted: true` after the PUT was sent (it may have found `v`);
 * a DELETE only by a GET that returned nothing, or a DELETE that answered `deleted: false`, after
 * it was sent. (Removing an unobserved write from a linearization changes the state only where no
 * completed operation looked.) Without this, the search gives up on runs with many failed writes.
 */
function unobserved(ops: CacheOperation[]): CacheOperation[] {
  const read = new Set<string>();
  for (const op of ops) if (op.input.op === "get" && typeof op.output?.value === "string") read.add(op.output.value);
  const returnedAfter = (call: number, match: (op: CacheOperation) => boolean) =>
    ops.some((op) => op.pending !== true && op.return > call && match(op));
  return ops.filter((op) => {
    if (op.pending !== true) return true;
    if (op.input.op === "put") {
      return (
        read.has(op.input.value) || returnedAfter(op.call, (o) => o.input.op === "delete" && o.output?.existed === true)
      );
    }
    if (op.input.op === "delete") {
      return returnedAfter(
        op.call,
        (o) =>
          (o.input.op === "get" && o.output?.value === null) ||
          (o.input.op === "delete" && o.output?.existed === false),
      );
    }
    return true;
  });
}

/** The model's view of an answer; undefined when it tells nothing about the outcome. */
function observed(input: CacheInput, reply: GetReply | PutReply | DeleteReply | undefined): CacheOutput | undefined {
  if (reply === undefined || reply.type === "unavailable") return undefined;
  switch (reply.type) {
    case "value":
      return input.op === "get" ? { value: reply.value } : undefined;
    case "absent":
      return input.op === "get" ? { value: null } : undefined;
    case "stored":
      return input.op === "put" ? {} : undefined;
    case "deleted":
      return input.op === "delete" ? { existed: reply.existed } : undefined;
  }
}
