/**
 * The fault injector of the faulty phase, one step every 100 ms of simulated time: partitions of
 * a group (symmetric or one way) and their healing, crashes (idle, or at a point inside the
 * handling of the next Ready: before its write, after it, after a send) and restarts, pauses, and
 * clock steps (as the clock fault route makes them) and restarts on another machine with another
 * clock, faults aimed at a group's current leader (crash, pause, or cut it off; and a pause right after
 * it is elected, so that requests pile up for a leader that has not committed yet), since leader
 * changes are where most bugs of a replicated service live. The cache nodes crash, restart
 * (sometimes elsewhere), pause, and lose their links to some peers of a group, often its leader.
 */
import type { NodeId, Rand } from "../../../shared/raft/index.js";
import type { CacheLinks, SimCacheNode } from "./cache.js";
import { PeerClock } from "./clock.js";
import type { PeerNetwork } from "./net.js";
import type { SimPeer } from "./peer.js";

export interface FaultRates {
  /** Per peer per second, per mille. */
  crashPerMille: number;
  pausePerMille: number;
  /** Per group per second, per mille. */
  partitionPerMille: number;
  healPerMille: number;
  leaderFaultPerMille: number;
  /** Per mille of new leaders paused as soon as they are elected (before they commit anything). */
  newLeaderPausePerMille: number;
  /** Per mille of answers after which the leader that gave them crashes (its followers may not know the commit yet). */
  crashAfterAnswerPerMille: number;
  /** Per peer per second: its clock is stepped (RaftPeer.setClockOffset). */
  clockStepPerMille: number;
  /** Per mille of restarts on another machine, with another clock offset and drift. */
  migratePerMille: number;
}

/** The cache nodes' faults. */
export interface CacheFaultRates {
  /** Per node per second, per mille. */
  crashPerMille: number;
  pausePerMille: number;
  /** Per second, per mille: a node is cut off from some peers of a group (often its leader). */
  cutPerMille: number;
  healPerMille: number;
  /** Per mille of answers to clients after which the node crashes (a silent write is then only in its store). */
  crashAfterAnswerPerMille: number;
}

export function randomCacheRates(r: Rand): CacheFaultRates {
  return {
    crashPerMille: r.range(0, 60),
    pausePerMille: r.range(0, 40),
    cutPerMille: r.range(0, 400),
    healPerMille: r.range(100, 600),
    crashAfterAnswerPerMille: r.pick([0, 0, 10, 40]),
  };
}

/** What the cache faults act on. */
export interface CacheTargets {
  nodes: readonly SimCacheNode[];
  links: CacheLinks;
  rates: CacheFaultRates;
  /** The groups of the cache's keys (their directories): most cuts are aimed at them. */
  keyGroups: readonly number[];
}

/** The bounds of peers' clock errors in a run. */
export interface ClockBounds {
  maxOffsetMs: number;
  maxDriftPpm: number;
}

export function randomRates(r: Rand): FaultRates {
  return {
    crashPerMille: r.range(0, 40),
    pausePerMille: r.range(0, 30),
    partitionPerMille: r.range(0, 80),
    healPerMille: r.range(100, 500),
    leaderFaultPerMille: r.range(0, 250),
    newLeaderPausePerMille: r.pick([0, 50, 200, 500]),
    crashAfterAnswerPerMille: r.pick([0, 0, 5, 20, 50]),
    clockStepPerMille: r.pick([0, 0, 10, 40]),
    migratePerMille: r.pick([0, 300, 1000]),
  };
}

/** Steps per second. */
const STEPS = 10;

export class Faults {
  counts = {
    crashes: 0,
    pauses: 0,
    partitions: 0,
    leaderFaults: 0,
    newLeaderPauses: 0,
    crashesAfterAnswer: 0,
    clockSteps: 0,
    migrations: 0,
    nodeCrashes: 0,
    nodePauses: 0,
    nodeCuts: 0,
  };

  constructor(
    private readonly rand: Rand,
    private readonly rates: FaultRates,
    private readonly groups: readonly (readonly SimPeer[])[],
    private readonly nets: readonly PeerNetwork[],
    private readonly clocks: ClockBounds,
    private readonly log: (line: () => string) => void,
    private readonly cache?: CacheTargets,
  ) {}

  /** A clock within the run's bounds. */
  randomClock(): PeerClock {
    const { maxOffsetMs, maxDriftPpm } = this.clocks;
    return new PeerClock(this.rand.range(-maxOffsetMs, maxOffsetMs), this.rand.range(-maxDriftPpm, maxDriftPpm));
  }

  private chance(perMillePerSecond: number): boolean {
    return this.rand.chance(perMillePerSecond, 1000 * STEPS);
  }

