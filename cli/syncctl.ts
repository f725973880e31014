// syncctl: the command-line client. `npm run syncctl -- <command>` runs it from source;
// `npm run build:cli` bundles it to dist/cli/syncctl.mjs, the package's `bin`.
import { createInterface } from "node:readline";
import { run } from "./program.js";

// `syncctl queue list | head -1`: a reader that goes away early is not an error worth a stack trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stdinLines: () => createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY }),
  now: () => Date.now(),
});
