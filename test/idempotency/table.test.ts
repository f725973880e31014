/** The Idempotency-Key table of one group: window, mismatch, running → done, memory bound, snapshots. */
import { describe, expect, it } from "vitest";
import { GroupState } from "../../shared/group/state.js";
import { IdempotencyTable, utf8Length } from "../../shared/idempotency/table.js";
import {
  IDEMPOTENCY_RECORD_OVERHEAD,
  IDEMPOTENCY_WINDOW_MS,
  type IdemAnswerInput,
  type IdemResult,
} from "../../shared/idempotency/types.js";
import type { Entry } from "../../shared/raft/types.js";

const T0 = 1_700_000_000_000;
const FP = "f".repeat(64);
const OTHER = "0".repeat(64);

const begin = (t: IdempotencyTable, key: string, now: number, fp = FP): IdemResult =>
  t.applyCommand({ type: "idem-begin", key, fp, now }).result;
const finish = (t: IdempotencyTable, key: string, now: number, answer: IdemAnswerInput, fp = FP): IdemResult =>
  t.applyCommand({ type: "idem-finish", key, fp, now, ...answer }).result;

const ok = { status: 200, contentType: "application/json", json: { released: true } };

describe("IdempotencyTable", () => {
  it("a new key runs; a repeat while running says running with the same at; after finish it answers the stored answer", () => {
    const t = new IdempotencyTable();
    expect(begin(t, "k", T0)).toEqual({ kind: "new", at: T0 });
    expect(begin(t, "k", T0 + 5)).toEqual({ kind: "running", at: T0 });
    expect(finish(t, "k", T0 + 10, ok)).toEqual({
      kind: "done",
      status: 200,
      body: '{"released":true}',
      contentType: "application/json",
    });
    expect(begin(t, "k", T0 + 20)).toEqual({
      kind: "done",
      status: 200,
      body: '{"released":true}',
      contentType: "application/json",
    });
    expect(t.get("k")).toMatchObject({ state: "done", at: T0 });
  });

  it("the first finish wins: a second finish gets the first answer", () => {
    const t = new IdempotencyTable();
    begin(t, "k", T0);
    finish(t, "k", T0 + 1, { status: 409, contentType: "application/problem+json", json: { type: "lock-conflict" } });
    expect(finish(t, "k", T0 + 2, ok)).toEqual({
      kind: "done",
      status: 409,
      body: '{"type":"lock-conflict"}',
      contentType: "application/problem+json",
    });
  });

  it("a text body is stored as it is", () => {
    const t = new IdempotencyTable();
    begin(t, "k", T0);
    expect(finish(t, "k", T0, { status: 404, contentType: "text/plain", text: 'not "json"' })).toMatchObject({
      body: 'not "json"',
    });
  });

  it("the same key with another fingerprint is a mismatch, for begin and finish, and changes nothing", () => {
    const t = new IdempotencyTable();
    begin(t, "k", T0);
    expect(begin(t, "k", T0 + 1, OTHER)).toEqual({ kind: "mismatch" });
    expect(finish(t, "k", T0 + 1, ok, OTHER)).toEqual({ kind: "mismatch" });
    expect(t.get("k")).toMatchObject({ fp: FP, state: "running" });
    finish(t, "k", T0 + 2, ok);
    expect(begin(t, "k", T0 + 3, OTHER)).toEqual({ kind: "mismatch" });
  });

  it("remembers a key for exactly the window of group time after it was first seen", () => {
    const t = new IdempotencyTable();
    begin(t, "k", T0);
    finish(t, "k", T0 + 60_000, ok);
    expect(begin(t, "k", T0 + IDEMPOTENCY_WINDOW_MS - 1)).toMatchObject({ kind: "done" });
    // At the window's end it is forgotten: the same key (even with another request) is new again.
    expect(begin(t, "k", T0 + IDEMPOTENCY_WINDOW_MS, OTHER)).toEqual({
      kind: "new",
      at: T0 + IDEMPOTENCY_WINDOW_MS,
    });
  });

  it("group time never runs backwards: an older now neither revives nor re-times a key", () => {
    const t = new IdempotencyTable();
    begin(t, "a", T0);
    begin(t, "b", T0 + IDEMPOTENCY_WINDOW_MS); // forgets a
    expect(t.get("a")).toBeUndefined();
    // A leader with a slower clock: time stays at the max seen, and a new key gets that time.
    expect(begin(t, "c", T0 + 10)).toEqual({ kind: "new", at: T0 + IDEMPOTENCY_WINDOW_MS });
    expect(t.now).toBe(T0 + IDEMPOTENCY_WINDOW_MS);
  });

  it("a finish for a key no longer remembered records it from now", () => {
    const t = new IdempotencyTable();
    expect(finish(t, "k", T0, ok)).toMatchObject({ kind: "done", status: 200 });
    expect(begin(t, "k", T0 + 1)).toMatchObject({ kind: "done", status: 200 });
  });

  it("at its memory bound a new key is refused (full) and nothing is recorded; known keys still answer", () => {
    const cost = (key: string) => IDEMPOTENCY_RECORD_OVERHEAD + utf8Length(key) + FP.length;
    const t = new IdempotencyTable({ maxBytes: 3 * cost("k0") });
    expect(begin(t, "k0", T0)).toMatchObject({ kind: "new" });
    expect(begin(t, "k1", T0)).toMatchObject({ kind: "new" });
    expect(begin(t, "k2", T0)).toMatchObject({ kind: "new" });
    expect(t.bytes).toBe(3 * cost("k0"));
    expect(begin(t, "k3", T0)).toEqual({ kind: "full" });
    expect(t.get("k3")).toBeUndefined();
    expect(t.size).toBe(3);
    // Keys already begun are never dropped to make room, and their answers are stored.
    expect(finish(t, "k0", T0, ok)).toMatchObject({ kind: "done" });
    expect(begin(t, "k0", T0)).toMatchObject({ kind: "done" });
    expect(begin(t, "k1", T0)).toMatchObject({ kind: "running" });
    expect(begin(t, "k3", T0 + 1)).toEqual({ kind: "full" });
    // Once the window of the old keys ends, there is room again.
    expect(begin(t, "k3", T0 + IDEMPOTENCY_WINDOW_MS)).toMatchObject({ kind: "new" });
    expect(t.size).toBe(1);
  });

  it("charges answers by their UTF-8 bytes", () => {
    const t = new IdempotencyTable();
    begin(t, "k", T0);
    const before = t.bytes;
    finish(t, "k", T0, { status: 200, text: "é😀" });
    expect(t.bytes - before).toBe(2 + 4);
    expect(utf8Length("a\u00e9\u4e2d😀\ud800")).toBe(1 + 2 + 3 + 4 + 3);
  });

  it("pruning keeps memory bounded: after 10 minutes of group time the table is empty", () => {
    const t = new IdempotencyTable();
    const body = "x".repeat(10_000);
    for (let i = 0; i < 2_000; i++) {
      const now = T0 + i * 100;
      begin(t, `key-${i}`, now);
      if (i % 3 !== 0) finish(t, `key-${i}`, now, { status: 200, text: body });
      // Never more than the keys of the last window.
      expect(t.size).toBeLessThanOrEqual(IDEMPOTENCY_WINDOW_MS / 100);
    }
    expect(t.size).toBeGreaterThan(0);
    t.advance(T0 + 1999 * 100 + IDEMPOTENCY_WINDOW_MS);
    expect(t.size).toBe(0);
    expect(t.bytes).toBe(0);
  });

  it("snapshot and restore round-trip every record, the time and the bytes", () => {
    const t = new IdempotencyTable();
    begin(t, "a", T0);
    finish(t, "a", T0 + 1, { status: 409, contentType: "application/problem+json", json: { q: 'x"y', n: [1] } });
    begin(t, "b", T0 + 2);
    begin(t, "ü", T0 + 3);
    finish(t, "ü", T0 + 4, { status: 200, text: "plain 😀" });
    const copy = new IdempotencyTable();
    copy.restore(t.snapshot());
    expect(copy.snapshot()).toBe(t.snapshot());
    expect(copy.bytes).toBe(t.bytes);
    expect(copy.now).toBe(t.now);
    expect(begin(copy, "a", T0 + 5)).toEqual(begin(t, "a", T0 + 5));
    expect(begin(copy, "b", T0 + 5)).toEqual({ kind: "running", at: T0 + 2 });
    // Pruning order survives the round trip.
    copy.advance(T0 + 2 + IDEMPOTENCY_WINDOW_MS);
    expect(copy.get("a")).toBeUndefined();
    expect(copy.get("b")).toBeUndefined();
    expect(copy.get("ü")).toBeDefined();
    copy.restore("");
    expect(copy.size).toBe(0);
    expect(copy.bytes).toBe(0);
  });
});

describe("GroupState with idempotency keys", () => {
  let index = 0;
  const entry = (cmd: object): Entry => ({ term: 1, index: ++index, type: "normal", data: JSON.stringify(cmd) });

  it("dispatches idem-* commands to the idempotency table and snapshots it with the rest", () => {
    const g = new GroupState();
    expect(g.apply(entry({ type: "idem-begin", key: "k", fp: FP, now: T0 }))).toEqual({
      kind: "idem",
      result: { kind: "new", at: T0 },
    });
    expect(g.apply(entry({ type: "idem-finish", key: "k", fp: FP, now: T0, status: 200, json: [1] }))).toEqual({
      kind: "idem",
      result: { kind: "done", status: 200, body: "[1]" },
    });
    const copy = new GroupState();
    copy.restore(g.snapshot());
    expect(copy.idempotency.get("k")).toEqual(g.idempotency.get("k"));
  });

  it("restores a snapshot taken before the idempotency table existed", () => {
    const g = new GroupState();
    g.apply(entry({ type: "idem-begin", key: "k", fp: FP, now: T0 }));
    const old = JSON.stringify({ locks: g.locks.snapshot(), queues: g.queues.snapshot() });
    g.restore(old);
    expect(g.idempotency.size).toBe(0);
  });
});
