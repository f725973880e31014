/**
 * Wait-for graphs: an edge `waiter → holder` says the waiter cannot be granted until the holder
 * lets go (the holder may also be an earlier waiter it queues behind). A cycle is a deadlock.
 *
 * Two users:
 * - LockTable, inside one Raft group: before queueing a request it adds the request's edges to
 *   the group's graph and rejects the request if that closes a cycle through it.
 * - The cross-group detector (objects/deadlock-detector.ts): owners can hold in one group and
 *   wait in another, so no single group sees such a cycle. Every scan collects `waitEdges(now)`
 *   from every group's leader and tags each edge with its group. Groups answer at different
 *   moments, so one scan can join an edge that has already ended to one that began after it: a
 *   cycle that never existed. `confirmedVictims` therefore acts only on edges seen, unchanged, in
 *   two consecutive scans (see there why that suffices), and the detector proposes
 *   `cancel { resource, owner, since, cycle }` for each victim to the victim's group; `since`
 *   makes the cancel hit only the wait the detector saw, and a wait that ended meanwhile answers
 *   `notWaiting`.
 */

export interface WaitEdge {
  waiter: string;
  holder: string;
}

/**
 * An edge as a LockTable reports it: the waited-on resource, when the wait started, and which
 * instance of the holder it waits for: `h<fencingToken>` for a holding, `w<since>` for an
 * earlier wait it queues behind (resource.ts, `blockingInstances`).
 */
export interface ResourceWaitEdge extends WaitEdge {
  resource: string;
  since: number;
  holderTag: string;
}

/** An edge as the cross-group detector sees it: also which Raft group holds the resource. */
export interface GroupWaitEdge extends ResourceWaitEdge {
  group: number;
}

/** One wait to cancel, and the cycle it closed, listed from the victim. */
export interface DeadlockVictim {
  group: number;
  resource: string;
  owner: string;
  since: number;
  cycle: string[];
}

export class WaitForGraph {
  private readonly next = new Map<string, string[]>();

  static from(edges: Iterable<WaitEdge>): WaitForGraph {
    const graph = new WaitForGraph();
    for (const e of edges) graph.add(e.waiter, e.holder);
    return graph;
  }

  /** Adds `waiter → holder` once; successors keep insertion order so searches are deterministic. */
  add(waiter: string, holder: string): void {
    const out = this.next.get(waiter);
    if (out === undefined) this.next.set(waiter, [holder]);
    else if (!out.includes(holder)) out.push(holder);
  }

  successors(owner: string): readonly string[] {
    return this.next.get(owner) ?? [];
  }

  /** Owners with at least one outgoing edge, sorted. */
  waiters(): string[] {
    return [...this.next.keys()].sort();
  }

  /**
   * A shortest cycle through `start`, listed from `start` (`[start, a, b]` for start→a→b→start),
   * or undefined. Breadth-first, so the cycle reported is the smallest explanation.
   */
  findCycleThrough(start: string): string[] | undefined {
    const parent = new Map<string, string>();
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      const node = queue[i] as string;
      for (const succ of this.successors(node)) {
        if (succ === start) return pathTo(node, start, parent);
        if (parent.has(succ)) continue;
        parent.set(succ, node);
        queue.push(succ);
      }
    }
    return undefined;
  }
}

/** [start, ..., node] by following `parent` back from `node`. */
function pathTo(node: string, start: string, parent: Map<string, string>): string[] {
  const path = [node];
  for (let at = node; at !== start; ) {
    at = parent.get(at) as string;
    path.push(at);
  }
  return path.reverse();
}

/**
 * Victims that break every cycle in `edges`. Repeatedly finds a shortest cycle (trying owners
 * in sorted order), cancels its victim's wait (every edge of that waiter on that group and
 * resource) and searches again, until no cycle is left. Deterministic for a given set of
 * edges, whatever order they arrive in.
 */
export function findCycles(edges: readonly GroupWaitEdge[]): DeadlockVictim[] {
  let live = sortEdges(edges);
  const victims: DeadlockVictim[] = [];
  // Removing edges never creates a cycle, so an owner on no cycle stays so: skip it next time.
  const acyclic = new Set<string>();
  for (;;) {
    const graph = WaitForGraph.from(live);
    let cycle: string[] | undefined;
    for (const owner of graph.waiters()) {
      if (acyclic.has(owner)) continue;
      cycle = graph.findCycleThrough(owner);
      if (cycle) break;
      acyclic.add(owner);
    }
    if (cycle === undefined) return victims;
    const victim = chooseVictim(cycle, live);
    const at = cycle.indexOf(victim.waiter);
    victims.push({
      group: victim.group,
      resource: victim.resource,
      owner: victim.waiter,
      since: victim.since,
      cycle: [...cycle.slice(at), ...cycle.slice(0, at)],
    });
    live = live.filter((e) => !sameWait(e, victim));
  }
}

