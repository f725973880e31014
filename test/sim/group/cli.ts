/**
 * npx tsx test/sim/group/cli.ts --seeds N --from S [--bug NAME] [--ms FAULT_MS]
 * npx tsx test/sim/group/cli.ts --seed S --trace          (replays one seed, printing its trace)
 * Prints a last line `simulate-group: <seeds> seeds, <steps> steps, <violations> violations`;
 * exit 1 on any violation.
 */

import { flag as arg, intFlag as num } from "../../../scripts/args.js";
import { BUGS, type Bug } from "./peer.js";
import { simulateGroups } from "./simulator.js";

const single = num("seed");
const from = single ?? num("from") ?? 1;
const count = single !== undefined ? 1 : (num("seeds") ?? 20);
const faultMs = num("ms");
const bug = arg("bug") as Bug | undefined;
if (bug !== undefined && !BUGS.includes(bug)) throw new Error(`--bug must be one of ${BUGS.join(", ")}`);
const trace = process.argv.includes("--trace");
const lastLines = num("last") ?? 60;

let totalSteps = 0;
let violations = 0;
let failedSeeds = 0;
/** Seeds where a linearizability search gave up (locks or cache): their histories went unchecked. */
let unknownSeeds = 0;
const started = Date.now();
for (let seed = from; seed < from + count; seed++) {
  const t0 = Date.now();
  const res = await simulateGroups({ seed, faultMs, bug, trace });
  const ms = Date.now() - t0;
  totalSteps += res.steps;
  if (res.stats.linearUnknown || res.stats.cacheUnknown) unknownSeeds++;
  if (trace) for (const line of res.trace) console.log(line);
  const replay = `npx tsx test/sim/group/cli.ts --seed ${seed}${bug ? ` --bug ${bug}` : ""}${faultMs !== undefined ? ` --ms ${faultMs}` : ""} --trace`;
  if (res.violations.length > 0) {
    violations += res.violations.length;
    failedSeeds++;
    console.log(`seed ${seed}: ${res.violations.length} violation(s) (${ms} ms) ${JSON.stringify(res.stats)}`);
    for (const v of res.violations) console.log(`  ${v}`);
    if (!trace) {
      const again = await simulateGroups({ seed, faultMs, bug, trace: true });
      console.log("  last events:");
      for (const line of again.trace.slice(-lastLines)) console.log(`    ${line}`);
    }
    console.log(`  replay: ${replay}`);
  } else if (single !== undefined) {
    console.log(`seed ${seed}: ok (${ms} ms) ${JSON.stringify(res.stats)}`);
  }
}
const secs = (Date.now() - started) / 1000;
console.error(
  `(${secs.toFixed(1)} s, ${((secs * 1000) / count).toFixed(0)} ms per seed, ${((count / secs) * 60).toFixed(0)} seeds per minute, ${failedSeeds} seed(s) failed, ${unknownSeeds} with a linearizability search that gave up)`,
);
console.log(`simulate-group: ${count} seeds, ${totalSteps} steps, ${violations} violations`);
process.exit(violations > 0 ? 1 : 0);
