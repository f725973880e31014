// A file generated from the sources and committed (docs/openapi.yaml, the dashboard's bundle):
// written by its npm script, or, with `--check` (CI), compared with a fresh generation so that a
// source change without a re-run fails instead of shipping a stale file.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { relative } from "node:path";

export interface GeneratedFile {
  path: string;
  /** The npm command that writes it, e.g. `npm run openapi`. */
  command: string;
  /** What changed when it is stale, e.g. "the routes or schemas changed". */
  staleBecause: string;
}

/** Writes `text` to the file, or with `--check` in argv only compares; the process's exit code. */
export function writeOrCheck(file: GeneratedFile, text: string, argv: string[]): number {
  const shown = relative(process.cwd(), file.path) || file.path;
  if (argv.includes("--check")) {
    const current = existsSync(file.path) ? readFileSync(file.path, "utf8") : null;
    if (current === text) {
      console.log(`${shown} is current`);
      return 0;
    }
    console.error(
      current === null
        ? `${shown} is missing: run \`${file.command}\``
        : `${shown} is stale (${file.staleBecause}): run \`${file.command}\` and commit it`,
    );
    return 1;
  }
  writeFileSync(file.path, text);
  console.log(`wrote ${shown} (${Math.round(text.length / 1024)} KiB)`);
  return 0;
}
