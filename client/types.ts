// The client's request and reply types, all derived from the service's zod schemas
// (workers/schemas.ts) by `import type`: no zod at run time, no hand-copied shapes.
// Requests use z.input (defaults optional), replies z.infer (what the routes answer).
import type { z } from "zod";
import type * as S from "../workers/schemas.js";

export type LockMode = z.infer<typeof S.LockMode>;
export type LockHolder = z.infer<typeof S.Holder>;
export type Grant = z.infer<typeof S.GrantReply>;
export type ReleaseReply = z.infer<typeof S.ReleaseReply>;
export type RenewReply = z.infer<typeof S.RenewReply>;
export type LockView = z.infer<typeof S.LockViewReply>;
export type LockList = z.infer<typeof S.LockListReply>;
export type AcquireRequest = z.input<typeof S.AcquireBody>;
export type RenewRequest = z.input<typeof S.RenewBody>;

export type SendMessage = z.input<typeof S.EnqueueBody>["messages"][number];
export type SendReply = z.infer<typeof S.EnqueueReply>;
export type ReceiveRequest = z.input<typeof S.ReceiveBody>;
export type Message = z.infer<typeof S.ReceivedMessage>;
export type ReceiveReply = z.infer<typeof S.ReceiveReply>;
export type AckReply = z.infer<typeof S.AckReply>;
export type NackReply = z.infer<typeof S.NackReply>;
export type ExtendReply = z.infer<typeof S.ExtendReply>;
export type RedriveRequest = z.input<typeof S.RedriveBody>;
export type RedriveReply = z.infer<typeof S.RedriveReply>;
export type QueueConfigRequest = z.input<typeof S.QueueConfigBody>;
export type QueueConfig = z.infer<typeof S.QueueConfigReply>;
export type QueueStats = z.infer<typeof S.QueueStatsReply>;
export type QueueSummary = z.infer<typeof S.QueueSummary>;
export type QueueList = z.infer<typeof S.QueueListReply>;
export type PeekRequest = z.input<typeof S.PeekBody>;
export type PeekedMessage = z.infer<typeof S.PeekedMessage>;
export type PeekReply = z.infer<typeof S.PeekReply>;
export type PurgeReply = z.infer<typeof S.PurgeReply>;
export type DeleteQueueReply = z.infer<typeof S.DeleteQueueReply>;

export type CacheGetReply = z.infer<typeof S.CacheGetReply>;
export type CachePutReply = z.infer<typeof S.CachePutReply>;
export type CacheDeleteReply = z.infer<typeof S.CacheDeleteReply>;
export type CacheNodeReply = z.infer<typeof S.CacheNodeReply>;

export type ClusterStatus = z.infer<typeof S.ClusterStatusReply>;
export type MembershipReply = z.infer<typeof S.MembershipReply>;
export type PartitionRequest = z.input<typeof S.PartitionBody>;
export type PartitionReply = z.infer<typeof S.PartitionReply>;
export type HealReply = z.infer<typeof S.HealReply>;
export type CrashReply = z.infer<typeof S.CrashReply>;
export type RestartReply = z.infer<typeof S.RestartReply>;
export type ClockReply = z.infer<typeof S.ClockReply>;
