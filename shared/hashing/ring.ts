import { hash32 } from "./hash.js";

/**
 * A consistent-hash ring with virtual nodes.
 *
 * Used to place keys on Raft groups `g0..gN-1`: lock resources, queue shards (`<queue>/<shard>`)
 * and cache keys each map to the group that owns them. When a group is added or removed only
 * about 1/N of the keys change owner, and every key that moves goes to the added group (or comes
 * from the removed one), so a resize migrates the least possible state.
 *
 * Each member owns `vnodes` points on the 32-bit circle, at `hash32(`${member}#${i}`)` for
 * i in [0, vnodes). A key belongs to the owner of the first point at or clockwise after
 * `hash32(key)`, wrapping past 2^32 - 1 to the smallest point. Two members whose points collide
 * are ordered by member name (the smaller name keeps the point), so the placement depends only
 * on the set of members and `vnodes`: never on the order they were given in, the runtime or the
 * process. Rings are immutable; `with` and `without` return new rings.
 */
export class HashRing<M extends string = string> {
  /** Members sorted by name (UTF-16 code-unit order): the canonical order. */
  private readonly sorted: readonly M[];
  /** Distinct vnode points, ascending. */
  private readonly points: Uint32Array;
  /** `owners[i]` is the index in `sorted` of the member owning `points[i]`. */
  private readonly owners: Uint32Array;

  constructor(
    members: readonly M[],
    readonly vnodes = 160,
  ) {
    if (!Number.isSafeInteger(vnodes) || vnodes < 1) {
      throw new RangeError(`HashRing: vnodes must be a positive integer, got ${vnodes}`);
    }
    const sorted = [...members].sort(compareNames);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) throw new RangeError(`HashRing: duplicate member ${String(sorted[i])}`);
    }
    this.sorted = sorted;

    // Pack (point, member index) into one float64 so one numeric sort orders by point and then by
    // member name (indices follow the sorted names): point * 2^21 + index < 2^53.
    const total = sorted.length * vnodes;
    if (sorted.length >= 2 ** 21) throw new RangeError("HashRing: too many members");
    const packed = new Float64Array(total);
    let k = 0;
    for (let m = 0; m < sorted.length; m++) {
      for (let i = 0; i < vnodes; i++) packed[k++] = hash32(`${sorted[m]}#${i}`) * 2 ** 21 + m;
    }
    packed.sort();

    // Keep the first (smallest-named) owner of each point: later duplicates could never be reached.
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    let n = 0;
    for (let j = 0; j < total; j++) {
      const v = packed[j] ?? 0;
      const point = Math.floor(v / 2 ** 21);
      if (n > 0 && points[n - 1] === point) continue;
      points[n] = point;
      owners[n] = v - point * 2 ** 21;
      n++;
    }
    this.points = points.subarray(0, n);
    this.owners = owners.subarray(0, n);
  }

  /** Number of members. */
  get size(): number {
    return this.sorted.length;
  }

  /** The members, sorted by name. */
  members(): M[] {
    return [...this.sorted];
  }

  has(member: string): member is M {
    return this.sorted.includes(member as M);
  }

  /** The member owning `key`. Throws on an empty ring. */
  lookup(key: string): M {
    const points = this.points;
    const n = points.length;
    if (n === 0) throw new Error("HashRing: lookup on an empty ring");
    const h = hash32(key);
    // Lower bound: the first point >= h, or n when h is past the last point (wraps to 0).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((points[mid] ?? 0) < h) lo = mid + 1;
      else hi = mid;
    }
    const owner = this.sorted[this.owners[lo === n ? 0 : lo] ?? 0];
    if (owner === undefined) throw new Error("HashRing: corrupt ring"); // unreachable
    return owner;
  }

  /** A ring with `member` added (this ring when it is already a member). */
  with(member: M): HashRing<M> {
    if (this.has(member)) return this;
    return new HashRing<M>([...this.sorted, member], this.vnodes);
  }

  /** A ring with `member` removed (this ring when it is not a member). */
  without(member: M): HashRing<M> {
    if (!this.has(member)) return this;
    return new HashRing<M>(
      this.sorted.filter((m) => m !== member),
      this.vnodes,
    );
  }

  /** How many of `keys` each member owns (every member present, possibly with 0). */
  spread(keys: Iterable<string>): Map<M, number> {
    const counts = new Map<M, number>();
    for (const m of this.sorted) counts.set(m, 0);
    for (const key of keys) {
      const m = this.lookup(key);
      counts.set(m, (counts.get(m) ?? 0) + 1);
    }
    return counts;
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
