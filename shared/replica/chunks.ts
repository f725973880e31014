/**
 * Text cut into rows for SQLite, and what SQLite TEXT storage does to a JavaScript string. Pure:
 * no Workers APIs, so the Durable Object storage (objects/sqlite-storage.ts) and the simulator's
 * model of it share one definition.
 *
 * A JS string is UTF-16. SQLite TEXT holds UTF-8, which has no encoding for a lone surrogate (a
 * high surrogate U+D800–U+DBFF not followed by a low one U+DC00–U+DFFF, or a low one not preceded
 * by a high one). So a string survives a TEXT column unchanged exactly when it is well-formed
 * UTF-16, and cutting a well-formed string between the two halves of a pair makes two ill-formed
 * pieces that no longer join back (issue 8, fault 1: an emoji in a snapshot came back as U+FFFDs).
 */

const HIGH_MIN = 0xd800;
const LOW_MIN = 0xdc00;
const LOW_MAX = 0xdfff;

const isHigh = (u: number) => u >= HIGH_MIN && u < LOW_MIN;
const isLow = (u: number) => u >= LOW_MIN && u <= LOW_MAX;

/**
 * Cuts `text` into chunks of at most `maxUnits` UTF-16 code units each, never between the two
 * halves of a surrogate pair:
 *
 * - lossless and total: `splitText(t, n).join("") === t` for every string, lone surrogates
 *   included (they are copied as they are, each where it falls);
 * - every chunk is non-empty (so `""` gives `[]`), and chunks are as long as they may be: a chunk
 *   is one unit short of `maxUnits` only when its last unit would be the high half of a pair;
 * - `chunk.length <= maxUnits`, with one exception: when `maxUnits` is 1 a pair is kept whole, as
 *   one chunk of 2 units (a pair is never split, and every chunk makes progress);
 * - if `text` is well-formed UTF-16 (any `JSON.stringify` output is: it escapes lone surrogates
 *   as `\udxxx`), so is every chunk, hence `sqliteTextRoundTrip(chunk) === chunk`.
 *
 * `maxUnits` must be a positive integer (a RangeError otherwise).
 */
export function splitText(text: string, maxUnits: number): string[] {
  if (!Number.isSafeInteger(maxUnits) || maxUnits < 1) {
    throw new RangeError(`splitText: maxUnits must be a positive integer, not ${maxUnits}`);
  }
  if (text.length <= maxUnits) return text === "" ? [] : [text];
  const chunks: string[] = [];
  for (let at = 0; at < text.length; ) {
    let end = Math.min(at + maxUnits, text.length);
    if (end < text.length && isHigh(text.charCodeAt(end - 1)) && isLow(text.charCodeAt(end))) {
      // The cut would fall inside a pair: end before it, or take it whole if it is all there is.
      end = end - 1 > at ? end - 1 : end + 1;
    }
    chunks.push(text.slice(at, end));
    at = end;
  }
  return chunks;
}

/** True when `s` has no lone surrogate (ES2024's `String.prototype.isWellFormed`). */
export function isWellFormedText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u < HIGH_MIN || u > LOW_MAX) continue;
    if (isHigh(u) && isLow(s.charCodeAt(i + 1))) i++;
    else return false;
  }
  return true;
}

/** Three replacement characters: what one lone surrogate reads back as (see sqliteTextRoundTrip). */
const LONE_SURROGATE_READ_BACK = "\ufffd\ufffd\ufffd";

/**
 * What writing `s` to a SQLite TEXT column of a Durable Object and reading it back returns.
 *
 * Identity exactly when `s` is well-formed UTF-16 (`isWellFormedText`). Otherwise each lone
 * surrogate comes back as THREE U+FFFD, not one: workerd writes it as its 3-byte generalised
 * UTF-8 form (e.g. U+D83D as ED A0 BD) and its UTF-8 decoder turns each of those invalid bytes
 * into a U+FFFD on the way back. (A model built on `TextEncoder` would give one U+FFFD, with the
 * same answer to the question that matters: does the string survive.) The behaviour is checked
 * against the real SQLite of workerd in test/workers/snapshot-fidelity.test.ts.
 */
export function sqliteTextRoundTrip(s: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u < HIGH_MIN || u > LOW_MAX) continue;
    if (isHigh(u) && isLow(s.charCodeAt(i + 1))) {
      i++;
      continue;
    }
    out += s.slice(from, i) + LONE_SURROGATE_READ_BACK;
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}
