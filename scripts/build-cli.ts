// `npm run build:cli`: syncctl (cli/syncctl.ts) bundled with its dependencies (the client, commander)
// into one executable file, dist/cli/syncctl.mjs, the package's `bin`.
import { chmodSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const ROOT = resolve(import.meta.dirname, "..");
const outfile = join(ROOT, "dist", "cli", "syncctl.mjs");
await build({
  entryPoints: [join(ROOT, "cli", "syncctl.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  // package.json's engines: syncctl runs wherever the package installs.
  target: "node20",
  // commander is CommonJS and requires node:events and friends; an ESM bundle has no `require` of its own.
  banner: {
    js: '#!/usr/bin/env node\nimport { createRequire } from "node:module";\nconst require = createRequire(import.meta.url);',
  },
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
console.log(`built ${outfile} (run: node ${outfile} --help)`);
