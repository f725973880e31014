import type { StateMachine } from "../raft/state-machine.js";
import type { Entry } from "../raft/types.js";

/**
 * Exactly-once commands across retries. The Worker gives every request an id and retries it, with
 * the same id, at another peer when the first could not say whether it took effect (a crash, a
 * lost reply). The envelope carries that id; a command whose id was applied within the window is
 * not applied again: the first result is returned. Expiry uses the leader's time in the envelope,
 * so every replica forgets the same ids at the same entry.
 */
export interface Envelope {
  /** Request id; empty for internal commands that are never retried (expire, no-ops). */
  id: string;
  /** The proposing leader's clock, ms. */
  at: number;
  body: string;
}

/**
 * `e1\n<id>\n<at>\n<body>`: a plain prefix rather than JSON around the body, which would escape
 * (and every replica unescape) the whole command. Ids are names or UUIDs: no newline.
 */
export function encodeEnvelope(env: Envelope): string {
  return `e1\n${env.id}\n${env.at}\n${env.body}`;
}

/** The entry data of command `cmd` (JSON, stamped with its group time `now`) under request id `id`. */
export function encodeCommand(id: string, cmd: { now: number }): string {
  return encodeEnvelope({ id, at: cmd.now, body: JSON.stringify(cmd) });
}

export function decodeEnvelope(data: string): Envelope {
  const a = data.indexOf("\n");
  const b = data.indexOf("\n", a + 1);
  const c = data.indexOf("\n", b + 1);
  if (data.slice(0, a) !== "e1" || b < 0 || c < 0) throw new Error("not a command envelope");
  return { id: data.slice(a + 1, b), at: Number(data.slice(b + 1, c)), body: data.slice(c + 1) };
}

/** Internal request ids are kept this long (group time): every Worker retry falls well inside it. */
export const REQUEST_ID_WINDOW_MS = 2 * 60_000;
/**
 * Request ids derived from an Idempotency-Key (prefix `k:`) are kept this long: the key itself is
 * remembered 10 minutes, and a re-run of its request within them must apply no part twice.
 */
export const KEYED_ID_WINDOW_MS = 11 * 60_000;
export const KEYED_ID_PREFIX = "k:";

interface Seen<S> {
  id: string;
  /** Group time when the id was applied: it is forgotten once the window has passed. */
  at: number;
  stored: S;
}

export interface DedupOptions<R, S> {
  /** What to remember of a result (default: all of it). Keep it small: it lives for minutes. */
  compact?: (result: R) => S;
  /** The answer to a repeat, from what was kept (and the state now); no side effects fire again. */
  replay?: (stored: S) => R;
}

/**
 * Memory: one record per command applied in the last window — the id (a UUID and a shard or
 * group suffix, ~45 bytes; 66 for keyed ids), its time and the compact result (tens of bytes:
 * never a message body). At the ~1,000 requests/s a Durable Object takes, that is at most
 * ~120,000 records for two minutes, about 20 MB; keyed ids add their own rate times 11 minutes.
 */
export class Deduplicated<R, S = R> implements StateMachine<R> {
  /** Applied ids in the order applied (group time never decreases, so oldest first per window). */
  private short = new Map<string, Seen<S>>();
  private long = new Map<string, Seen<S>>();
  /** The largest `at` applied: time never runs backwards when leadership moves. */
  private t = 0;
  private readonly compact: (result: R) => S;
  private readonly replay: (stored: S) => R;

  constructor(
    private readonly inner: StateMachine<R>,
    options: DedupOptions<R, S> = {},
  ) {
    this.compact = options.compact ?? ((r) => r as unknown as S);
    this.replay = options.replay ?? ((s) => s as unknown as R);
  }

  /** The group time: the largest command time applied. */
  get time(): number {
    return this.t;
  }

  /** Was a command with this request id applied within its window? */
  has(id: string): boolean {
    return this.mapOf(id).has(id);
  }

  apply(entry: Entry): R {
    if (entry.type !== "normal" || entry.data === "") return this.inner.apply(entry);
    const env = decodeEnvelope(entry.data);
    this.t = Math.max(this.t, env.at);
    this.forget(this.short, REQUEST_ID_WINDOW_MS);
    this.forget(this.long, KEYED_ID_WINDOW_MS);
    const seen = env.id === "" ? undefined : this.mapOf(env.id);
    const prior = seen?.get(env.id);
    if (prior !== undefined) return this.replay(prior.stored);
    const result = this.inner.apply({ ...entry, data: env.body });
    seen?.set(env.id, { id: env.id, at: this.t, stored: this.compact(result) });
    return result;
  }

  private mapOf(id: string): Map<string, Seen<S>> {
    return id.startsWith(KEYED_ID_PREFIX) ? this.long : this.short;
  }

  /** Drops ids older than the window (deterministic: log order, group time). */
  private forget(map: Map<string, Seen<S>>, windowMs: number): void {
    for (const [id, s] of map) {
      if (s.at >= this.t - windowMs) break;
      map.delete(id);
    }
  }

  get size(): number {
    return this.short.size + this.long.size;
  }

  snapshot(): string {
    const seen = [...this.short.values(), ...this.long.values()];
    return JSON.stringify({ inner: this.inner.snapshot(), time: this.t, seen });
  }

  restore(data: string): void {
    this.short = new Map();
    this.long = new Map();
    if (data === "") {
      this.t = 0;
      this.inner.restore("");
      return;
    }
    const image = JSON.parse(data) as { inner: string; time: number; seen: (Seen<S> & { result?: R })[] };
    for (const s of image.seen) {
      // Snapshots from before compact records kept the whole result.
      const stored = s.stored !== undefined ? s.stored : this.compact(s.result as R);
      this.mapOf(s.id).set(s.id, { id: s.id, at: s.at, stored });
    }
    this.t = image.time;
    this.inner.restore(image.inner);
  }
}
