/**
 * A sequential model of the lock service's try-lock API, for the linearizability checker in
 * shared/sim/linearizability.ts. Pure: no Workers or Node APIs, so it can be used (and its own
 * negative controls run) anywhere.
 *
 * Scope: acquire with waitMs 0 (try-lock) in exclusive or shared mode, release, and the GET view,
 * with TTLs long enough that nothing expires during a run (so the model needs no clock).
 *
 * State, per resource: the holders (owner, mode and fencing token if known) and `floor`, a lower
 * bound every new fencing token must exceed. Tokens come from one counter per Raft group that
 * only grows, so in the linearization order every new grant on a resource has a larger token than
 * every earlier grant on it; an idempotent re-acquire (same owner, same mode) returns the token of
 * the holding it renews. A pending (unknown outcome) grant gives its holder an unknown token
 * (null) and leaves the floor alone, which only makes the model more permissive, never stricter.
 */
import { isPending, type Model, type Operation, type StepResult } from "../../shared/sim/linearizability";

export type LockMode = "exclusive" | "shared";

export type LockInput =
  | { op: "acquire"; resource: string; owner: string; mode: LockMode }
  | { op: "release"; resource: string; owner: string }
  | { op: "view"; resource: string };

/** A holder as the service reports it (conflict answers and views); expiresAt is ignored. */
export interface HolderObs {
  owner: string;
  mode: LockMode;
}

export type LockOutput =
  | { type: "granted"; mode: LockMode; fencingToken: number }
  | { type: "conflict"; holders: HolderObs[] }
  | { type: "released" }
  | { type: "notHolder" }
  | { type: "view"; holders: HolderObs[] };

export interface HolderState {
  owner: string;
  mode: LockMode;
  /** null: granted by an operation whose answer was lost, token not (yet) known. */
  token: number | null;
}

export interface LockState {
  /** Sorted by owner (an owner holds at most once), so equal states have equal keys. */
  holders: readonly HolderState[];
  /** Every new grant's token must be greater than this. */
  floor: number;
}

export type LockOperation = Operation<LockInput, LockOutput>;

const byOwner = (a: { owner: string }, b: { owner: string }) => (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0);

/** Only shared goes with shared (as in shared/locks/resource.ts). */
function compatible(a: LockMode, b: LockMode): boolean {
  return a === "shared" && b === "shared";
}

/** The holders as "owner:mode" strings, sorted: the set the service should report. */
function holderSet(holders: readonly HolderObs[]): string {
  return holders
    .map((h) => `${h.owner}:${h.mode}`)
    .sort()
    .join(",");
}

function withHolder(state: LockState, holder: HolderState, floor: number): LockState {
  const holders = [...state.holders.filter((h) => h.owner !== holder.owner), holder].sort(byOwner);
  return { holders, floor };
}

export function lockStep(state: LockState, input: LockInput, output: LockOutput | undefined): StepResult<LockState> {
  switch (input.op) {
    case "view":
      return {
        ok: output === undefined || (output.type === "view" && holderSet(output.holders) === holderSet(state.holders)),
        state,
      };
    case "release": {
      const holds = state.holders.some((h) => h.owner === input.owner);
      if (!holds) return { ok: output === undefined || output.type === "notHolder", state };
      const next = { holders: state.holders.filter((h) => h.owner !== input.owner), floor: state.floor };
      return { ok: output === undefined || output.type === "released", state: next };
    }
    case "acquire": {
      const held = state.holders.find((h) => h.owner === input.owner);
      if (held !== undefined && held.mode === input.mode) {
        // Idempotent re-acquire: the same holding, the same token.
        if (output === undefined) return { ok: true, state };
        if (output.type !== "granted" || output.mode !== input.mode) return { ok: false, state };
        if (held.token !== null) return { ok: output.fencingToken === held.token, state };
        // First time we see this holding's token: learn it.
        const learned = { ...held, token: output.fencingToken };
        return { ok: true, state: withHolder(state, learned, Math.max(state.floor, output.fencingToken)) };
      }
      const fits = state.holders.every((h) => h.owner === input.owner || compatible(h.mode, input.mode));
      if (!fits) {
        if (output === undefined) return { ok: true, state };
        return {
          ok: output.type === "conflict" && holderSet(output.holders) === holderSet(state.holders),
          state,
        };
      }
      // A new grant (fresh, upgrade or downgrade): a new, larger token.
      if (output === undefined) {
        return {
          ok: true,
          state: withHolder(state, { owner: input.owner, mode: input.mode, token: null }, state.floor),
        };
      }
      if (output.type !== "granted" || output.mode !== input.mode || !(output.fencingToken > state.floor)) {
        return { ok: false, state };
      }
      const holder = { owner: input.owner, mode: input.mode, token: output.fencingToken };
      return { ok: true, state: withHolder(state, holder, output.fencingToken) };
    }
  }
}

