/**
 * A bounded least-recently-used map. A JavaScript Map keeps insertion order, so moving a key to
 * the back (delete, then set) and taking the oldest (the first key) are both O(1).
 */
export class Lru<V> {
  private readonly map = new Map<string, V>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`LRU capacity must be ≥ 1, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, marked most recently used. */
  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  /** The value, leaving the order alone. */
  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  /**
   * Stores `value` as most recently used and returns what had to leave to stay within capacity:
   * the least recently used entries (at most one), never the key just stored.
   */
  set(key: string, value: V): [string, V][] {
    this.map.delete(key);
    this.map.set(key, value);
    const evicted: [string, V][] = [];
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      evicted.push([oldest, this.map.get(oldest) as V]);
      this.map.delete(oldest);
    }
    return evicted;
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  /** Least recently used first. */
  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }
}
