/**
 * The lock history as clients lived it, in real (simulated) time, and its checks.
 *
 * A client holds a lock from the moment it receives the grant until the earliest of: the send
 * time of the acquire plus the TTL (less 2 ms, see below), the moment it sends
 * a release, and the moment it sends another acquire of the same resource (a mode change ends the
 * old holding). A renew sets the end to its send time plus its TTL (it may shorten the lease, so
 * the earlier end counts until it is answered "renewed"). Every
 * other answer (503, a lost reply, a conflict) gives no holding. So a holding is what a careful
 * client may rely on, and:
 *
 * - mutual exclusion: holdings of one resource by different owners never overlap in real time
 *   when either is exclusive;
 * - fencing: a grant requested after another owner's grant was received has a larger token, when
 *   either is exclusive (a shared re-acquire may renew a grant whose answer the client never got,
 *   keeping that grant's older token while other shared holders came in).
 *
 * No margin for drift or offsets: the cores are told the drift bound (`maxDriftPpm`) and their
 * group clock runs that much slow, so neither may end a lease early. The only margin is 2 ms,
 * for whole-millisecond clocks.
 */
import type { LockMode } from "../../../shared/locks/types.js";

/** Clocks read whole milliseconds. */
const ROUNDING_MS = 2;

export interface Holding {
  owner: string;
  resource: string;
  mode: LockMode;
  token: number;
  /** When the acquire that produced the grant was sent. */
  requestedAt: number;
  start: number;
  end: number;
}

export class LockChecker {
  private readonly open = new Map<string, Holding>();
  /** The latest grant per resource and owner: a re-acquire in the same mode keeps its token. */
  private readonly lastGrant = new Map<string, { mode: LockMode; token: number; requestedAt: number }>();
  readonly holdings: Holding[] = [];
  counts = { acquires: 0, granted: 0, renewed: 0, releases: 0 };

  constructor(private readonly violation: (what: string) => void) {}

  private close(owner: string, resource: string, at: number): void {
    const key = `${resource}\0${owner}`;
    const h = this.open.get(key);
    if (h === undefined) return;
    this.open.delete(key);
    h.end = Math.min(h.end, at);
    if (h.end > h.start) this.holdings.push(h);
  }

  /** An acquire is being sent: a holding of the same resource by this owner ends here. */
  acquireSent(owner: string, resource: string, at: number): void {
    this.counts.acquires++;
    this.close(owner, resource, at);
  }

  granted(
    g: { owner: string; resource: string; mode: LockMode; token: number; ttlMs: number },
    sentAt: number,
    at: number,
  ): void {
    this.counts.granted++;
    const key = `${g.resource}\0${g.owner}`;
    this.close(g.owner, g.resource, at);
    // An idempotent re-acquire answers with the token of the grant it renews: that grant's request
    // is the one the fencing rule is about.
    const last = this.lastGrant.get(key);
    const requestedAt = last !== undefined && last.token === g.token ? last.requestedAt : sentAt;
    this.lastGrant.set(key, { mode: g.mode, token: g.token, requestedAt });
    const h: Holding = {
      owner: g.owner,
      resource: g.resource,
      mode: g.mode,
      token: g.token,
      requestedAt,
      start: at,
      end: sentAt + g.ttlMs - ROUNDING_MS,
    };
    if (h.end > h.start) this.open.set(key, h);
  }

  /**
   * A renew is being sent: it may apply, and it sets the lease to its own TTL from then, which
   * can shorten it. Until an answer says so, the client counts on the earlier of the two ends.
   */
  renewSent(owner: string, resource: string, ttlMs: number, at: number): void {
    const h = this.open.get(`${resource}\0${owner}`);
    if (h !== undefined) h.end = Math.min(h.end, at + ttlMs - ROUNDING_MS);
  }

  /** The renew sent at `sentAt` with `ttlMs` was answered "renewed" at `at`: the lease ends TTL after it. */
  renewed(owner: string, resource: string, ttlMs: number, sentAt: number, at: number): void {
    this.counts.renewed++;
    const h = this.open.get(`${resource}\0${owner}`);
    const end = sentAt + ttlMs - ROUNDING_MS;
    if (h === undefined) {
      const last = this.lastGrant.get(`${resource}\0${owner}`);
      // Renewed after the client's own view had ended: the lease was still live when it applied.
      if (last !== undefined && end > at) {
        this.open.set(`${resource}\0${owner}`, { ...last, owner, resource, start: at, end });
      }
      return;
    }
    if (sentAt < h.end) h.end = end;
    else {
      this.close(owner, resource, h.end);
      if (end > at) this.open.set(`${resource}\0${owner}`, { ...h, start: at, end });
    }
  }

  releaseSent(owner: string, resource: string, at: number): void {
    this.counts.releases++;
    this.close(owner, resource, at);
  }

  /** Ends every holding and checks the whole history. */
  finish(now: number): void {
    for (const key of [...this.open.keys()]) {
      const [resource, owner] = key.split("\0") as [string, string];
      this.close(owner, resource, now);
    }
    const byResource = new Map<string, Holding[]>();
    for (const h of this.holdings) byResource.set(h.resource, [...(byResource.get(h.resource) ?? []), h]);
    for (const [resource, list] of byResource) {
      list.sort((a, b) => a.start - b.start);
      let reported = 0;
      for (let i = 0; i < list.length && reported < 3; i++) {
        const a = list[i] as Holding;
        for (let j = i + 1; j < list.length && reported < 3; j++) {
          const b = list[j] as Holding;
          if (a.owner === b.owner) continue;
          if (b.start < a.end && (a.mode === "exclusive" || b.mode === "exclusive")) {
            reported++;
            this.violation(
              `mutual exclusion: ${resource} held by ${describe(a)} and by ${describe(b)}, overlapping ${Math.min(a.end, b.end) - b.start} ms`,
            );
          }
          const exclusive = a.mode === "exclusive" || b.mode === "exclusive";
          if (exclusive && b.requestedAt > a.start && b.token <= a.token) {
            reported++;
            this.violation(`fencing: ${resource} granted to ${describe(b)} after ${describe(a)} with no larger token`);
          }
        }
      }
    }
  }
}

function describe(h: Holding): string {
  return `${h.owner} (${h.mode}, token ${h.token}, requested ${h.requestedAt}, held [${h.start}, ${h.end}))`;
}
