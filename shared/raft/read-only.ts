import type { NodeId } from "./types.js";

/**
 * ReadIndex (Raft dissertation §6.4): a read is linearizable once the leader has confirmed, by a
 * round of heartbeats acknowledged by a majority, that it was still leader when it recorded its
 * commit index. Requests are confirmed in order: an ack for a later request confirms earlier ones.
 */
export interface ReadIndexStatus {
  context: string;
  index: number;
  /** Who asked: the leader itself or a follower that forwarded the request. */
  from: NodeId;
  acks: Set<NodeId>;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  add(context: string, index: number, from: NodeId): void {
    if (this.pending.has(context)) return;
    this.pending.set(context, { context, index, from, acks: new Set() });
    this.queue.push(context);
  }

  /** Records an ack from `id` for `context`; returns that request's acks (undefined if unknown). */
  recvAck(id: NodeId, context: string): Set<NodeId> | undefined {
    const rs = this.pending.get(context);
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Removes and returns every request up to and including `context`, in order. */
  advance(context: string): ReadIndexStatus[] {
    const at = this.queue.indexOf(context);
    if (at < 0) return [];
    const done = this.queue.splice(0, at + 1);
    return done.map((ctx) => {
      const rs = this.pending.get(ctx) as ReadIndexStatus;
      this.pending.delete(ctx);
      return rs;
    });
  }

  lastPendingContext(): string {
    return this.queue[this.queue.length - 1] ?? "";
  }

  clear(): void {
    this.pending.clear();
    this.queue = [];
  }
}
