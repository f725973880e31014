// `npm run build:client`: the client library as the package's "./client" export —
// dist/client/index.js (one ESM file, esbuild; no runtime dependency: zod is used for types
// only) and dist/client/index.d.ts (tsc declarations of client/ and the schemas its types come from).
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const ROOT = resolve(import.meta.dirname, "..");

const out = join(ROOT, "dist", "client");
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [join(ROOT, "client", "index.ts")],
  outfile: join(out, "index.js"),
  bundle: true,
  // Node >= 20, Workers and browsers: nothing platform-specific may be pulled in.
  platform: "neutral",
  format: "esm",
  target: "es2022",
  logLevel: "warning",
});
execFileSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(ROOT, "client", "tsconfig.json")], {
  stdio: "inherit",
});
// tsc mirrors the source tree under types/; the entry point re-exports the client's part of it.
writeFileSync(join(out, "index.d.ts"), 'export * from "./types/client/index.js";\n');
console.log(`built ${out}: index.js and index.d.ts (import from "raft-locks/client")`);
