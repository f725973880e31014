/**
 * The AppendEntries messages in flight to one follower, by their last index, bounded so a slow
 * follower cannot make the leader buffer without limit. A FIFO of increasing indexes.
 */
export class Inflights {
  private buf: number[] = [];

  constructor(readonly capacity: number) {}

  add(lastIndex: number): void {
    if (this.full()) throw new Error("add to full inflights");
    this.buf.push(lastIndex);
  }

  /** Frees every message whose last index is ≤ `to` (they were acknowledged). */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.buf.length && (this.buf[n] as number) <= to) n++;
    if (n > 0) this.buf.splice(0, n);
  }

  freeFirstOne(): void {
    this.buf.shift();
  }

  full(): boolean {
    return this.buf.length >= this.capacity;
  }

  count(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf = [];
  }
}
