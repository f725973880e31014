// SyncClient: the service's routes (shared/API.md) as typed methods, grouped like the API
// (locks, queues, cache, cluster, admin), plus withLock and consume built on them.
import { type ConsumeOptions, consume, type Handler } from "./consume.js";
import { NotFoundError, SyncError } from "./errors.js";
import { type CallOptions, seg, Transport, type TransportOptions } from "./transport.js";
import type {
  AckReply,
  AcquireRequest,
  CacheDeleteReply,
  CacheGetReply,
  CacheNodeReply,
  CachePutReply,
  ClockReply,
  ClusterStatus,
  CrashReply,
  DeleteQueueReply,
  ExtendReply,
  Grant,
  HealReply,
  LockList,
  LockView,
  MembershipReply,
  Message,
  NackReply,
  PartitionReply,
  PeekedMessage,
  PeekReply,
  PeekRequest,
  PurgeReply,
  QueueConfig,
  QueueConfigRequest,
  QueueList,
  QueueStats,
  QueueSummary,
  ReceiveReply,
  ReceiveRequest,
  RedriveReply,
  RedriveRequest,
  ReleaseReply,
  RenewReply,
  RenewRequest,
  RestartReply,
  SendMessage,
  SendReply,
} from "./types.js";
import { type Lease, type WithLockOptions, withLock } from "./with-lock.js";

export type SyncClientOptions = TransportOptions;

/** Cancels one call: the fetch (and any backoff between its attempts) stops at once. */
export interface Cancellable {
  signal?: AbortSignal;
}

const LOCKS = "/v1/locks";
const QUEUES = "/v1/queues";

export class Locks {
  constructor(private readonly http: Transport) {}

  /** Grants the lock or throws LockConflictError / DeadlockError; waits up to `waitMs` on the server. */
  acquire(resource: string, request: AcquireRequest & Cancellable): Promise<Grant> {
    const { signal, ...body } = request;
    return this.http.call("POST", `${LOCKS}/${seg(resource)}/acquire`, { body, signal, holdMs: body.waitMs });
  }

  /** Releases a hold, or withdraws a wait of `owner` still queued (`withdrawn: true`); NotHolderError otherwise. */
  release(resource: string, request: { owner: string } & Cancellable): Promise<ReleaseReply> {
    const { signal, owner } = request;
    return this.http.call("POST", `${LOCKS}/${seg(resource)}/release`, { body: { owner }, signal });
  }

  renew(resource: string, request: RenewRequest & Cancellable): Promise<RenewReply> {
    const { signal, ...body } = request;
    return this.http.call("POST", `${LOCKS}/${seg(resource)}/renew`, { body, signal });
  }

  get(resource: string, options: Cancellable = {}): Promise<LockView> {
    return this.http.call("GET", `${LOCKS}/${seg(resource)}`, options);
  }

  list(options: { prefix?: string } & Cancellable = {}): Promise<LockList> {
    return this.http.call("GET", LOCKS, { query: { prefix: options.prefix }, signal: options.signal });
  }
}

export class Queues {
  constructor(private readonly http: Transport) {}

  send(queue: string, messages: SendMessage[], options: Cancellable = {}): Promise<SendReply> {
    return this.http.call("POST", `${QUEUES}/${seg(queue)}/messages`, { body: { messages }, ...options });
  }

  /** Up to `max` messages, long-polling up to `waitMs` (≤ 20000) when none is visible; [] when none came. */
  async receive(queue: string, request: ReceiveRequest & Cancellable = {}): Promise<Message[]> {
    const { signal, ...body } = request;
    const reply = await this.http.call<ReceiveReply>("POST", `${QUEUES}/${seg(queue)}/receive`, {
      body,
      signal,
      holdMs: body.waitMs,
    });
    return reply.messages;
  }

  ack(queue: string, receipts: string[], options: Cancellable = {}): Promise<AckReply> {
    return this.http.call("POST", `${QUEUES}/${seg(queue)}/ack`, { body: { receipts }, ...options });
  }

  nack(queue: string, receipts: string[], options: { delayMs?: number } & Cancellable = {}): Promise<NackReply> {
    const { signal, delayMs } = options;
    return this.http.call("POST", `${QUEUES}/${seg(queue)}/nack`, { body: { receipts, delayMs }, signal });
  }

  extend(queue: string, receipts: string[], visibilityMs: number, options: Cancellable = {}): Promise<ExtendReply> {
    return this.http.call("POST", `${QUEUES}/${seg(queue)}/extend`, { body: { receipts, visibilityMs }, ...options });
  }

  /** Moves up to `max` messages from `{queue}.dlq` back to `queue`. */
  redrive(queue: string, request: RedriveRequest & Cancellable = {}): Promise<RedriveReply> {
    const { signal, ...body } = request;
    return this.http.call("POST", `${QUEUES}/${seg(queue)}/redrive`, { body, signal });
  }

  configure(queue: string, request: QueueConfigRequest & Cancellable = {}): Promise<QueueConfig> {
    const { signal, ...body } = request;
    return this.http.call("PUT", `${QUEUES}/${seg(queue)}`, { body, signal });
  }

  stats(queue: string, options: Cancellable = {}): Promise<QueueStats> {
    return this.http.call("GET", `${QUEUES}/${seg(queue)}`, options);
  }

  async list(options: Cancellable = {}): Promise<QueueSummary[]> {
    return (await this.http.call<QueueList>("GET", QUEUES, options)).queues;
  }

