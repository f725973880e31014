/**
 * Where messages live: which shard of a queue, which Raft group a shard is on, and the receipt
 * format that names a delivery. Pure helpers the Worker and the state machine share.
 */
import { hash32 } from "../hashing/hash.js";

export const DLQ_SUFFIX = ".dlq";

/**
 * The shard of each message of one enqueue, in order:
 * - with `key`: `hash32(key) % shards`, so one key always lands on one shard (per-key order);
 * - else with a client-given `id`: `hash32(id) % shards`, so a retry of the same request lands
 *   on the shard whose dedup memory saw it first;
 * - else `batchShard` (the Worker picks it at random per request): the messages of a batch with
 *   neither stay together, so the batch is one command on one group, all or nothing, and batches
 *   spread evenly over the shards. planEnqueue then gives them ids that hash there, so the rule
 *   "by key, else by id" holds for every stored message. `queue` is not used yet: placement
 * does not depend on the queue today, and callers need not change if it ever does.
 */
export function placeMessages(
  _queue: string,
  messages: readonly { key?: string; id?: string }[],
  shards: number,
  batchShard: number,
): number[] {
  const rest = ((batchShard % shards) + shards) % shards;
  return messages.map((m) => {
    if (m.key !== undefined) return hash32(m.key) % shards;
    if (m.id !== undefined) return hash32(m.id) % shards;
    return rest;
  });
}

/**
 * The messages of one enqueue with their ids and shards. A message's shard depends only on what
 * it carries: its key, else its id — whether the client chose the id or this function did. A
 * message sent without either gets an id made to hash to the batch's shard (`newId()` plus a
 * counter), so the batch still stays together, and a resend with the ids of the first answer
 * (what a 503 tells clients to do) lands on the same shards, where deduplication knows them.
 * The Worker's route and the whole-system simulator both plan batches here.
 */
export function planEnqueue<M extends { key?: string; id?: string }>(
  queue: string,
  messages: readonly M[],
  shards: number,
  batchShard: number,
  newId: () => string,
): (M & { id: string; shard: number })[] {
  const placed = placeMessages(queue, messages, shards, batchShard);
  return messages.map((m, i) => {
    const shard = placed[i] as number;
    return { ...m, id: m.id ?? idOnShard(newId(), shard, shards), shard };
  });
}

/** `base` or `base.<n>` for the smallest n that hashes to `shard` (about `shards` tries). */
function idOnShard(base: string, shard: number, shards: number): string {
  if (hash32(base) % shards === shard) return base;
  for (let n = 1; ; n++) {
    const id = `${base}.${n}`;
    if (hash32(id) % shards === shard) return id;
  }
}

/** The dead-letter queue of `queue`: an ordinary queue, with the same shard numbers. */
export function dlqName(queue: string): string {
  return `${queue}${DLQ_SUFFIX}`;
}

/**
 * The key that places a shard on a Raft group (`groupOf(env, groupKey(q, s))`). Every `.dlq`
 * suffix is dropped, so `q/3`, `q.dlq/3` and `q.dlq.dlq/3` share a group: dead-lettering and
 * redrive then move a message inside one state machine, in one entry — atomic, never lost.
 */
export function groupKey(queue: string, shard: number): string {
  let base = queue;
  while (base.endsWith(DLQ_SUFFIX) && base.length > DLQ_SUFFIX.length) base = base.slice(0, -DLQ_SUFFIX.length);
  return `${base}/${shard}`;
}

/**
 * `<shard>:<seq>:<delivery>`. The shard tells the Worker where to send an ack; seq names the
 * message and delivery the one delivery (numbers never reused in a group), so a receipt from an
 * earlier delivery never matches the current one.
 */
export interface Receipt {
  shard: number;
  seq: number;
  delivery: number;
}

export function formatReceipt(r: Receipt): string {
  return `${r.shard}:${r.seq}:${r.delivery}`;
}

/** The parts of a receipt, or undefined for anything that is not one (counted as not acked). */
export function parseReceipt(receipt: string): Receipt | undefined {
  // Hand-parsed: acks parse every receipt on every replica, and this is on the hot path.
  const a = receipt.indexOf(":");
  const b = receipt.indexOf(":", a + 1);
  if (a < 0 || b < 0 || receipt.indexOf(":", b + 1) >= 0) return undefined;
  const shard = digits(receipt, 0, a);
  const seq = digits(receipt, a + 1, b);
  const delivery = digits(receipt, b + 1, receipt.length);
  if (Number.isNaN(shard) || Number.isNaN(seq) || Number.isNaN(delivery)) return undefined;
  return { shard, seq, delivery };
}

/** The number written with 1 to 15 decimal digits in s[from, to), else NaN. */
function digits(s: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return Number.NaN;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
}

/** The shard a receipt belongs to (undefined when malformed), so the Worker can split an ack by shard. */
export function receiptShard(receipt: string): number | undefined {
  return parseReceipt(receipt)?.shard;
}