  step(): void {
    const r = this.rand;
    for (const [g, net] of this.nets.entries()) {
      const peers = this.groups[g] as readonly SimPeer[];
      if (!net.isPartitioned() && this.chance(this.rates.partitionPerMille)) {
        const ids = r.shuffle(peers.map((p) => p.id));
        const cut = r.range(1, ids.length - 1);
        this.partition(g, [ids.slice(0, cut), ids.slice(cut)], r.chance(1, 3));
      } else if (net.isPartitioned() && this.chance(this.rates.healPerMille)) {
        net.heal();
        this.log(() => `g${g} heal`);
      }
      const leader = peers.find((p) => p.up && !p.paused && p.core?.replica.isLeader());
      if (leader !== undefined && this.chance(this.rates.leaderFaultPerMille)) {
        this.counts.leaderFaults++;
        const what = r.int(3);
        if (what === 0) this.crash(leader);
        else if (what === 1) this.pause(leader);
        else if (!net.isPartitioned()) {
          const rest = peers.filter((p) => p !== leader).map((p) => p.id);
          // Cut off both ways, or only its messages out, or only what comes in (its acks and votes).
          const how = r.int(3);
          this.partition(g, how === 2 ? [rest, [leader.id]] : [[leader.id], rest], how > 0);
        }
      }
    }
    for (const p of this.groups.flat()) {
      if (p.up && this.chance(this.rates.crashPerMille)) this.crash(p);
      else if (!p.up && r.chance(1, 15)) {
        if (r.chance(this.rates.migratePerMille, 1000)) {
          this.counts.migrations++;
          p.migrate(this.randomClock());
        }
        p.restart();
      } else if (p.up && !p.paused && this.chance(this.rates.pausePerMille)) this.pause(p);
      else if (p.up && this.chance(this.rates.clockStepPerMille)) {
        this.counts.clockSteps++;
        const size = r.range(1, Math.max(1, this.clocks.maxOffsetMs));
        p.stepClock(r.chance(1, 2) ? size : -size);
      }
    }
    if (this.cache !== undefined) this.cacheStep(this.cache);
  }

  /**
   * The cache nodes: crashes (the dirty store stays), restarts (sometimes on another machine, with
   * another clock), pauses, and links to peers cut (both ways, or only one way): to the current
   * leader of a group, or to some of its peers.
   */
  private cacheStep(c: CacheTargets): void {
    const r = this.rand;
    for (const n of c.nodes) {
      if (n.up && this.chance(c.rates.crashPerMille)) {
        this.counts.nodeCrashes++;
        n.crash("idle");
      } else if (!n.up && r.chance(1, 15)) {
        if (r.chance(this.rates.migratePerMille, 1000)) {
          this.counts.migrations++;
          n.migrate(this.randomClock());
        }
        n.restart();
      } else if (n.up && !n.paused && this.chance(c.rates.pausePerMille)) {
        this.counts.nodePauses++;
        n.pause(r.range(200, 3000));
      }
    }
    if (c.links.isPartitioned() && this.chance(c.rates.healPerMille)) {
      c.links.heal();
      this.log(() => "cache links heal");
    } else if (this.chance(c.rates.cutPerMille)) {
      this.counts.nodeCuts++;
      const node = r.pick(c.nodes);
      const g = r.chance(3, 4) ? r.pick(c.keyGroups) : r.int(this.groups.length);
      const peers = this.groups[g] as readonly SimPeer[];
      const leader = peers.find((p) => p.up && p.core?.replica.isLeader());
      const cut =
        leader !== undefined && r.chance(2, 3)
          ? [leader.name]
          : r.shuffle(peers.map((p) => p.name)).slice(0, r.range(1, peers.length));
      const how = r.pick(["both", "both", "fromNode", "toNode"] as const);
      c.links.partition(node.name, cut, how);
      this.log(
        () => `cache cut ${node.name} ${how === "both" ? "<-/->" : how === "fromNode" ? "-/->" : "<-/-"} ${cut}`,
      );
    }
  }

  /** A cache node just answered a client: sometimes it dies right after. */
  nodeAnswered(faulty: boolean): boolean {
    if (!faulty || this.cache === undefined) return false;
    if (!this.rand.chance(this.cache.rates.crashAfterAnswerPerMille, 1000)) return false;
    this.counts.nodeCrashes++;
    return true;
  }

  /** A peer just became leader: sometimes it stalls right away, with its first entry not yet committed. */
  elected(p: SimPeer, faulty: boolean): void {
    if (!faulty || p.paused || !this.rand.chance(this.rates.newLeaderPausePerMille, 1000)) return;
    this.counts.newLeaderPauses++;
    p.pause(this.rand.range(100, 1500));
  }

  /** A leader just answered a request: sometimes it dies right after (the answer is on its way). */
  answered(faulty: boolean): boolean {
    if (!faulty || !this.rand.chance(this.rates.crashAfterAnswerPerMille, 1000)) return false;
    this.counts.crashes++;
    this.counts.crashesAfterAnswer++;
    return true;
  }

  private crash(p: SimPeer): void {
    this.counts.crashes++;
    const point = this.rand.pick(["idle", "beforePersist", "afterPersist", "afterSend"] as const);
    if (point === "idle") p.crash("idle");
    else if (point === "afterSend") p.crashAfterSend = true;
    else if (p.storage !== undefined) p.storage.crashAt = point;
  }

  private pause(p: SimPeer): void {
    this.counts.pauses++;
    p.pause(this.rand.range(200, 3000));
  }

  private partition(g: number, sides: NodeId[][], oneWay: boolean): void {
    (this.nets[g] as PeerNetwork).partition(sides, oneWay);
    this.counts.partitions++;
    this.log(
      () => `g${g} partition ${oneWay ? "one-way " : ""}${sides.map((s) => `[${s}]`).join(oneWay ? " -/-> " : " | ")}`,
    );
  }

  /** Heals everything for the liveness phase: links, crashed and paused peers and cache nodes, armed crash points. */
  healAll(resume: (p: SimPeer | SimCacheNode) => void): void {
    if (this.cache !== undefined) {
      this.cache.links.heal();
      this.cache.links.faulty = false;
      for (const n of this.cache.nodes) {
        if (!n.up) n.restart();
        else if (n.paused) resume(n);
      }
    }
    for (const net of this.nets) {
      net.heal();
      net.faulty = false;
    }
    for (const p of this.groups.flat()) {
      if (p.storage !== undefined) p.storage.crashAt = undefined;
      p.crashAfterSend = false;
      if (!p.up) p.restart();
      else if (p.paused) resume(p);
    }
  }
}
