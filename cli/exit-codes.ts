// The exit status of every syncctl command: one number per kind of outcome, so a script can branch on
// "someone else holds it" (2) versus "the cluster is down, try later" (3) without parsing text.
import { CommanderError } from "commander";
import { NetworkError, SyncError } from "../client/index.js";
import { UsageError } from "./values.js";

export const EXIT = {
  ok: 0,
  unexpected: 1,
  conflict: 2,
  unavailable: 3,
  notFound: 4,
  denied: 5,
  usage: 64,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The table `--help` and docs/cli.md show. */
export const EXIT_CODE_MEANINGS: ReadonlyArray<readonly [ExitCode, string]> = [
  [EXIT.ok, "ok"],
  [EXIT.unexpected, "unexpected error (a bug, a 5xx other than 503/504, an answer that is not JSON)"],
  [EXIT.conflict, "conflict: lock-conflict, deadlock, not-holder, idempotency-key-reused"],
  [EXIT.unavailable, "unavailable: no-quorum (503), timeout (504), no answer (network) after retries"],
  [EXIT.notFound, "not found (404: a cache key with no value, an unknown cache node)"],
  [EXIT.denied, "unauthorized or forbidden (401, 403): check --token / SYNC_TOKEN"],
  [EXIT.usage, "usage: bad flags or arguments, or the service rejected the request (400, 413)"],
];

/** What an HTTP status of a problem answer means for the exit status. */
export function exitCodeForStatus(status: number): ExitCode {
  switch (status) {
    case 400:
    case 413:
      return EXIT.usage;
    case 401:
    case 403:
      return EXIT.denied;
    case 404:
      return EXIT.notFound;
    case 409:
    case 422:
      return EXIT.conflict;
    case 503:
    case 504:
      return EXIT.unavailable;
    default:
      return EXIT.unexpected;
  }
}

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.usage;
  // Commander's own refusals (unknown option, missing argument, bad choice). Help and --version are
  // exits with status 0 that commander reports through the same error.
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof NetworkError) return EXIT.unavailable;
  if (err instanceof SyncError) return exitCodeForStatus(err.status);
  return EXIT.unexpected;
}

export function exitCodesHelp(): string {
  const lines = EXIT_CODE_MEANINGS.map(([code, meaning]) => `  ${String(code).padStart(2)}  ${meaning}`);
  return ["Exit codes:", ...lines].join("\n");
}