/**
 * The detector's decision after a scan: the waits to cancel, given the previous scan's edges
 * (undefined when there is none, e.g. after the detector was evicted) and this scan's. It runs
 * `findCycles` over the edges present in both scans with the same identity (group, resource,
 * waiter, since, holder, holderTag), so only a cycle that existed as a whole at one instant is
 * broken.
 *
 * Why two consecutive scans suffice:
 * - An identity names one continuous interval of one edge. (resource, waiter, since) is one wait:
 *   an owner waits at most once per resource at a time, a wait keeps its mode, and `since` is the
 *   group's time when it began. holderTag `h<token>` is one holding (fencing tokens are unique in
 *   a group; a holding keeps its token and mode until it ends, and an earlier waiter stays
 *   earlier). So the edge exists from when both the wait and the blocker do until either ends,
 *   and an edge sighted in two scans existed throughout between its two sightings.
 * - The detector starts scan k+1 only after scan k has finished, so every sighting of scan k
 *   precedes every sighting of scan k+1. Let T be any instant between the end of scan k and the
 *   start of scan k+1: every edge kept here was seen before T and again after T, so existed at T.
 * So all edges of a cycle found here coexisted at T: the deadlock was real (and, being a
 * deadlock, still is unless a wait timed out or was cancelled, which `since` and `notWaiting`
 * handle). Conversely a deadlock that persists is seen in full by any two consecutive scans in
 * which every group answered, so it is broken on the second of them.
 *
 * The one gap: `since` is the group's clock, which stands still while a new leader's clock
 * lags the old one's; a wait that ends and is re-made by the same owner on the same resource
 * within such a stall has the same `since` (the cancel command then cannot tell them apart
 * either). A re-made holding always has a new token, so this needs the blocker to be the same
 * instance too.
 */
export function confirmedVictims(
  previous: readonly GroupWaitEdge[] | undefined,
  current: readonly GroupWaitEdge[],
): DeadlockVictim[] {
  if (previous === undefined) return [];
  const seen = new Set(previous.map(edgeIdentity));
  return findCycles(current.filter((e) => seen.has(edgeIdentity(e))));
}

/** What makes an edge the same edge in two scans. */
export function edgeIdentity(e: GroupWaitEdge): string {
  return JSON.stringify([e.group, e.resource, e.waiter, e.since, e.holder, e.holderTag]);
}

/**
 * The wait to cancel in `cycle`: the newest one (largest `since`), which is the wait that closed
 * the cycle, so older waits keep their place. Ties go to the smallest (waiter, group, resource).
 * Every edge along the cycle's hops is a candidate, whichever resource it waits on.
 */
export function chooseVictim(cycle: readonly string[], edges: readonly GroupWaitEdge[]): GroupWaitEdge {
  let best: GroupWaitEdge | undefined;
  cycle.forEach((waiter, i) => {
    const holder = cycle[(i + 1) % cycle.length];
    for (const e of edges) {
      if (e.waiter !== waiter || e.holder !== holder) continue;
      if (best === undefined || e.since > best.since || (e.since === best.since && compareWaits(e, best) < 0)) {
        best = e;
      }
    }
  });
  if (best === undefined) throw new Error(`no edges along cycle ${cycle.join(" → ")}`);
  return best;
}

function sameWait(a: GroupWaitEdge, b: GroupWaitEdge): boolean {
  return a.group === b.group && a.resource === b.resource && a.waiter === b.waiter;
}

function compareWaits(a: GroupWaitEdge, b: GroupWaitEdge): number {
  return compareStrings(a.waiter, b.waiter) || a.group - b.group || compareStrings(a.resource, b.resource) || 0;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Edges in a canonical order, so the graph (and the cycles found) ignore arrival order. */
function sortEdges(edges: readonly GroupWaitEdge[]): GroupWaitEdge[] {
  return [...edges].sort((a, b) => compareWaits(a, b) || compareStrings(a.holder, b.holder) || a.since - b.since);
}
