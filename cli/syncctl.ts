// syncctl: the command-line client. `npm run syncctl -- <command>` runs it from source;
// `npm run build:cli` bundles it to dist/cli/syncctl.mjs, the package's `bin`.
import { createInterface } from "node:readline";
import { run } from "./program.js";

process.exitCode = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stdinLines: () => createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY }),
  now: () => Date.now(),
});
