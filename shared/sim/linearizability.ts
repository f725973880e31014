/**
 * Linearizability checker: the Wing–Gong search with Lowe's memoisation, split
 * per partition the way Porcupine does it.
 *
 * A history is linearizable when every completed operation can be given one
 * point in time between its call and its return so that, taken in that order,
 * the operations are a legal run of a sequential model. The search walks the
 * call/return events in time order, tries to "linearize" (apply to the model)
 * each operation whose call it reaches, and backtracks when it reaches the
 * return of an operation that is still not linearized: that operation had to
 * take effect before its return, so the choices made so far were wrong.
 *
 * Conventions (read these before feeding a simulator's history in):
 *
 * - Times are logical numbers, `call < return` for every operation.
 * - Equal times: a return at time t comes BEFORE a call at time t. An operation
 *   that returns at t therefore strictly precedes one that is called at t: a
 *   client that sees a reply and then acts in the same tick acts after the reply.
 *   Pass `{ sameTimeIsConcurrent: true }` if your clock is too coarse for that
 *   and events at one tick may really have overlapped (this is more permissive:
 *   it can only turn "illegal" into "ok").
 * - Pending operations (client crashed, timed out, reply lost) are given
 *   `return: Infinity` and `pending: true`, with no output. They may take
 *   effect at any point after their call, or never. The checker realises this
 *   with the standard trick: the return at +Infinity never forces them, and the
 *   model is stepped with `output === undefined`, which it must accept for any
 *   state in which the input can take effect. The search succeeds as soon as
 *   every completed operation is linearized; pending ones still left are the
 *   ones that "never happened" (or happened after everything observed).
 * - Deterministic: no randomness, no clock. The only bound is `maxSteps`, which
 *   turns an over-long search into "unknown" — never into a false "ok".
 *
 * Pure TypeScript, no dependencies, no Node or Workers APIs.
 */

/** One operation of a history, as a client saw it. */
export interface Operation<I, O> {
  /** Who issued it. Only used in descriptions: the search does not need it. */
  clientId: number;
  input: I;
  /** Logical time of the call. Must be finite. */
  call: number;
  /** Logical time of the return; `Infinity` for a pending operation. Must be > `call`. */
  return: number;
  /** The observed result; absent (and ignored) for a pending operation. */
  output?: O;
  /** Set on operations that never returned; such an operation must have `return: Infinity`. */
  pending?: true;
}

/** What `Model.step` answers: was the transition legal, and the state after it. */
export interface StepResult<S> {
  ok: boolean;
  state: S;
}

/**
 * A sequential specification. States must be treated as immutable values:
 * the search keeps old states on its backtracking stack, so `step` must return
 * a new state rather than mutating the one it was given.
 */
export interface Model<S, I, O> {
  init(): S;
  /**
   * Apply `input` to `state`. `output` is what the client observed; the step is
   * legal (`ok: true`) if the model could have produced that output from
   * `state`. `output === undefined` means the outcome is unknown (a pending
   * operation): answer `ok: true` with the state the input would produce,
   * unless the input cannot take effect in that state at all. The next state
   * must not depend on anything but `state`, `input` and `output`.
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /**
   * A string that is equal for two states exactly when they are equal. Used
   * for memoisation: two search branches that linearized the same set of
   * operations and reached equal states have the same future.
   */
  key(state: S): string;
  /**
   * Split a history into independent sub-histories (e.g. one per key) that are
   * each checked alone; a history is linearizable iff every part is. Much
   * faster than checking the whole history, since the search is exponential
   * in the worst case. May drop operations that can never matter (e.g. pending
   * reads). Absent: the whole history is one partition.
   */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** Human-readable form of one operation, for `CheckResult.explanation`. */
  describeOperation?(input: I, output: O | undefined): string;
}

export interface CheckOptions {
  /**
   * Search steps allowed per partition before giving up with "unknown".
   * A step is one visit of one call or return event. Default 1,000,000
   * (roughly a second or two on a laptop). A step bound rather than a time
   * bound keeps the answer the same on every machine.
   */
  maxSteps?: number;
  /** Treat a return and a call at the same time as overlapping. Default false. */
  sameTimeIsConcurrent?: boolean;
}

