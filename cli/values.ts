// Turning command-line text into request values: integers for the `...-ms` and count flags, and JSON
// bodies and cache values that fall back to plain strings.
import { InvalidArgumentError } from "commander";

/** A request the CLI refuses before sending it (exit 64), for what commander's parsing cannot see. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Commander argument parser for a non-negative integer flag; the service checks the ranges. */
export function integer(text: string): number {
  // Number("") is 0 and Number("1e3") is 1000; only plain digits are what a user meant as a count.
  if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError("expected a non-negative integer.");
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError("too large.");
  return n;
}

/** Commander argument parser for a positive integer flag (-c, --seconds). */
export function positiveInteger(text: string): number {
  const n = integer(text);
  if (n === 0) throw new InvalidArgumentError("expected a positive integer.");
  return n;
}

/**
 * `'{"a":1}'` is the object, `42` the number, `"x"` (with quotes) the string x, and anything that is
 * not JSON (`hello`) the string as typed: a user should not have to quote a plain word twice.
 */
export function jsonOrString(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Commander collector for a repeatable option: `--body a --body b` is ["a", "b"]. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `items` in consecutive runs of at most `size` (the service takes at most 100 messages a request). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The non-empty lines of a stream of text lines (stdin), without their line endings. */
export async function nonEmptyLines(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) {
    const trimmed = line.replace(/\r$/, "");
    if (trimmed.trim() !== "") out.push(trimmed);
  }
  return out;
}

/** All of a stream of text lines as one text (a cache value from stdin), without the final line ending. */
export async function allText(lines: AsyncIterable<string>): Promise<string> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out.join("\n");
}
