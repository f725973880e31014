/**
 * Seeded random text for property tests and the simulator's message bodies: ASCII runs, BMP
 * characters (JSON's special ones among them), emoji and random astral characters, long runs of
 * one emoji, and, when asked, JSON escape sequences as text and lone surrogates anywhere.
 */
import type { Rand } from "../../shared/raft/rand.js";

export const EMOJI = ["😀", "💩", "🇫🇷", "👩‍👩‍👧", "🏳️‍🌈", "𝄞", "𠜎", "🧑🏽‍🚀", "🦀", "\u{10000}", "\u{10FFFF}"];
export const BMP = [
  "é",
  "中",
  "ß",
  "Ω",
  "€",
  "—",
  "\u00a0",
  "\ufffd",
  "\uffff",
  "\ue000",
  "\u2028",
  "\ud7ff",
  '"',
  "\\",
  "\n",
  "\u0000",
  "\t",
  "/",
];
const ESCAPES = ["\\ud83d", "\\ude00", "\\ud83d\\ude00", '\\"', "\\\\", "\\u0000", "\\n"];

export interface TextShape {
  /** Longest run of one character (ASCII or emoji); default 8. */
  maxRun?: number;
  /** Add JSON escape sequences written out as text (`\ud83d`, `\"`, ...). */
  escapes?: boolean;
  /** Add lone high and low surrogates (text that is not well-formed UTF-16). */
  lone?: boolean;
}

/** Up to `maxPieces` random pieces, each from the kinds `shape` allows. */
export function randomText(r: Rand, maxPieces: number, shape: TextShape = {}): string {
  const maxRun = shape.maxRun ?? 8;
  const kinds = 5 + (shape.escapes ? 1 : 0) + (shape.lone ? 1 : 0);
  let s = "";
  const n = r.int(maxPieces + 1);
  for (let i = 0; i < n; i++) {
    let kind = r.int(kinds);
    if (kind === 5 && !shape.escapes) kind = 6;
    switch (kind) {
      case 0:
        s += String.fromCharCode(r.range(0x20, 0x7e)).repeat(r.range(1, maxRun));
        break;
      case 1:
        s += r.pick(BMP);
        break;
      case 2:
        s += r.pick(EMOJI);
        break;
      case 3:
        s += String.fromCodePoint(r.range(0x10000, 0x10ffff));
        break;
      case 4:
        s += r.pick(EMOJI).repeat(r.range(1, maxRun));
        break;
      case 5:
        s += r.pick(ESCAPES);
        break;
      default: // a lone surrogate: JSON.stringify writes it as a \udxxx escape
        s += String.fromCharCode(r.chance(1, 2) ? r.range(0xd800, 0xdbff) : r.range(0xdc00, 0xdfff));
    }
  }
  return s;
}
