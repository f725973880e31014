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

export function decodeEnvelope(data: string): Envelope {
  const a = data.indexOf("\n");
  const b = data.indexOf("\n", a + 1);
  const c = data.indexOf("\n", b + 1);
  if (data.slice(0, a) !== "e1" || b < 0 || c < 0) throw new Error("not a command envelope");
  return { id: data.slice(a + 1, b), at: Number(data.slice(b + 1, c)), body: data.slice(c + 1) };
}

interface Seen<R> {
  id: string;
  at: number;
  result: R;
}

export interface DedupOptions<R> {
  /** How long an id is remembered (leader time), and at most how many ids. */
  windowMs?: number;
  maxIds?: number;
  /** The answer to a repeat: the first result without its side effects (e.g. lock events). */
  replay?: (first: R) => R;
}

export class Deduplicated<R> implements StateMachine<R> {
  /** Applied ids, oldest first, with their results. */
  private seen = new Map<string, Seen<R>>();
  /** The largest `at` applied: time never runs backwards when leadership moves. */
  private time = 0;
  private readonly windowMs: number;
  private readonly maxIds: number;
  private readonly replay: (first: R) => R;

  constructor(
    private readonly inner: StateMachine<R>,
    options: DedupOptions<R> = {},
  ) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxIds = options.maxIds ?? 10_000;
    this.replay = options.replay ?? ((r) => r);
  }

  apply(entry: Entry): R {
    if (entry.type !== "normal" || entry.data === "") return this.inner.apply(entry);
    const env = decodeEnvelope(entry.data);
    this.time = Math.max(this.time, env.at);
    this.forget();
    const prior = env.id === "" ? undefined : this.seen.get(env.id);
    if (prior !== undefined) return this.replay(prior.result);
    const result = this.inner.apply({ ...entry, data: env.body });
    if (env.id !== "") this.seen.set(env.id, { id: env.id, at: this.time, result });
    return result;
  }

  /** Drops ids older than the window, and the oldest beyond the cap (deterministic: log order). */
  private forget(): void {
    for (const [id, s] of this.seen) {
      if (s.at >= this.time - this.windowMs && this.seen.size <= this.maxIds) break;
      this.seen.delete(id);
    }
  }

  snapshot(): string {
    return JSON.stringify({ inner: this.inner.snapshot(), time: this.time, seen: [...this.seen.values()] });
  }

  restore(data: string): void {
    if (data === "") {
      this.seen = new Map();
      this.time = 0;
      this.inner.restore("");
      return;
    }
    const image = JSON.parse(data) as { inner: string; time: number; seen: Seen<R>[] };
    this.seen = new Map(image.seen.map((s) => [s.id, s]));
    this.time = image.time;
    this.inner.restore(image.inner);
  }
}
