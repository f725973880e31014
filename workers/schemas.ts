import { z } from "zod";

/** Names of resources, queues, keys, owners, consumers: 1–200 chars of [A-Za-z0-9._:@/-]. */
export const Name = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:@/-]+$/, "only letters, digits and . _ : @ / - are allowed");

export const LockMode = z.enum(["exclusive", "shared"]);

export const AcquireBody = z.object({
  owner: Name,
  mode: LockMode.default("exclusive"),
  ttlMs: z.number().int().min(100).max(3_600_000).default(30_000),
  waitMs: z.number().int().min(0).max(60_000).default(0),
});

export const ReleaseBody = z.object({ owner: Name });

export const RenewBody = z.object({
  owner: Name,
  ttlMs: z.number().int().min(100).max(3_600_000).optional(),
});

export const PeerBody = z.object({ id: z.string().regex(/^p[1-9][0-9]{0,3}$/, "peer ids are p1, p2, ...") });

export const PartitionBody = z.object({
  sides: z.array(z.array(z.string().regex(/^p[1-9][0-9]{0,3}$/)).min(1)).min(2),
});

export const Holder = z.object({ owner: z.string(), mode: LockMode, expiresAt: z.number() });

export const GrantReply = z.object({
  resource: z.string(),
  owner: z.string(),
  mode: LockMode,
  fencingToken: z.number(),
  expiresAt: z.number(),
});

export const LockViewReply = z.object({
  resource: z.string(),
  mode: LockMode.nullable(),
  holders: z.array(Holder),
  waiters: z.array(z.object({ owner: z.string(), mode: LockMode })),
});
