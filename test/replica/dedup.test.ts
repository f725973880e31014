import { describe, expect, it } from "vitest";
import type { Entry, StateMachine } from "../../shared/raft/index.js";
import {
  Deduplicated,
  decodeEnvelope,
  encodeEnvelope,
  KEYED_ID_PREFIX,
  KEYED_ID_WINDOW_MS,
  REQUEST_ID_WINDOW_MS,
} from "../../shared/replica/dedup.js";

/** Counts applications; the result is the running count and the command's body. */
class Counter implements StateMachine<{ n: number; body: string; events: string[] }> {
  n = 0;
  apply(e: Entry) {
    this.n++;
    return { n: this.n, body: e.data, events: [`applied ${e.data}`] };
  }
  snapshot() {
    return String(this.n);
  }
  restore(data: string) {
    this.n = data === "" ? 0 : Number(data);
  }
}

let index = 0;
const entry = (id: string, at: number, body: string): Entry => ({
  term: 1,
  index: ++index,
  type: "normal",
  data: encodeEnvelope({ id, at, body }),
});

describe("Deduplicated", () => {
  const replay = (r: { n: number; body: string; events: string[] }) => ({ ...r, events: [] });

  it("applies a retried id once and answers the repeat with the first result, without its events", () => {
    const inner = new Counter();
    const m = new Deduplicated(inner, { replay });
    expect(m.apply(entry("a", 1000, "x"))).toEqual({ n: 1, body: "x", events: ["applied x"] });
    expect(m.apply(entry("a", 1001, "x"))).toEqual({ n: 1, body: "x", events: [] });
    expect(m.apply(entry("b", 1002, "y")).n).toBe(2);
    expect(inner.n).toBe(2);
  });

  it("never deduplicates internal commands (empty id) or no-ops", () => {
    const inner = new Counter();
    const m = new Deduplicated(inner);
    m.apply(entry("", 1, "tick"));
    m.apply(entry("", 2, "tick"));
    m.apply({ term: 1, index: ++index, type: "normal", data: "" });
    expect(inner.n).toBe(3);
  });

  it("remembers every id for its whole window, however many come in between, then forgets it", () => {
    const inner = new Counter();
    const m = new Deduplicated(inner);
    m.apply(entry("a", 0, "x"));
    // 50,000 other requests within the window: a count-bounded memory would have dropped "a".
    for (let i = 0; i < 50_000; i++) m.apply(entry(`r${i}`, 1 + Math.floor(i / 1000), "y"));
    m.apply(entry("a", REQUEST_ID_WINDOW_MS, "x"));
    expect(inner.n).toBe(50_001);
    m.apply(entry("a", REQUEST_ID_WINDOW_MS + 51, "x")); // past its window: applied again
    expect(inner.n).toBe(50_002);
    expect(m.size).toBeLessThan(50_000); // the old ids are gone
  });

  it("keeps ids derived from an Idempotency-Key for eleven minutes, others for two", () => {
    const inner = new Counter();
    const m = new Deduplicated(inner);
    m.apply(entry(`${KEYED_ID_PREFIX}abc`, 0, "x"));
    m.apply(entry("plain", 0, "x"));
    m.apply(entry(`${KEYED_ID_PREFIX}abc`, KEYED_ID_WINDOW_MS - 1, "x"));
    m.apply(entry("plain", KEYED_ID_WINDOW_MS - 1, "x"));
    expect(inner.n).toBe(3); // the plain id was forgotten after two minutes, the keyed one kept
    expect(REQUEST_ID_WINDOW_MS).toBeLessThan(KEYED_ID_WINDOW_MS);
    m.apply(entry(`${KEYED_ID_PREFIX}abc`, 2 * KEYED_ID_WINDOW_MS, "x"));
    expect(inner.n).toBe(4);
  });

  it("keeps only the compact form of a result and answers repeats from it", () => {
    const inner = new Counter();
    const m = new Deduplicated(inner, {
      compact: (r: { n: number; body: string; events: string[] }) => r.n,
      replay: (n: number) => ({ n, body: `replayed ${n}`, events: [] }),
    });
    m.apply(entry("a", 1, "a very long body that must not be kept".repeat(100)));
    expect(m.snapshot()).not.toContain("very long body");
    expect(m.apply(entry("a", 2, "again"))).toEqual({ n: 1, body: "replayed 1", events: [] });
    expect(inner.n).toBe(1);
  });

  it("remembers ids across snapshot and restore", () => {
    const a = new Deduplicated(new Counter());
    a.apply(entry("a", 10, "x"));
    const inner = new Counter();
    const b = new Deduplicated(inner);
    b.restore(a.snapshot());
    expect(inner.n).toBe(1);
    expect(b.apply(entry("a", 11, "x")).n).toBe(1);
    expect(inner.n).toBe(1);
  });
});

describe("envelopes", () => {
  it("round-trip, whatever the body holds, and refuse anything else", () => {
    const env = { id: "req-1", at: 1_700_000_000_123, body: '{"a":"x\\ny"}\nraw\nlines' };
    expect(decodeEnvelope(encodeEnvelope(env))).toEqual(env);
    expect(decodeEnvelope(encodeEnvelope({ id: "", at: 5, body: "" }))).toEqual({ id: "", at: 5, body: "" });
    expect(() => decodeEnvelope('{"id":"a"}')).toThrow(/envelope/);
  });
});
