/**
 * Simulated time. `now` in the world is real time in ms since the start of the run; every peer
 * reads its own wall clock, `EPOCH + now·(1 + drift) + offset` (whole ms, like Date.now()), so
 * peers disagree by seconds (offset) and drift apart (ppm). Timers a peer sets in its own time
 * (alarms at a wall-clock instant, sleeps of a duration) are turned back into real time here.
 */

/** A plausible Date.now() at the start of every run. */
export const EPOCH = 1_700_000_000_000;

export class PeerClock {
  private readonly rate: number;

  constructor(
    /** Constant error, ms (both signs). */
    readonly offsetMs: number,
    /** Rate error in parts per million (both signs): the clock runs at 1 + drift/1e6 of real time. */
    readonly driftPpm: number,
  ) {
    this.rate = 1 + driftPpm / 1e6;
  }

  /** The peer's Date.now() at real time `real`. */
  wall(real: number): number {
    return Math.floor(EPOCH + real * this.rate + this.offsetMs);
  }

  /** The first real ms at which this clock reads at least `wall`. */
  realAt(wall: number): number {
    let r = Math.ceil((wall - EPOCH - this.offsetMs) / this.rate);
    while (this.wall(r) < wall) r++;
    while (this.wall(r - 1) >= wall) r--;
    return r;
  }

  /** How much real time a local duration takes (a setTimeout of `ms` on this peer), at least 0. */
  realDuration(ms: number): number {
    return Math.max(0, Math.ceil(ms / this.rate));
  }
}

/** The Worker's clock: real time (its deadlines are durations, so an offset would not matter). */
export const workerClock = new PeerClock(0, 0);
