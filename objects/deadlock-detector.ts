import { DurableObject } from "cloudflare:workers";
import { clusterShape } from "../shared/cluster.js";
import { confirmedVictims, type GroupWaitEdge } from "../shared/locks/wait-for-graph.js";
import type { Env } from "../workers/env.js";
import { callGroup } from "../workers/groups.js";

/** How often to look while anyone waits: a cross-group cycle is broken within about two scans. */
const SCAN_MS = 250;

/**
 * Finds deadlocks that span groups (no single group sees them): while any lock request waits, it
 * collects every group leader's wait-for edges every 250 ms and cancels the newest wait of each
 * cycle seen, unchanged, in two consecutive scans (`confirmedVictims` in
 * shared/locks/wait-for-graph.ts says why one scan is not enough and two are), which answers
 * that request 409 deadlock.
 */
export class DeadlockDetector extends DurableObject<Env> {
  /**
   * The last finished scan's edges. Kept in memory only: after an eviction the first scan has
   * nothing to confirm against, which delays breaking a deadlock by one scan and nothing more.
   */
  private previous: GroupWaitEdge[] | undefined;
  /** True while a scan runs: scans never overlap, so every sighting of one precedes the next's. */
  private scanning = false;

  /** Called by a peer when a request starts waiting. */
  async wake(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + SCAN_MS);
  }

  override async alarm(): Promise<void> {
    if (this.scanning) {
      await this.ctx.storage.setAlarm(Date.now() + SCAN_MS);
      return;
    }
    this.scanning = true;
    try {
      await this.scan();
    } finally {
      this.scanning = false;
    }
  }

  private async scan(): Promise<void> {
    const { groups } = clusterShape(this.env);
    const edges: GroupWaitEdge[] = [];
    await Promise.all(
      Array.from({ length: groups }, async (_, group) => {
        const res = await callGroup(this.env, group, (peer, name) => peer.waitEdges(name), 1000);
        if (res.ok) for (const e of res.value) edges.push({ ...e, group });
      }),
    );
    const victims = confirmedVictims(this.previous, edges);
    this.previous = edges;
    for (const v of victims) {
      const { group, ...victim } = v;
      await callGroup(this.env, group, (peer, name) => peer.cancelWait(name, victim), 1000);
    }
    // Keep looking while anyone waits (a cycle needs a second scan to be confirmed); a new wait
    // wakes us again.
    if (edges.length > 0) await this.ctx.storage.setAlarm(Date.now() + SCAN_MS);
  }
}