export interface CheckResult<I, O> {
  /**
   * "ok": linearizable. "illegal": proven not linearizable. "unknown": some
   * partition ran out of `maxSteps` and no partition was proven illegal.
   */
  result: "ok" | "illegal" | "unknown";
  /** Number of partitions checked. */
  partitions: number;
  /**
   * Index (in `model.partition` order) of the first illegal partition, or for
   * "unknown" of the first partition whose search ran out of steps.
   */
  partition?: number;
  /** Search steps used in total, across partitions. */
  steps: number;
  /**
   * For "illegal": the longest legal sequence of the failing partition's
   * operations the search found, in linearization order (it may include
   * pending operations). No remaining operation of that partition could be
   * linearized after it.
   */
  longestLinearizable?: Operation<I, O>[];
  /** For "illegal": a few lines saying which partition failed and where. */
  explanation?: string;
}

export const DEFAULT_MAX_STEPS = 1_000_000;

/** True for an operation that never returned (explicitly flagged, or return = Infinity). */
export function isPending<I, O>(op: Operation<I, O>): boolean {
  return op.pending === true || op.return === Infinity;
}

/**
 * Check a history against a model. Partitions are checked in order, each with
 * its own step budget; the first illegal one decides, so a partition that ran
 * out of steps does not hide a violation in another.
 *
 * Throws RangeError for malformed operations (non-finite call, return <= call,
 * `pending` with a finite return).
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
  const sameTimeIsConcurrent = options.sameTimeIsConcurrent ?? false;
  history.forEach(validate);

  const parts = model.partition ? model.partition(history) : [history.slice()];
  let steps = 0;
  let firstUnknown: number | undefined;
  for (let p = 0; p < parts.length; p++) {
    const ops = parts[p] ?? [];
    const outcome = searchPartition(model, ops, maxSteps, sameTimeIsConcurrent);
    steps += outcome.steps;
    if (outcome.result === "illegal") {
      const longest = outcome.longest.map((i) => ops[i]).filter(isDefined);
      return {
        result: "illegal",
        partitions: parts.length,
        partition: p,
        steps,
        longestLinearizable: longest,
        explanation: explain(model, p, ops, longest),
      };
    }
    if (outcome.result === "unknown" && firstUnknown === undefined) firstUnknown = p;
  }
  if (firstUnknown !== undefined) {
    return { result: "unknown", partitions: parts.length, partition: firstUnknown, steps };
  }
  return { result: "ok", partitions: parts.length, steps };
}

function validate<I, O>(op: Operation<I, O>, index: number): void {
  if (!Number.isFinite(op.call)) {
    throw new RangeError(`operation ${index}: call time must be finite, got ${op.call}`);
  }
  // NaN fails this comparison too, which is what we want.
  if (!(op.return > op.call)) {
    throw new RangeError(`operation ${index}: return (${op.return}) must be greater than call (${op.call})`);
  }
  if (op.pending === true && op.return !== Infinity) {
    throw new RangeError(`operation ${index}: a pending operation must have return = Infinity`);
  }
}

function isDefined<T>(x: T | undefined): x is T {
  return x !== undefined;
}

// ---------------------------------------------------------------------------
// The search over one partition.

/**
 * One call or return event in the doubly linked event list. Linearizing an
 * operation unlinks ("lifts") both its events; backtracking relinks them. The
 * list only ever changes in stack order, so each node's own prev/next pointers
 * still say where it belongs when it is put back.
 */
