/**
 * A small deterministic in-memory network of RawNodes for the Raft unit tests.
 *
 * Every node has its own MemoryStorage (its "disk") and a seeded Rand. `settle()` drains the Ready
 * of every node in id order (persist, collect messages, apply, advance), delivers the collected
 * messages in order (minus those the filters drop), and repeats until nothing is left to do.
 */
import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Message,
  message,
  type NodeId,
  type RaftConfig,
  Rand,
  RawNode,
  type ReadState,
  type Ready,
  type Snapshot,
} from "../../shared/raft/index.js";

export const ELECTION_TICK = 10;
export const HEARTBEAT_TICK = 1;

export type NodeOptions = Partial<Omit<RaftConfig, "id" | "storage" | "rand">>;

export interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Every committed entry handed to the host, in order (no-ops and conf entries included). */
  applied: Entry[];
  /** The state machine: the data of the applied normal, non-empty entries (or restored from a snapshot). */
  state: string[];
  readStates: ReadState[];
  options: NodeOptions;
}

export type DropFilter = (m: Message) => boolean;

export function ids(n: number): NodeId[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** A MemoryStorage bootstrapped with `conf`, optionally holding `terms` as entries 1..n and a hard state. */
export function makeStorage(conf: ConfState, terms: number[] = [], hs?: HardState): MemoryStorage {
  const storage = new MemoryStorage(conf);
  storage.append(terms.map((term, i) => entry(i + 1, term)));
  if (hs) storage.setHardState(hs);
  return storage;
}

export function entry(index: number, term: number, data = ""): Entry {
  return { index, term, type: "normal", data };
}

export function newRawNode(id: NodeId, storage: MemoryStorage, options: NodeOptions = {}, seed = id): RawNode {
  return new RawNode({
    id,
    storage,
    rand: new Rand(seed),
    electionTick: ELECTION_TICK,
    heartbeatTick: HEARTBEAT_TICK,
    ...options,
  });
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Every message handed out by a Ready, in send order, whether delivered or dropped. */
  readonly sent: Message[] = [];
  /** Called after each Ready is persisted and before its messages are sent (to check the contract). */
  onPersist: ((node: TestNode, rd: Ready) => void) | undefined;
  readonly filters: DropFilter[] = [];
  private readonly isolated = new Set<NodeId>();

  /** `n` voters 1..n, each bootstrapped with voters [1..n]; `storages` overrides a node's disk. */
  constructor(n: number, options: NodeOptions = {}, storages: Map<NodeId, MemoryStorage> = new Map()) {
    const conf: ConfState = { voters: ids(n), learners: [] };
    for (const id of ids(n)) this.add(id, storages.get(id) ?? new MemoryStorage(conf), options);
  }

  add(id: NodeId, storage: MemoryStorage, options: NodeOptions = {}): TestNode {
    const node: TestNode = {
      id,
      raw: newRawNode(id, storage, options),
      storage,
      applied: [],
      state: [],
      readStates: [],
      options,
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  /** Crash and restart: a new RawNode on the same storage; volatile state (and the state machine) is lost. */
  restart(id: NodeId, seed = id + 100): TestNode {
    const n = this.node(id);
    n.raw = newRawNode(id, n.storage, n.options, seed);
    n.applied = [];
    n.state = [];
    n.readStates = [];
    return n;
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(): void {
    this.isolated.clear();
    this.filters.length = 0;
  }

  drop(filter: DropFilter): void {
    this.filters.push(filter);
  }

  private dropped(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return true;
    return this.filters.some((f) => f(m));
  }

  /** Handles one Ready of node `id` like a host would; returns its messages. */
  private handleReady(n: TestNode): Message[] {
    const rd = n.raw.ready();
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.onPersist?.(n, rd);
    if (rd.snapshot) n.state = restoreState(rd.snapshot);
    for (const e of rd.committedEntries) {
      n.applied.push(e);
      if (e.type === "normal" && e.data !== "") n.state.push(e.data);
    }
    n.readStates.push(...rd.readStates);
    n.raw.advance(rd);
    return rd.messages;
  }

  /** Drains every node, then delivers; repeats until quiescent. Returns the messages delivered. */
  settle(maxRounds = 1000): Message[] {
    const delivered: Message[] = [];
    for (let round = 0; round < maxRounds; round++) {
      const outbox: Message[] = [];
      for (const n of this.nodes.values()) {
        while (n.raw.hasReady()) outbox.push(...this.handleReady(n));
      }
      if (outbox.length === 0) return delivered;
      for (const m of outbox) {
        this.sent.push(m);
        const to = this.nodes.get(m.to);
        if (to === undefined || this.dropped(m)) continue;
        delivered.push(m);
        to.raw.step(m);
      }
    }
    throw new Error(`network did not settle within ${maxRounds} rounds`);
  }

  /** Ticks the given nodes (default: all) `times` times, settling after each tick. */
  tick(times = 1, which: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < times; i++) {
      for (const id of which) this.raw(id).tick();
      this.settle();
    }
  }

  /** Makes `id` campaign now and settles: with a connected majority it becomes leader. */
  elect(id: NodeId): void {
    this.raw(id).campaign();
    this.settle();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.status().role === "leader").map((n) => n.id);
  }

  /** Messages of `type` sent (delivered or not) since index `from` of `sent`. */
  count(type: Message["type"], pred: (m: Message) => boolean = () => true, from = 0): number {
    return this.sent.slice(from).filter((m) => m.type === type && pred(m)).length;
  }
}

/** The test state machine's snapshot image: the applied data, as JSON. */
export function stateImage(state: readonly string[]): string {
  return JSON.stringify(state);
}

function restoreState(s: Snapshot): string[] {
  return s.data === "" ? [] : (JSON.parse(s.data) as string[]);
}

/** Data of the non-empty normal entries among `ents`. */
export function datas(ents: readonly Entry[]): string[] {
  return ents.filter((e) => e.type === "normal" && e.data !== "").map((e) => e.data);
}

/** A standalone node `id` of an `n`-voter group, with an optional log (terms of entries 1..k) and term. */
export function standalone(
  id: NodeId,
  n: number,
  terms: number[] = [],
  term = 0,
  seed = id,
  options: NodeOptions = {},
) {
  const storage = makeStorage({ voters: ids(n), learners: [] }, terms, { term, vote: 0, commit: 0 });
  const raw = newRawNode(id, storage, options, seed);
  return { raw, storage };
}

/** A standalone node 1 of an `n`-voter group made leader (of term `term + 1`) by granted votes; Ready drained. */
export function standaloneLeader(n: number, terms: number[] = [], term = 0, options: NodeOptions = {}) {
  const { raw, storage } = standalone(1, n, terms, term, 1, options);
  raw.campaign();
  for (const id of ids(n).slice(1)) raw.step(message({ type: "preVoteResp", from: id, to: 1, term: term + 1 }));
  for (const id of ids(n).slice(1)) raw.step(message({ type: "voteResp", from: id, to: 1, term: term + 1 }));
  if (raw.status().role !== "leader") throw new Error("not elected");
  persistReady(raw, storage);
  return { raw, storage };
}

/** Drains a standalone RawNode's Ready into its storage (no network); returns the Ready. */
export function persistReady(raw: RawNode, storage: MemoryStorage): Ready {
  const rd = raw.ready();
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  raw.advance(rd);
  return rd;
}

/** A 3-voter network led by 1 with "a" committed everywhere (commit index 2). */
export function cluster(): Network {
  const net = new Network(3);
  net.elect(1);
  net.raw(1).propose(["a"]);
  net.settle();
  net.tick(1, [1]);
  return net;
}
