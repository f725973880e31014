import { describe, expect, it } from "vitest";
import type { Entry, StateMachine } from "../../shared/raft/index.js";
import { Deduplicated, decodeEnvelope, encodeEnvelope } from "../../shared/replica/dedup.js";

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

  it("forgets ids after the window (leader time) and beyond the cap, the same way on every replica", () => {
    const inner = new Counter();
    const m = new Deduplicated(inner, { windowMs: 100, maxIds: 2 });
    m.apply(entry("a", 0, "x"));
    m.apply(entry("a", 150, "x")); // past the window: applied again
    expect(inner.n).toBe(2);
    m.apply(entry("b", 151, "y"));
    m.apply(entry("c", 152, "z")); // cap 2: "a" is dropped
    m.apply(entry("a", 153, "x"));
    expect(inner.n).toBe(5);
    m.apply(entry("c", 154, "z")); // still remembered
    expect(inner.n).toBe(5);
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