function describe(input: LockInput, output: LockOutput | undefined): string {
  const head =
    input.op === "view"
      ? `view(${input.resource})`
      : input.op === "release"
        ? `release(${input.resource}, ${input.owner})`
        : `acquire(${input.resource}, ${input.owner}, ${input.mode})`;
  if (output === undefined) return `${head} -> ?`;
  switch (output.type) {
    case "granted":
      return `${head} -> granted ${output.mode} #${output.fencingToken}`;
    case "conflict":
      return `${head} -> conflict [${holderSet(output.holders)}]`;
    case "view":
      return `${head} -> [${holderSet(output.holders)}]`;
    default:
      return `${head} -> ${output.type}`;
  }
}

/** Locks checked one resource at a time; pending views are dropped (they change nothing). */
export const lockModel: Model<LockState, LockInput, LockOutput> = {
  init: () => ({ holders: [], floor: 0 }),
  step: lockStep,
  key: (s) => `${s.floor}|${s.holders.map((h) => `${h.owner}:${h.mode}:${h.token ?? "?"}`).join(",")}`,
  partition(history) {
    const byResource = new Map<string, LockOperation[]>();
    for (const op of history) {
      if (op.input.op === "view" && isPending(op)) continue;
      let list = byResource.get(op.input.resource);
      if (list === undefined) {
        list = [];
        byResource.set(op.input.resource, list);
      }
      list.push(op);
    }
    return [...byResource.values()];
  },
  describeOperation: describe,
};

/**
 * A direct check of fencing tokens, independent of the model's search:
 * - on one resource, an acknowledged grant B that was called after another acknowledged grant A
 *   returned has a larger token, unless B is the same owner re-acquiring in the same mode
 *   (idempotent: the same token), or A and B are both shared and of different owners (B may be
 *   an idempotent re-acquire of a shared holding granted before A, with its older token). When A
 *   is exclusive, any holding B renews was granted after A; when B is exclusive, its holding
 *   was granted after A's shared one (or is A's owner upgrading);
 * - within one Raft group (one token counter), a token value is never handed to two different
 *   (resource, owner, mode) holdings.
 * Returns a description of each violation (empty: none).
 */
export function fencingViolations(history: readonly LockOperation[], groupOf: (resource: string) => number): string[] {
  type Grant = { op: LockOperation; owner: string; mode: LockMode; token: number; resource: string };
  const grants: Grant[] = [];
  for (const op of history) {
    if (isPending(op) || op.input.op !== "acquire" || op.output?.type !== "granted") continue;
    const { resource, owner } = op.input;
    grants.push({ op, owner, resource, mode: op.output.mode, token: op.output.fencingToken });
  }
  const out: string[] = [];
  for (const a of grants) {
    for (const b of grants) {
      if (a.resource !== b.resource || !(a.op.return < b.op.call)) continue;
      const idempotent = a.owner === b.owner && a.mode === b.mode && a.token === b.token;
      // b may renew a shared holding that predates a's shared grant: its old token is smaller.
      const sharedRenewal = a.mode === "shared" && b.mode === "shared" && a.owner !== b.owner;
      if (!(b.token > a.token) && !idempotent && !sharedRenewal) {
        out.push(
          `${a.resource}: ${b.owner} got #${b.token} [${b.op.call}, ${b.op.return}] after ${a.owner} got #${a.token} [${a.op.call}, ${a.op.return}]`,
        );
      }
    }
  }
  const byToken = new Map<string, Grant>();
  for (const g of grants) {
    const k = `${groupOf(g.resource)}#${g.token}`;
    const seen = byToken.get(k);
    if (seen === undefined) byToken.set(k, g);
    else if (seen.resource !== g.resource || seen.owner !== g.owner || seen.mode !== g.mode) {
      out.push(
        `token ${k} granted to ${seen.resource}/${seen.owner}/${seen.mode} and to ${g.resource}/${g.owner}/${g.mode}`,
      );
    }
  }
  return out;
}
