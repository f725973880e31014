// The client's request and reply types, all derived from the service's zod schemas
// (workers/schemas.ts) by `import type`: no zod at run time, no hand-copied shapes.
import type { z } from "zod";
import type {
  AcquireBody,
  CacheGetReply as CacheGetReplySchema,
  CacheNodeReply as CacheNodeReplySchema,
  CachePutReply as CachePutReplySchema,
  DeleteQueueReply as DeleteQueueReplySchema,
  EnqueueBody,
  GrantReply,
  LockListReply as LockListReplySchema,
  LockViewReply,
  PeekBody,
  PeekReply,
  PurgeReply as PurgeReplySchema,
  QueueConfigBody,
  QueueListReply,
  ReceiveBody,
  RedriveBody,
  RenewBody,
} from "../workers/schemas.js";

export type LockMode = z.infer<typeof GrantReply>["mode"];
export type Grant = z.infer<typeof GrantReply>;
export type LockView = z.infer<typeof LockViewReply>;
export type LockList = z.infer<typeof LockListReplySchema>;
export type AcquireRequest = z.input<typeof AcquireBody>;
export type RenewRequest = z.input<typeof RenewBody>;

export type SendMessage = z.input<typeof EnqueueBody>["messages"][number];
export type ReceiveRequest = z.input<typeof ReceiveBody>;
export type RedriveRequest = z.input<typeof RedriveBody>;
export type QueueConfigRequest = z.input<typeof QueueConfigBody>;
export type PeekRequest = z.input<typeof PeekBody>;
export type QueueSummary = z.infer<typeof QueueListReply>["queues"][number];
export type PeekedMessage = z.infer<typeof PeekReply>["messages"][number];
export type PurgeReply = z.infer<typeof PurgeReplySchema>;
export type DeleteQueueReply = z.infer<typeof DeleteQueueReplySchema>;

export type CacheGetReply = z.infer<typeof CacheGetReplySchema>;
export type CachePutReply = z.infer<typeof CachePutReplySchema>;
export type CacheNodeReply = z.infer<typeof CacheNodeReplySchema>;

// Replies whose schemas are being added to workers/schemas.ts (TEMPORARY: replaced by z.infer once they land).
export interface ReleaseReply {
  released: boolean;
  withdrawn?: boolean;
}
export interface RenewReply {
  expiresAt: number;
}
export interface SendReply {
  messages: { id: string; shard: number }[];
}
export interface Message {
  id: string;
  body: unknown;
  key?: string;
  receipt: string;
  attempts: number;
  enqueuedAt: number;
}
export interface ReceiveReply {
  messages: Message[];
}
export interface AckReply {
  acked: number;
}
export interface NackReply {
  released: number;
}
export interface ExtendReply {
  extended: number;
}
export interface RedriveReply {
  moved: number;
}
export interface QueueConfig {
  queue: string;
  maxAttempts: number;
  visibilityMs: number;
}
export interface QueueStats {
  queue: string;
  visible: number;
  inflight: number;
  delayed: number;
  dlq: number;
  shards: { shard: number; visible: number; inflight: number }[];
}
export interface CacheDeleteReply {
  deleted: boolean;
}
export interface ClusterStatus {
  groups: {
    group: string;
    leader: string | null;
    term: number;
    commitIndex: number;
    peers: { id: string; role: string; matchIndex: number; lastContactMs: number | null }[];
  }[];
}
export interface MembershipReply {
  accepted: boolean;
  change: string;
  peer: string;
}