interface EventNode {
  op: number;
  isCall: boolean;
  /** For a call: its return event. For a return: null. */
  match: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

interface Frame<S> {
  node: EventNode;
  /** State before this operation was applied, restored on backtrack. */
  state: S;
}

interface PartitionOutcome {
  result: "ok" | "illegal" | "unknown";
  steps: number;
  /** Operation indices of the deepest linearization reached (for "illegal"). */
  longest: number[];
}

function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps: number,
  sameTimeIsConcurrent: boolean,
): PartitionOutcome {
  const head = buildEventList(ops, sameTimeIsConcurrent);
  const pending = ops.map(isPending);
  // Success needs every completed operation linearized; pending ones are optional.
  let completedLeft = pending.filter((p) => !p).length;

  const linearized = new Bitset(ops.length);
  const seen = new Set<string>();
  const stack: Frame<S>[] = [];
  let longest: number[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;

  while (completedLeft > 0) {
    if (steps >= maxSteps) return { result: "unknown", steps, longest };
    // The list always ends with a return event, and we only move forward from
    // a call (whose return is still linked after it), so entry is never null.
    if (entry === null) throw new Error("linearizability: event list ended unexpectedly");
    steps++;

    if (entry.isCall) {
      const op = ops[entry.op];
      if (op === undefined) throw new Error("linearizability: event refers to a missing operation");
      const isPendingOp = pending[entry.op] === true;
      const next = model.step(state, op.input, isPendingOp ? undefined : op.output);
      if (next.ok) {
        linearized.set(entry.op);
        // The bitset key has a fixed length per partition, so plain
        // concatenation with the state key cannot collide.
        const cacheKey = linearized.key() + model.key(next.state);
        if (!seen.has(cacheKey)) {
          seen.add(cacheKey);
          stack.push({ node: entry, state });
          state = next.state;
          lift(entry);
          if (!isPendingOp) completedLeft--;
          if (stack.length > longest.length) longest = stack.map((f) => f.node.op);
          entry = head.next;
          continue;
        }
        // Same set of operations, same state: already explored, and it failed.
        linearized.clear(entry.op);
      }
      entry = entry.next;
    } else {
      // We reached the return of an operation that is not linearized yet: it
      // cannot be placed later, so undo the most recent choice and try the
      // next candidate after it.
      const top = stack.pop();
      if (top === undefined) return { result: "illegal", steps, longest };
      state = top.state;
      linearized.clear(top.node.op);
      unlift(top.node);
      if (pending[top.node.op] !== true) completedLeft++;
      entry = top.node.next;
    }
  }
  return { result: "ok", steps, longest };
}

/** Sorted call/return events as a linked list behind a sentinel head. */
function buildEventList<I, O>(ops: readonly Operation<I, O>[], sameTimeIsConcurrent: boolean): EventNode {
  type Ev = { time: number; rank: number; node: EventNode };
  const events: Ev[] = [];
  // Rank decides order at equal times: by default returns (0) before calls (1).
  const callRank = sameTimeIsConcurrent ? 0 : 1;
  const returnRank = sameTimeIsConcurrent ? 1 : 0;
  ops.forEach((op, i) => {
    const ret: EventNode = { op: i, isCall: false, match: null, prev: null, next: null };
    const call: EventNode = { op: i, isCall: true, match: ret, prev: null, next: null };
    events.push({ time: op.call, rank: callRank, node: call });
    // A pending operation's return sits at +Infinity, after every real event: it never forces the op.
    events.push({ time: isPending(op) ? Infinity : op.return, rank: returnRank, node: ret });
  });
  // Ties beyond time and kind are broken by operation index, so the search
  // order (and so the reported prefix) is fully deterministic.
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.rank !== b.rank) return a.rank - b.rank;
    return a.node.op - b.node.op;
  });

  const head: EventNode = { op: -1, isCall: false, match: null, prev: null, next: null };
  let last = head;
  for (const ev of events) {
    ev.node.prev = last;
    last.next = ev.node;
    last = ev.node;
  }
  return head;
}

/** Unlink a call event and its return event. */
function lift(call: EventNode): void {
  const ret = call.match;
  if (ret === null || call.prev === null || call.next === null || ret.prev === null) {
    throw new Error("linearizability: lift on a malformed event list");
  }
  call.prev.next = call.next;
  call.next.prev = call.prev;
  ret.prev.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Relink what `lift` unlinked, in reverse order. */
function unlift(call: EventNode): void {
  const ret = call.match;
  if (ret === null || call.prev === null || call.next === null || ret.prev === null) {
    throw new Error("linearizability: unlift on a malformed event list");
  }
  ret.prev.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev.next = call;
  call.next.prev = call;
}

/** Fixed-size bitset whose `key()` is a compact string usable in a Set. */
class Bitset {
  private readonly words: Uint32Array;

  constructor(size: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)));
  }

  set(i: number): void {
    const w = i >>> 5;
    this.words[w] = (this.words[w] ?? 0) | (1 << (i & 31));
  }

  clear(i: number): void {
    const w = i >>> 5;
    this.words[w] = (this.words[w] ?? 0) & ~(1 << (i & 31));
  }

  /** Two UTF-16 code units per word; always 2 × words.length characters. */
  key(): string {
    let s = "";
    for (const w of this.words) s += String.fromCharCode(w & 0xffff, w >>> 16);
    return s;
  }
}

