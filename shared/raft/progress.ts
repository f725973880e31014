import { Inflights } from "./inflights.js";

/**
 * The leader's view of one follower.
 * - probe: we do not know where its log ends; send one append per heartbeat and back off on reject.
 * - replicate: it is keeping up; stream appends optimistically, bounded by `inflights`.
 * - snapshot: its entries are compacted away; a snapshot is on its way, send nothing else.
 * Invariant: 0 ≤ match < next.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** probe: an append was sent and we wait for a heartbeat response before sending another. */
  probeSent = false;
  pendingSnapshot = 0;
  /** Heartbeats since the snapshot was sent: a lost snapshot is resent after a while. */
  snapshotAge = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** `match` at the previous heartbeat: if it has not moved, appends may have been lost. */
  matchAtBeat = 0;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotAge = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, continue right after it (or after match, if that is further).
    const from = this.state === "snapshot" ? Math.max(this.match, this.pendingSnapshot) : this.match;
    this.reset("probe");
    this.next = from + 1;
  }

  becomeReplicate(): void {
    this.reset("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to n. Returns false when it is stale (already known). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** An append of `last` entries was sent: in replicate state, move next past them optimistically. */
  sentEntries(last: number): void {
    if (this.state === "replicate") {
      this.next = last + 1;
      this.inflights.add(last);
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /**
   * A rejection of the append at `rejected`; `matchHint` is the follower's suggestion (already
   * refined by the leader's log). Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false; // stale
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false; // not the probe in flight
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
