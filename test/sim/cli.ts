/**
 * npm run simulate -- --seeds 1000 --from 1 [--nodes 5] [--steps N]
 * npm run simulate -- --seed S --trace        (replays one seed, printing its trace)
 * Prints one final line `simulate: <seeds> seeds, <steps> steps, <violations> violations`, exit 1 on any.
 */

import { flag as arg, intFlag as num } from "../../scripts/args.js";
import type { Bug } from "./node.js";
import { simulate } from "./simulator.js";

const single = num("seed");
const from = single ?? num("from") ?? 1;
const count = single !== undefined ? 1 : (num("seeds") ?? 100);
const nodes = num("nodes");
const steps = num("steps");
const bug = arg("bug") as Bug | undefined;
const trace = process.argv.includes("--trace");

let totalSteps = 0;
let violations = 0;
const started = Date.now();
for (let seed = from; seed < from + count; seed++) {
  const res = simulate({ seed, nodes, steps, bug, trace });
  totalSteps += res.steps;
  if (trace) for (const line of res.trace) console.log(line);
  if (res.violations.length > 0) {
    violations += res.violations.length;
    console.log(`seed ${seed}: ${res.violations.length} violation(s) ${JSON.stringify(res.stats)}`);
    for (const v of res.violations) console.log(`  ${v}`);
    if (!trace) {
      // Replay the same seed with tracing on to show how it got there.
      const replay = simulate({ seed, nodes, steps, bug, trace: true });
      console.log("  last events:");
      for (const line of replay.trace.slice(-40)) console.log(`    ${line}`);
    }
    console.log(
      `  replay: npm run simulate -- --seed ${seed}${nodes ? ` --nodes ${nodes}` : ""}${steps ? ` --steps ${steps}` : ""} --trace`,
    );
  } else if (single !== undefined) {
    console.log(`seed ${seed}: ok ${JSON.stringify(res.stats)}`);
  }
}
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.error(`(${secs} s)`);
console.log(`simulate: ${count} seeds, ${totalSteps} steps, ${violations} violations`);
process.exit(violations > 0 ? 1 : 0);