  /** Visible messages without delivering them (no receipt, no attempt counted). */
  async peek(queue: string, request: PeekRequest & Cancellable = {}): Promise<PeekedMessage[]> {
    const { signal, ...body } = request;
    const reply = await this.http.call<PeekReply>("POST", `${QUEUES}/${seg(queue)}/peek`, {
      body,
      signal,
    });
    return reply.messages;
  }

  purge(queue: string, options: Cancellable = {}): Promise<PurgeReply> {
    return this.http.call("POST", `${QUEUES}/${seg(queue)}/purge`, { body: {}, ...options });
  }

  delete(queue: string, options: Cancellable = {}): Promise<DeleteQueueReply> {
    return this.http.call("DELETE", `${QUEUES}/${seg(queue)}`, options);
  }
}

/** Which cache node serves the call (`?node=`, default n1 on the service). */
export interface CacheOptions extends Cancellable {
  node?: string;
}

export class Cache {
  constructor(private readonly http: Transport) {}

  /** The cached value's reply, or undefined when the key has none (404). */
  async get(key: string, options: CacheOptions = {}): Promise<CacheGetReply | undefined> {
    try {
      return await this.http.call<CacheGetReply>("GET", `/v1/cache/${seg(key)}`, cacheCall(options));
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  put(
    key: string,
    value: unknown,
    options: CacheOptions & { propagation?: "invalidate" | "update" } = {},
  ): Promise<CachePutReply> {
    const call = cacheCall(options);
    return this.http.call("PUT", `/v1/cache/${seg(key)}`, {
      ...call,
      query: { ...call.query, propagation: options.propagation },
      body: { value },
    });
  }

  delete(key: string, options: CacheOptions = {}): Promise<CacheDeleteReply> {
    return this.http.call("DELETE", `/v1/cache/${seg(key)}`, cacheCall(options));
  }

  node(name: string, options: Cancellable = {}): Promise<CacheNodeReply> {
    return this.http.call("GET", `/v1/cache/nodes/${seg(name)}`, options);
  }
}

function cacheCall({ node, signal }: CacheOptions): CallOptions {
  return { query: { node }, signal };
}

export class Cluster {
  constructor(private readonly http: Transport) {}

  status(options: Cancellable = {}): Promise<ClusterStatus> {
    return this.http.call("GET", "/v1/cluster", options);
  }

  /** Adds peer `id` (p4, ...) to every group (admin token); `url` where it listens, for multi-process clusters. */
  addPeer(id: string, options: { url?: string } & Cancellable = {}): Promise<MembershipReply> {
    const { signal, url } = options;
    return this.http.call("POST", "/v1/cluster/peers", { body: { id, url }, signal });
  }

  removePeer(id: string, options: Cancellable = {}): Promise<MembershipReply> {
    return this.http.call("DELETE", `/v1/cluster/peers/${seg(id)}`, options);
  }
}

/** Fault injection (FAULT_INJECTION=true on the service, admin token). */
export class Admin {
  constructor(private readonly http: Transport) {}

  partition(sides: string[][], options: Cancellable = {}): Promise<PartitionReply> {
    return this.http.call("POST", "/v1/admin/partition", { body: { sides }, ...options });
  }

  heal(options: Cancellable = {}): Promise<HealReply> {
    return this.http.call("POST", "/v1/admin/heal", options);
  }

  crash(peerId: string, options: Cancellable = {}): Promise<CrashReply> {
    return this.http.call("POST", `/v1/admin/peers/${seg(peerId)}/crash`, options);
  }

  restart(peerId: string, options: Cancellable = {}): Promise<RestartReply> {
    return this.http.call("POST", `/v1/admin/peers/${seg(peerId)}/restart`, options);
  }

  clock(peerId: string, offsetMs: number, options: Cancellable = {}): Promise<ClockReply> {
    return this.http.call("POST", `/v1/admin/peers/${seg(peerId)}/clock`, { body: { offsetMs }, ...options });
  }
}

export class SyncClient {
  readonly locks: Locks;
  readonly queues: Queues;
  readonly cache: Cache;
  readonly cluster: Cluster;
  readonly admin: Admin;
  readonly #http: Transport;

  constructor(options: SyncClientOptions) {
    this.#http = new Transport(options);
    this.locks = new Locks(this.#http);
    this.queues = new Queues(this.#http);
    this.cache = new Cache(this.#http);
    this.cluster = new Cluster(this.#http);
    this.admin = new Admin(this.#http);
  }

  /** Runs `fn` holding the lock, renewed in the background, and releases it afterwards (see with-lock.ts). */
  withLock<T>(resource: string, fn: (lease: Lease) => Promise<T>, options: WithLockOptions = {}): Promise<T> {
    return withLock(this.locks, resource, fn, options);
  }

  /** Receives and handles messages until `signal` fires (see consume.ts). */
  consume(queue: string, handler: Handler, options: ConsumeOptions = {}): Promise<void> {
    return consume(this.queues, queue, handler, options);
  }

  /** GET /healthz answers 200 (the process serves). No retries: a probe says how it is now. */
  health(options: Cancellable = {}): Promise<boolean> {
    return this.#probe("/healthz", options);
  }

  /** GET /readyz answers 200 (every group has a leader). */
  ready(options: Cancellable = {}): Promise<boolean> {
    return this.#probe("/readyz", options);
  }

  async #probe(path: string, options: Cancellable): Promise<boolean> {
    try {
      await this.#http.call("GET", path, { ...options, attempts: 1 });
      return true;
    } catch (err) {
      if (err instanceof SyncError) return false;
      throw err; // the caller's abort
    }
  }
}