function explain<S, I, O>(
  model: Model<S, I, O>,
  partition: number,
  ops: readonly Operation<I, O>[],
  longest: readonly Operation<I, O>[],
): string {
  const describe = (op: Operation<I, O>): string => {
    const out = isPending(op) ? undefined : op.output;
    const body = model.describeOperation
      ? model.describeOperation(op.input, out)
      : `${JSON.stringify(op.input)} -> ${isPending(op) ? "?" : JSON.stringify(out)}`;
    const ret = isPending(op) ? "pending" : String(op.return);
    return `client ${op.clientId} [${op.call}, ${ret}] ${body}`;
  };
  const done = new Set(longest);
  // The earliest-returning operation left out is the one the search kept
  // running into: it could not be linearized before its return.
  const blocking = ops
    .filter((op) => !done.has(op) && !isPending(op))
    .reduce<Operation<I, O> | undefined>((a, b) => (a === undefined || b.return < a.return ? b : a), undefined);
  const lines = [
    `partition ${partition} (${ops.length} operations) is not linearizable.`,
    `Longest linearizable sequence found (${longest.length} operations):`,
    ...longest.map((op, i) => `  ${i + 1}. ${describe(op)}`),
  ];
  if (blocking !== undefined) {
    lines.push(`No remaining operation can follow it; first to return among them: ${describe(blocking)}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Ready-made models.

/** Input of a single register (one key). Values are plain strings; null = absent. */
export type RegisterInput =
  | { op: "get" }
  | { op: "put"; value: string }
  | { op: "delete" }
  /** Set to `value` iff the current value is `expected` (null: iff absent). */
  | { op: "cas"; expected: string | null; value: string };

/**
 * Observed outputs. get: `value` (string, or null for absent; a missing
 * `value` is read as null). cas: `ok` says whether it swapped (missing:
 * outcome unknown, either is accepted). put/delete: ignored.
 */
export interface KvOutput {
  value?: string | null;
  ok?: boolean;
}

/** A key-value operation: a register operation on `key`. */
export type KvInput = RegisterInput & { key: string };

/** State = current value, null when absent. */
export type RegisterState = string | null;

function registerStep(
  state: RegisterState,
  input: RegisterInput,
  output: KvOutput | undefined,
): StepResult<RegisterState> {
  switch (input.op) {
    case "get":
      return { ok: output === undefined || (output.value ?? null) === state, state };
    case "put":
      return { ok: true, state: input.value };
    case "delete":
      return { ok: true, state: null };
    case "cas": {
      const swaps = state === input.expected;
      const observed = output?.ok;
      return {
        ok: observed === undefined || observed === swaps,
        state: swaps ? input.value : state,
      };
    }
  }
}

function describeRegisterOp(input: RegisterInput, output: KvOutput | undefined, key?: string): string {
  const k = key === undefined ? "" : `${JSON.stringify(key)}`;
  const sep = key === undefined ? "" : ", ";
  const outcomeUnknown = output === undefined;
  switch (input.op) {
    case "get":
      return `get(${k}) -> ${outcomeUnknown ? "?" : JSON.stringify(output.value ?? null)}`;
    case "put":
      return `put(${k}${sep}${JSON.stringify(input.value)})`;
    case "delete":
      return `delete(${k})`;
    case "cas":
      return (
        `cas(${k}${sep}${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)}) -> ` +
        (outcomeUnknown || output.ok === undefined ? "?" : String(output.ok))
      );
  }
}

// Injective: "N" is never the key of a string value, which starts with "V".
const registerKey = (state: RegisterState): string => (state === null ? "N" : `V${state}`);

/** A single register, initially absent (null). No partitioning. */
export const registerModel: Model<RegisterState, RegisterInput, KvOutput> = {
  init: () => null,
  step: registerStep,
  key: registerKey,
  describeOperation: (input, output) => describeRegisterOp(input, output),
};

/**
 * A key-value store with every key initially absent, checked one key at a
 * time: each partition is one key's operations, and the state is that key's
 * value. Partitions come in order of each key's first appearance. Pending
 * gets are dropped: they change nothing and accept any value, so they can
 * only slow the search down.
 */
export const kvModel: Model<RegisterState, KvInput, KvOutput> = {
  init: () => null,
  step: registerStep,
  key: registerKey,
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      if (op.input.op === "get" && isPending(op)) continue;
      let list = byKey.get(op.input.key);
      if (list === undefined) {
        list = [];
        byKey.set(op.input.key, list);
      }
      list.push(op);
    }
    return [...byKey.values()];
  },
  describeOperation: (input, output) => describeRegisterOp(input, output, input.key),
};
