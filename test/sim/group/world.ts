/**
 * The event queue and the simulated clock of one run. Everything that would be a timer, a
 * network delivery or deferred work in production is an event here, at a real time in ms; events
 * of one instant run in the order they were scheduled. The code under test uses Promises, so
 * after every event all the microtasks it started run before the next event (see `drain`): a
 * run needs no real timer and replays identically from its seed.
 *
 * An `Actor` (a peer) owns events: while it is paused they pile up and run when it resumes; when
 * it crashes (`life` changes) the events of its earlier life are dropped, as its memory is.
 */

export interface Actor {
  /** Bumped by every crash: events scheduled by an earlier life never run. */
  life: number;
  paused: boolean;
  /** Events that came due while paused, in order. */
  backlog: Scheduled[];
}

export interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  actor: Actor | undefined;
  /** The actor's life when scheduled; undefined: runs in any life (a message on the wire). */
  life: number | undefined;
}

/**
 * Resolves once every pending microtask has run, however deep the chains: a process.nextTick
 * callback queued from inside a microtask runs only after the microtask queue is empty. No turn
 * of the event loop (setImmediate would take one, and cost ten times as much).
 */
function drain(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

export class World {
  /** Real time, ms since the start of the run. */
  now = 0;
  /** Events run so far. */
  events = 0;
  private heap: Scheduled[] = [];
  private seq = 0;
  /**
   * Called after every event that ran, once the work it started has run, with the event's actor
   * (the simulator's invariants).
   */
  afterEvent: ((actor: Actor | undefined) => void) | undefined;

  /** Told of anything an event throws (the simulator records it as a violation). */
  constructor(private readonly onError: (e: unknown) => void) {}

  /**
   * Runs `fn` at `time` (never in the past). With an `actor`, the event waits while it is paused
   * and, unless `anyLife`, is dropped if the actor crashed since (its timers die with it).
   */
  at(time: number, fn: () => void, actor?: Actor, anyLife = false): void {
    const life = actor === undefined || anyLife ? undefined : actor.life;
    this.push({ at: Math.max(time, this.now), seq: this.seq++, fn, actor, life });
  }

  after(ms: number, fn: () => void, actor?: Actor, anyLife = false): void {
    this.at(this.now + ms, fn, actor, anyLife);
  }

  sleep(ms: number, actor?: Actor): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve, actor));
  }

  /** Runs what piled up while `actor` was paused, now, in its original order. */
  resume(actor: Actor): void {
    actor.paused = false;
    const backlog = actor.backlog;
    actor.backlog = [];
    for (const ev of backlog) this.push({ ...ev, at: this.now, seq: this.seq++ });
  }

  /**
   * `actor` crashed: what piled up for it while paused is dropped, except what was on its way in
   * (messages, calls), which lands now on the crashed peer (and is refused there).
   */
  crashed(actor: Actor): void {
    actor.paused = false;
    const backlog = actor.backlog;
    actor.backlog = [];
    for (const ev of backlog) if (ev.life === undefined) this.push({ ...ev, at: this.now, seq: this.seq++ });
  }

  /** Runs events until `end` (then now = end), or until `stop()` says so between instants. */
  async run(end: number, stop: () => boolean = () => false): Promise<void> {
    for (;;) {
      if (stop()) return;
      const next = this.heap[0];
      if (next === undefined || next.at > end) {
        this.now = Math.max(this.now, end);
        return;
      }
      this.now = next.at;
      while (this.heap[0] !== undefined && (this.heap[0] as Scheduled).at === this.now) {
        const ev = this.pop();
        const ran = this.fire(ev);
        // The continuations an event started run before the next event, as in a real event loop.
        await drain();
        if (ran) this.afterEvent?.(ev.actor);
      }
    }
  }

  /** Runs `ev` unless its actor is paused (then later) or crashed since; true if it ran. */
  private fire(ev: Scheduled): boolean {
    const actor = ev.actor;
    if (actor !== undefined) {
      if (ev.life !== undefined && actor.life !== ev.life) return false;
      if (actor.paused) {
        actor.backlog.push(ev);
        return false;
      }
    }
    this.events++;
    try {
      ev.fn();
    } catch (e) {
      this.onError(e);
    }
    return true;
  }

  // A binary heap ordered by (at, seq).
  private push(ev: Scheduled): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(ev, h[p] as Scheduled)) break;
      h[i] = h[p] as Scheduled;
      i = p;
    }
    h[i] = ev;
  }

  private pop(): Scheduled {
    const h = this.heap;
    const top = h[0] as Scheduled;
    const last = h.pop() as Scheduled;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && before(h[r] as Scheduled, h[l] as Scheduled) ? r : l;
        if (!before(h[c] as Scheduled, last)) break;
        h[i] = h[c] as Scheduled;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
