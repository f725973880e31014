/**
 * Commands, results and constants of the queue state machine: all plain JSON data. Commands
 * travel as the `data` of Raft entries; results go back to the host, which answers HTTP.
 *
 * One state machine holds every queue shard of one Raft group; a command names its shard by
 * `queue` + `shard`. Every command carries `now`, the proposing leader's clock in ms. Replicas
 * never read a clock: they use `t = max(previous t, now)`, so time never runs backwards when
 * leadership moves to a node whose clock is behind.
 */

/** Shards per queue unless the host is configured otherwise (the count is never stored here). */
export const DEFAULT_SHARDS = 8;
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_VISIBILITY_MS = 30_000;
/** A message id seen in a queue within this long is acknowledged again, not enqueued again. */
export const DEDUP_WINDOW_MS = 5 * 60_000;
/** The most ids one group remembers; past it the oldest are forgotten early (see dedup.ts). */
export const DEFAULT_DEDUP_CAP = 100_000;
/** The most messages (any state) one shard holds; an enqueue that would pass it is refused whole. */
export const DEFAULT_MAX_SHARD_MESSAGES = 100_000;

export interface NewMessage {
  /** Required here: the Worker generates one when the client gave none. */
  id: string;
  /** Any JSON value; stored (and delivered) as its JSON text. */
  body: unknown;
  key?: string;
  /** Invisible until t + delayMs. */
  delayMs?: number;
}

/** All or nothing: the whole batch is accepted, or refused with nothing changed. */
export interface EnqueueCommand {
  type: "enqueue";
  queue: string;
  shard: number;
  messages: NewMessage[];
  now: number;
}

/**
 * Takes up to `max` deliverable messages in enqueue order. `maxAttempts` and `visibilityMs`
 * travel with the command (the Worker reads the queue's config); when absent, this group's
 * stored config for the queue applies, else the defaults. `consumer` is accepted for logs only.
 */
export interface ReceiveCommand {
  type: "receive";
  queue: string;
  shard: number;
  max: number;
  /** Stop once the bodies delivered reach this many UTF-16 units (at least one message is delivered). */
  maxBytes?: number;
  visibilityMs?: number;
  maxAttempts?: number;
  consumer?: string;
  now: number;
}

export interface AckCommand {
  type: "ack";
  queue: string;
  shard: number;
  receipts: string[];
  now: number;
}

/** Ends the deliveries of `receipts` early: visible again at t + delayMs (default 0). */
export interface NackCommand {
  type: "nack";
  queue: string;
  shard: number;
  receipts: string[];
  delayMs?: number;
  now: number;
}

/** Sets the in-flight deadline of each live delivery to t + visibilityMs (it may also shorten it). */
export interface ExtendCommand {
  type: "extend";
  queue: string;
  shard: number;
  receipts: string[];
  visibilityMs: number;
  now: number;
}

/** Moves up to `max` (default all) messages that are not in flight from `<queue>.dlq` back to `<queue>`, same shard. */
export interface RedriveCommand {
  type: "redrive";
  queue: string;
  shard: number;
  max?: number;
  now: number;
}

/** Stores the queue's config in this group; fields left out keep their value. */
export interface ConfigureCommand {
  type: "configure";
  queue: string;
  maxAttempts?: number;
  visibilityMs?: number;
  now: number;
}

/** Removes every message of `queue` on `shard` (visible, in flight, delayed); its DLQ stays. */
export interface PurgeCommand {
  type: "purge";
  queue: string;
  shard: number;
  now: number;
}

/**
 * Forgets `queue` on this group: every shard of it and of `<queue>.dlq`, their stored config and
 * the ids its dedup window remembers. A later enqueue creates the queue afresh.
 */
export interface DeleteQueueCommand {
  type: "delete";
  queue: string;
  now: number;
}

export type QueueCommand =
  | EnqueueCommand
  | ReceiveCommand
  | AckCommand
  | NackCommand
  | ExtendCommand
  | RedriveCommand
  | ConfigureCommand
  | PurgeCommand
  | DeleteQueueCommand;

export interface QueueConfig {
  maxAttempts: number;
  visibilityMs: number;
}

/** One message of an accepted enqueue: where it lives, and whether it was already there. */
export interface Enqueued {
  id: string;
  shard: number;
  duplicate: boolean;
}

/** One delivery, as `POST /receive` returns it. `body` is the stored JSON text (the host splices it in). */
export interface Delivery {
  id: string;
  body: string;
  key?: string;
  receipt: string;
  attempts: number;
  enqueuedAt: number;
}

/** The direct answer to the command of one entry (goes back to its proposer). */
export type QueueResult =
  | { type: "enqueued"; queue: string; shard: number; messages: Enqueued[] }
  /** Nothing was enqueued: an invalid message (`invalid`) or the shard is full (`full`). */
  | { type: "rejected"; queue: string; shard: number; reason: "invalid" | "full"; detail: string }
  /** `deadLettered` messages moved to `<queue>.dlq` instead of a delivery beyond maxAttempts. */
  | { type: "received"; queue: string; shard: number; messages: Delivery[]; deadLettered: number }
  | { type: "acked"; queue: string; shard: number; acked: number }
  | { type: "released"; queue: string; shard: number; released: number }
  | { type: "extended"; queue: string; shard: number; extended: number }
  | { type: "redriven"; queue: string; shard: number; moved: number }
  | { type: "purged"; queue: string; shard: number; purged: number }
  /** `messages`: how many messages of the queue and its DLQ this group dropped. */
  | { type: "deleted"; queue: string; messages: number }
  | ({ type: "configured"; queue: string } & QueueConfig);

/**
 * A shard that got (or will get at `at`) visible messages from this apply: the host wakes the
 * long polls waiting on it. Messages also become visible on their own when a delivery's
 * visibility or a delay runs out: for those the host asks `nextVisibleAt(queue, shard)`.
 */
export interface Wake {
  queue: string;
  shard: number;
  at: number;
}

export interface QueueApplied {
  result: QueueResult;
  wake: Wake[];
}

/** The body of one shard in `GET /v1/queues/{queue}`; `dlq` counts every message of `<queue>.dlq` on that shard. */
export interface ShardStats {
  visible: number;
  inflight: number;
  delayed: number;
  dlq: number;
}

/** A visible message as `POST /peek` shows it: no receipt, nothing changed. */
export type Peeked = Omit<Delivery, "receipt">;

/** Counters of this group since it began (they travel in snapshots), for `/metrics`. */
export interface QueueTotals {
  /** New copies stored by enqueue (duplicates not counted). */
  enqueued: number;
  duplicates: number;
  delivered: number;
  /** Deliveries of a message delivered before (included in `delivered`). */
  redelivered: number;
  acked: number;
  deadLettered: number;
  redriven: number;
}
