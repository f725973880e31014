/**
 * The fault injector of the faulty phase, one step every 100 ms of simulated time: partitions of
 * a group (symmetric or one way) and their healing, crashes (idle, or at a point inside the
 * handling of the next Ready: before its write, after it, after a send) and restarts, pauses, and
 * clock steps (as the clock fault route makes them) and restarts on another machine with another
 * clock, faults aimed at a group's current leader (crash, pause, or cut it off; and a pause right after
 * it is elected, so that requests pile up for a leader that has not committed yet), since leader
 * changes are where most bugs of a replicated service live.
 */
import type { NodeId, Rand } from "../../../shared/raft/index.js";
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
  };

  constructor(
    private readonly rand: Rand,
    private readonly rates: FaultRates,
    private readonly groups: readonly (readonly SimPeer[])[],
    private readonly nets: readonly PeerNetwork[],
    private readonly clocks: ClockBounds,
    private readonly log: (line: () => string) => void,
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

  /** Heals everything for the liveness phase: links, crashed and paused peers, armed crash points. */
  healAll(resume: (p: SimPeer) => void): void {
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
