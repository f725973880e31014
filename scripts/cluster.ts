// `npm run cluster -- --nodes 3`: a local multi-process cluster on 127.0.0.1, one `npm run node`
// process (scripts/node.ts) per node on ports 8701.., each persisted under .data/<node>, their
// output prefixed with the node's id. Ctrl-C stops them all. Add a node later with
//   NODE_ID=p4 PORT=8704 JOIN=http://127.0.0.1:8701 CLUSTER_SECRET=<same> npm run node
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { flag, intFlag } from "./args.js";
import { currentBundle, loadSettings, ROOT } from "./serve.js";

const nodes = intFlag("nodes") ?? 3;
const basePort = intFlag("base-port") ?? 8701;
const dataRoot = flag("data") ?? ".data";
if (nodes < 1 || nodes > 9) throw new Error("--nodes must be in 1..9");

const settings = loadSettings();
const secret = settings.CLUSTER_SECRET || randomBytes(24).toString("hex");
const peers = Array.from({ length: nodes }, (_, i) => `p${i + 1}=http://127.0.0.1:${basePort + i}`).join(",");

// Bundle once here and hand it to every node: none of them builds, and all run the same code.
const bundle = await currentBundle((line) => console.log(`[cluster] ${line}`));

const children: ChildProcess[] = [];
for (let i = 0; i < nodes; i++) {
  const id = `p${i + 1}`;
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/node.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ID: id,
      PORT: String(basePort + i),
      HOST: "127.0.0.1",
      PEERS: peers,
      DATA_DIR: dataRoot,
      CLUSTER_SECRET: secret,
      BUNDLE_DIR: bundle.dir,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => console.log(`[${id}] ${line}`));
  }
  child.on("exit", (code, signal) => console.log(`[${id}] exited (${signal ?? code})`));
  children.push(child);
}
console.log(
  `[cluster] ${nodes} nodes: ${peers}\n[cluster] CLUSTER_SECRET=${settings.CLUSTER_SECRET ? "(from the environment)" : secret}`,
);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`[cluster] ${signal}: stopping every node`);
    for (const child of children) child.kill("SIGTERM");
  });
}
await Promise.all(children.map((c) => new Promise((done) => (c.exitCode !== null ? done(null) : c.on("exit", done)))));
