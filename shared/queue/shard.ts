/**
 * One shard of one queue: its live messages in enqueue order. Plain data, stored in snapshots
 * as is. The functions here are the rules that look at one shard only; the QueueTable owns
 * time, the group's counters, dead-lettering between queues and dedup.
 *
 * A message's state at time t is derived, never stored, so nothing has to happen when a
 * visibility timeout or a delay runs out (lazy expiry, no timer):
 * - visible:   visibleAt ≤ t (an expired delivery is simply visible again);
 * - in flight: visibleAt > t and delivery ≠ 0;
 * - delayed:   visibleAt > t and delivery = 0 (an enqueue delay or a nack delay).
 */

export interface Message {
  /** Group-wide, increasing: the FIFO order, and the receipt's message part. Never reused. */
  seq: number;
  id: string;
  /** The body's JSON text. */
  body: string;
  key?: string;
  /** When the first copy was enqueued; kept through dead-lettering and redrive. */
  enqueuedAt: number;
  /** Deliveries so far (reset when moved to the DLQ and when redriven). */
  attempts: number;
  visibleAt: number;
  /** The current delivery's group-wide number (0 = none since the last release); see above. */
  delivery: number;
}

export type MessageState = "visible" | "inflight" | "delayed";

/** Messages by seq. A Map keeps insertion order, and seqs are inserted increasing: order = FIFO. */
export interface Shard {
  queue: string;
  shard: number;
  messages: Map<number, Message>;
}

export function stateAt(m: Message, t: number): MessageState {
  if (m.visibleAt <= t) return "visible";
  return m.delivery !== 0 ? "inflight" : "delayed";
}

/** True when `delivery` is the live delivery of `m` at t: a receipt from any other delivery, or one whose visibility ran out, is stale. */
export function isLiveDelivery(m: Message, delivery: number, t: number): boolean {
  return m.delivery === delivery && delivery !== 0 && m.visibleAt > t;
}

/**
 * The messages a receive at t may take, in order, as a lazy scan: `pick` is called for each
 * candidate and says whether the message stays in the shard (delivered) or left it (moved to
 * the DLQ), or that the scan should end here; it also stops once `pick` has delivered `max`.
 *
 * Per-key order: a keyed message is a candidate only while it is the oldest message of its key
 * left in the shard — whatever state the older one is in (in flight, delayed by a nack or an
 * enqueue delay, or visible but not yet taken). Consumers see one key strictly in order, one
 * message at a time; unkeyed messages and other keys pass it. A message that leaves the shard
 * (dead-lettered) unblocks its key at once.
 */
export function scanDeliverable(
  shard: Shard,
  t: number,
  max: number,
  pick: (m: Message) => "delivered" | "removed" | "stop",
): void {
  let taken = 0;
  const blocked = new Set<string>();
  for (const m of shard.messages.values()) {
    if (taken >= max) return;
    if (m.key !== undefined && blocked.has(m.key)) continue;
    if (m.visibleAt > t) {
      if (m.key !== undefined) blocked.add(m.key);
      continue;
    }
    const picked = pick(m);
    if (picked === "stop") return;
    if (picked === "removed") continue;
    taken++;
    if (m.key !== undefined) blocked.add(m.key);
  }
}

export interface Counts {
  visible: number;
  inflight: number;
  delayed: number;
}

export function countAt(shard: Shard | undefined, t: number): Counts {
  const counts: Counts = { visible: 0, inflight: 0, delayed: 0 };
  if (shard === undefined) return counts;
  for (const m of shard.messages.values()) counts[stateAt(m, t)]++;
  return counts;
}

/** The earliest moment after t at which a message of the shard becomes visible on its own. */
export function nextVisibleAt(shard: Shard | undefined, t: number): number | undefined {
  let min: number | undefined;
  if (shard === undefined) return min;
  for (const m of shard.messages.values()) {
    if (m.visibleAt > t && (min === undefined || m.visibleAt < min)) min = m.visibleAt;
  }
  return min;
}
