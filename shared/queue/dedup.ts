/**
 * The ids each queue saw in the last DEDUP_WINDOW_MS, for one group. One Map in insertion order:
 * the group's time t never decreases and an id is (re)inserted at the current t, so insertion
 * order is time order and forgetting is always from the front — memory is bounded by the window
 * (plus the cap), not by history, and pruning costs only what it removes.
 *
 * The key is (queue, id), not (queue, shard, id): a retry that lands on another shard of the
 * same group is still caught and answered with the shard of the first copy. Across groups the
 * Worker's placement (by key, else by id) sends a retry to the same shard anyway.
 *
 * The cap trades exactness for memory under floods of unique ids: past it the oldest ids are
 * forgotten before their window ends, so a very late retry may be enqueued twice (still
 * at-least-once, never a lost message).
 */
import { DEDUP_WINDOW_MS } from "./types.js";

export interface Seen {
  shard: number;
  at: number;
}

/** The snapshot form: [queue, id, shard, at], oldest first. */
export type DedupImage = [string, string, number, number][];

export class DedupWindow {
  private seen = new Map<string, { queue: string; id: string } & Seen>();

  constructor(private readonly cap: number) {}

  /** The first copy of (queue, id) if it was seen less than the window before t. */
  lookup(queue: string, id: string, t: number): Seen | undefined {
    const s = this.seen.get(keyOf(queue, id));
    return s !== undefined && s.at + DEDUP_WINDOW_MS > t ? { shard: s.shard, at: s.at } : undefined;
  }

  /** Records a new copy at t (t ≥ every earlier `at`), then enforces the cap. */
  remember(queue: string, id: string, shard: number, t: number): void {
    const key = keyOf(queue, id);
    this.seen.delete(key); // an expired entry moves to the back, keeping time order
    this.seen.set(key, { queue, id, shard, at: t });
    for (const [oldest] of this.seen) {
      if (this.seen.size <= this.cap) break;
      this.seen.delete(oldest);
    }
  }

  /** Forgets every id of `queue` (a deleted queue starts afresh). Time order stays: only entries go. */
  forget(queue: string): void {
    for (const [key, s] of this.seen) if (s.queue === queue) this.seen.delete(key);
  }

  /** Forgets every id whose window has ended by t. */
  prune(t: number): void {
    for (const [key, s] of this.seen) {
      if (s.at + DEDUP_WINDOW_MS > t) break;
      this.seen.delete(key);
    }
  }

  get size(): number {
    return this.seen.size;
  }

  image(): DedupImage {
    return [...this.seen.values()].map((s) => [s.queue, s.id, s.shard, s.at]);
  }

  load(image: DedupImage): void {
    this.seen = new Map(image.map(([queue, id, shard, at]) => [keyOf(queue, id), { queue, id, shard, at }]));
  }
}

/** Queue names cannot hold NUL (the Worker's name schema), so the pair is unambiguous. */
function keyOf(queue: string, id: string): string {
  return `${queue}\u0000${id}`;
}
