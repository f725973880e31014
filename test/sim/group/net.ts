/**
 * The network between the peers of one group, event-driven: the fault model of the Raft
 * simulator's network (test/sim/network.ts: its NetworkFaults, drops, duplicates, random delays
 * that reorder, links cut one way or both, what is on a cut link is lost) without its polling
 * (`due(now)` every time unit), which an event queue with millisecond times does not need.
 */
import type { NodeId, Rand } from "../../../shared/raft/index.js";
import { Links, type NetworkFaults } from "../network.js";
import type { Actor, World } from "./world.js";

export class PeerNetwork extends Links {
  /** Off once the faults heal: nothing is dropped or duplicated and every delay is the minimum. */
  faulty = true;

  constructor(
    private readonly world: World,
    private readonly rand: Rand,
    readonly faults: NetworkFaults,
  ) {
    super();
  }

  /** Delivers `arrive` at `to` after a delay, unless dropped or the link is cut; maybe twice. */
  send(from: NodeId, to: NodeId, arrive: () => void, receiver: Actor): void {
    if (this.isBlocked(from, to)) return;
    if (this.faulty && this.rand.chance(this.faults.dropPerMille, 1000)) return;
    const copies = this.faulty && this.rand.chance(this.faults.dupPerMille, 1000) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.faulty ? this.rand.range(this.faults.minDelay, this.faults.maxDelay) : this.faults.minDelay;
      // A message on the wire reaches whatever life of the peer is up when it lands.
      this.world.after(delay, () => (this.isBlocked(from, to) ? undefined : arrive()), receiver, true);
    }
  }

  /** A delay for one hop (forwarded requests and their answers). */
  delay(): number {
    return this.faulty ? this.rand.range(this.faults.minDelay, this.faults.maxDelay) : this.faults.minDelay;
  }

  lost(): boolean {
    return this.faulty && this.rand.chance(this.faults.dropPerMille, 1000);
  }
}
