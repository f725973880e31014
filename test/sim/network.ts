import type { Message, NodeId, Rand } from "../../shared/raft/index.js";

export interface NetworkFaults {
  /** Per-mille chance that a message is dropped / duplicated. */
  dropPerMille: number;
  dupPerMille: number;
  /** Delivery delay range in time units (a tick is ~10): different delays reorder messages. */
  minDelay: number;
  maxDelay: number;
}

interface InFlight {
  at: number;
  seq: number;
  msg: Message;
}

/**
 * A simulated network: messages arrive after a random delay, may be dropped or duplicated, and
 * links can be cut one way (`blocked` holds "from>to" pairs) to build symmetric or one-way partitions.
 */
/** Which directed links are cut ("from>to"): symmetric and one-way partitions. */
export class Links {
  private readonly blocked = new Set<string>();

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  /** Cuts every link between the sides (both ways), or only from `sides[0]` to the rest if oneWay. */
  partition(sides: NodeId[][], oneWay: boolean): void {
    for (const [i, a] of sides.entries()) {
      for (const [j, b] of sides.entries()) {
        if (i === j || (oneWay && i !== 0)) continue;
        for (const x of a) for (const y of b) this.blocked.add(`${x}>${y}`);
      }
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  isPartitioned(): boolean {
    return this.blocked.size > 0;
  }
}

export class Network extends Links {
  private inflight: InFlight[] = [];
  private seq = 0;
  faulty = true;
  /** Messages handed to the network (delivered or not). */
  sent = 0;

  constructor(
    private readonly rand: Rand,
    readonly faults: NetworkFaults,
  ) {
    super();
  }

  send(msg: Message, now: number): void {
    this.sent++;
    if (this.isBlocked(msg.from, msg.to)) return;
    if (this.faulty && this.rand.chance(this.faults.dropPerMille, 1000)) return;
    const copies = this.faulty && this.rand.chance(this.faults.dupPerMille, 1000) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.faulty ? this.rand.range(this.faults.minDelay, this.faults.maxDelay) : this.faults.minDelay;
      this.inflight.push({ at: now + delay, seq: this.seq++, msg });
    }
  }

  /** Messages due at `now`, in a random order (reordering beyond what delays give). */
  due(now: number): Message[] {
    const ready: Message[] = [];
    const later: InFlight[] = [];
    for (const f of this.inflight) {
      if (f.at <= now) ready.push(f.msg);
      else later.push(f);
    }
    if (ready.length === 0) return ready;
    this.inflight = later;
    // A link cut after the send also loses what is on the wire.
    return this.rand.shuffle(ready.filter((m) => !this.isBlocked(m.from, m.to)));
  }
}
