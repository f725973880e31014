// `npm run build:node`: what the container image runs, in dist/node/ — the Worker bundle
// (dist/node/worker, built by wrangler exactly as a deploy would) and the node launcher
// (scripts/node.ts) compiled to dist/node/node.mjs, whose only runtime dependency is `miniflare`.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { buildBundle, ROOT, sourcesHash } from "./serve.js";

const out = join(ROOT, "dist", "node");
rmSync(out, { recursive: true, force: true });
await Promise.all([
  buildBundle(join(out, "worker")),
  build({
    entryPoints: [join(ROOT, "scripts", "node.ts")],
    outfile: join(out, "node.mjs"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // wrangler is only imported to build a bundle, which the image never does.
    external: ["miniflare", "wrangler"],
    logLevel: "warning",
  }),
]);
// Lets the cluster tests and benchmarks tell whether the build is current.
writeFileSync(join(out, "sources-hash"), sourcesHash());
console.log(`built ${out}: worker/ and node.mjs (run: node dist/node/node.mjs)`);
