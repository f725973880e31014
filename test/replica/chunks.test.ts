// splitText and sqliteTextRoundTrip (shared/replica/chunks.ts): properties over seeded random text.
import { describe, expect, it } from "vitest";
import { Rand } from "../../shared/raft/rand";
import { isWellFormedText, splitText, sqliteTextRoundTrip } from "../../shared/replica/chunks";
import { randomText } from "../helpers/random-text";

/** Long runs across chunk boundaries, and JSON escapes written out as text. */
const TEXT = { maxRun: 60, escapes: true };

const isHigh = (u: number) => u >= 0xd800 && u <= 0xdbff;
const isLow = (u: number) => u >= 0xdc00 && u <= 0xdfff;

/** An oracle written another way: code point by code point, a lone surrogate reads back as 3 U+FFFD. */
function oracleRoundTrip(s: string): string {
  // A string iterates by code points: a pair is one element of length 2, a lone surrogate one of 1.
  return [...s]
    .map((c) => (c.length === 1 && (isHigh(c.charCodeAt(0)) || isLow(c.charCodeAt(0))) ? "\ufffd\ufffd\ufffd" : c))
    .join("");
}

/**
 * Every property of splitText(text, max), checked on one input. Violations are collected as text
 * (a failure names the size, chunk and input) rather than asserted one by one: this runs ~10^6 times.
 */
function checkSplit(text: string, max: number): string[] {
  const chunks = splitText(text, max);
  const problems: string[] = [];
  if (chunks.join("") !== text) problems.push("the chunks do not join back to the input");
  let at = 0;
  for (const [i, c] of chunks.entries()) {
    const pair = c.length === 2 && isHigh(c.charCodeAt(0)) && isLow(c.charCodeAt(1));
    if (c.length === 0) problems.push(`chunk ${i} is empty`);
    // At most `max` units, except that a max of 1 keeps a pair whole (2 units).
    if (c.length > max && !(max === 1 && pair)) problems.push(`chunk ${i} has ${c.length} units`);
    at += c.length;
    if (i === chunks.length - 1) continue;
    // Never between a high and a low surrogate...
    if (isHigh(text.charCodeAt(at - 1)) && isLow(text.charCodeAt(at))) problems.push(`chunk ${i} ends inside a pair`);
    // ...and no shorter than that requires: full, or one short because a pair starts at max.
    const pairNext = isHigh(text.charCodeAt(at)) && isLow(text.charCodeAt(at + 1));
    if (c.length < max && !(c.length === max - 1 && pairNext)) problems.push(`chunk ${i} is short: ${c.length}`);
  }
  if (problems.length > 0) expect(problems, `max ${max}, text ${JSON.stringify(text)}`).toEqual([]);
  return chunks;
}

