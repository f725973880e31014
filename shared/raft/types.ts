/**
 * Plain data of the Raft core: entries, messages, hard state, snapshots.
 * Everything here is serialisable as JSON so a host can persist or send it as is.
 */

/** Peer identifier inside one Raft group. 0 means "nobody". */
export type NodeId = number;
export const NONE: NodeId = 0;

export type EntryType = "normal" | "conf";

/** One log entry. `data` is opaque to Raft (commands are JSON text by convention). */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: string;
}

/** What must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Group membership: voters decide elections and commits, learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  conf: ConfState;
}

/** A state machine image at `metadata.index`. `data` is produced by the StateMachine. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: string;
}

export type MessageType =
  // Local messages, never sent over the network: they let timers and the API share `step`.
  | "hup" // start an election
  | "beat" // leader: send heartbeats
  | "checkQuorum" // leader: step down unless a quorum was heard from
  | "prop" // propose entries
  | "transferLeader"
  | "unreachable"
  | "snapStatus"
  // Network messages.
  | "app"
  | "appResp"
  | "vote"
  | "voteResp"
  | "preVote"
  | "preVoteResp"
  | "snap"
  | "heartbeat"
  | "heartbeatResp"
  | "readIndex"
  | "readIndexResp"
  | "timeoutNow";

/**
 * One message. Fields not used by a type are left at their zero value so every message has
 * the same shape (cheap to create, easy to print, trivially serialisable).
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** app: term of the entry before `entries`; appResp reject: term of the hint. */
  logTerm: number;
  /** app: index before `entries`; appResp: last index matched, or rejected index; vote: last index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** appResp reject: the follower's hint for the next probe. */
  rejectHint: number;
  snapshot?: Snapshot;
  /** heartbeat/readIndex: ReadIndex request id; vote: "transfer" when forced by leadership transfer. */
  context: string;
}

export function message(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
    ...fields,
  };
}

export type StateRole = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state, reported when it changes (useful for routing and status pages). */
export interface SoftState {
  lead: NodeId;
  role: StateRole;
}

/** A linearizable read point: once `index` is applied, a read for `context` may be served. */
export interface ReadState {
  index: number;
  context: string;
}

/**
 * The batch of work a node hands back (see raw-node.ts for the order of work):
 * 1. persist `hardState`, `entries` and `snapshot` in one atomic write;
 * 2. send `messages`;
 * 3. install `snapshot` into the state machine and apply `committedEntries`;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** True when something durable changed (hard state term/vote, entries or snapshot). */
  mustSync: boolean;
}