describe("splitText", () => {
  it("small cases", () => {
    expect(splitText("", 1)).toEqual([]);
    expect(splitText("", 5)).toEqual([]);
    expect(splitText("abc", 3)).toEqual(["abc"]);
    expect(splitText("abcde", 2)).toEqual(["ab", "cd", "e"]);
    expect(splitText("😀", 1)).toEqual(["😀"]); // a pair is never split: 2 units with max 1
    expect(splitText("😀😀", 1)).toEqual(["😀", "😀"]);
    expect(splitText("a😀", 2)).toEqual(["a", "😀"]);
    expect(splitText("a😀b", 2)).toEqual(["a", "😀", "b"]);
    expect(splitText("ab😀", 3)).toEqual(["ab", "😀"]);
    expect(splitText("😀😀😀", 3)).toEqual(["😀", "😀", "😀"]);
    expect(splitText("😀😀😀", 4)).toEqual(["😀😀", "😀"]);
    // Lone surrogates are copied where they fall; only a real pair is kept together.
    expect(splitText("\ud83d", 1)).toEqual(["\ud83d"]);
    expect(splitText("\ude00\ud83d", 1)).toEqual(["\ude00", "\ud83d"]);
    expect(splitText("\ud83d\ud83d\ude00", 2)).toEqual(["\ud83d", "\ud83d\ude00"]);
    expect(splitText("a\ud83d", 1)).toEqual(["a", "\ud83d"]);
    // The escape text "\ud83d" in JSON is six ASCII characters: any cut will do.
    expect(splitText(JSON.stringify("\ud83d"), 3)).toEqual(['"\\u', "d83", 'd"']);
  });

  it("rejects a chunk size that is not a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => splitText("abc", bad)).toThrow(RangeError);
    }
  });

  it("long runs: chunks of max units, or max - 1 where max is odd and the run is of pairs", () => {
    const run = "😀".repeat(10_000);
    expect(splitText(run, 512).map((c) => c.length)).toEqual([...Array(39).fill(512), 20000 - 39 * 512]);
    const odd = splitText(run, 511);
    expect(odd.slice(0, -1).every((c) => c.length === 510)).toBe(true);
    expect(odd.join("")).toBe(run);
    expect(checkSplit(`x${run}`, 511)[0]?.length).toBe(511);
  });

  it("is lossless and cuts only between whole characters, for random text and every size 1..12 (500 seeds)", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = new Rand(seed);
      const text = randomText(r, 40, { ...TEXT, lone: true });
      for (let max = 1; max <= 12; max++) checkSplit(text, max);
      checkSplit(text, r.range(1, Math.max(1, text.length + 2)));
    }
  });

  it("every chunk of well-formed text survives SQLite TEXT; JSON text of any string does too (500 seeds)", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = new Rand(10_000 + seed);
      const wellFormed = randomText(r, 40, TEXT);
      const anyString = randomText(r, 40, { ...TEXT, lone: true });
      // JSON.stringify escapes lone surrogates, so its output is well-formed whatever the value.
      const json = JSON.stringify({ a: anyString, b: [wellFormed, anyString] });
      expect(isWellFormedText(wellFormed)).toBe(true);
      expect(isWellFormedText(json)).toBe(true);
      for (const text of [wellFormed, json]) {
        for (let max = 1; max <= 12; max++) {
          const chunks = checkSplit(text, max);
          const damaged = chunks.filter((c) => sqliteTextRoundTrip(c) !== c || !isWellFormedText(c));
          if (damaged.length > 0) expect(damaged, `max ${max}, text ${JSON.stringify(text)}`).toEqual([]);
        }
      }
      expect(JSON.parse(splitText(json, r.range(1, 9)).map(sqliteTextRoundTrip).join(""))).toEqual({
        a: anyString,
        b: [wellFormed, anyString],
      });
    }
  });

  it("the fault it fixes: cutting every N units corrupts text with astral characters", () => {
    let corrupted = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const text = JSON.stringify(randomText(new Rand(seed), 40, TEXT));
      const max = 1 + (seed % 9);
      const naive: string[] = [];
      for (let at = 0; at < text.length; at += max) naive.push(text.slice(at, at + max));
      if (naive.map(sqliteTextRoundTrip).join("") !== text) corrupted++;
      expect(splitText(text, max).map(sqliteTextRoundTrip).join("")).toBe(text);
    }
    expect(corrupted).toBeGreaterThan(50);
  });
});

describe("sqliteTextRoundTrip", () => {
  it("is the identity exactly on well-formed UTF-16", () => {
    expect(sqliteTextRoundTrip("")).toBe("");
    expect(sqliteTextRoundTrip("é中😀")).toBe("é中😀");
    expect(sqliteTextRoundTrip("a\ud83d")).toBe("a\ufffd\ufffd\ufffd");
    expect(sqliteTextRoundTrip("\ude00b")).toBe("\ufffd\ufffd\ufffdb");
    expect(sqliteTextRoundTrip("\ud83d\ud83d\ude00")).toBe("\ufffd\ufffd\ufffd😀");
    expect(sqliteTextRoundTrip("\ude00\ud83d")).toBe("\ufffd".repeat(6));
    expect(sqliteTextRoundTrip("\\ud83d")).toBe("\\ud83d"); // escape text is plain ASCII
  });

  it("matches an independent oracle and the platform's isWellFormed (1000 seeds)", () => {
    const native = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
    for (let seed = 1; seed <= 1000; seed++) {
      const s = randomText(new Rand(seed), 30, { ...TEXT, lone: true });
      const out = sqliteTextRoundTrip(s);
      expect(out).toBe(oracleRoundTrip(s));
      expect(isWellFormedText(s)).toBe(native(s));
      expect(out === s).toBe(native(s));
      expect(isWellFormedText(out)).toBe(true);
      expect(sqliteTextRoundTrip(out)).toBe(out);
      // TextEncoder agrees on which strings survive (it writes one U+FFFD where workerd reads three).
      const viaTextEncoder = new TextDecoder().decode(new TextEncoder().encode(s));
      expect(viaTextEncoder === s).toBe(out === s);
    }
  });
});
