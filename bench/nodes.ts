// A multi-process cluster for the cluster tests and the benchmarks: each node is started with
// exactly the container image's command, `node dist/node/node.mjs` (scripts/node.ts built by
// `npm run build:node`, rebuilt here when the sources changed), on a free loopback port, with
// its data in a directory of its own that survives kill -9 and restart.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sourcesHash } from "../scripts/serve.js";
import { freePort } from "./server.js";

const ROOT = resolve(import.meta.dirname, "..");
const NODE_MJS = join(ROOT, "dist", "node", "node.mjs");
const LISTEN_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const LOG_TAIL_CHARS = 20_000;

/** Builds dist/node unless it was built from the current sources. */
export function ensureNodeBuild(): void {
  const stamp = join(ROOT, "dist", "node", "sources-hash");
  if (existsSync(NODE_MJS) && existsSync(stamp) && readFileSync(stamp, "utf8") === sourcesHash()) return;
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-node.ts"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run build:node failed");
}

export interface NodeProcess {
  id: string;
  port: number;
  origin: string;
  dataDir: string;
  env: Record<string, string>;
  running(): boolean;
  /** The tail of the node's output (stdout and stderr together). */
  output(): string;
}

export class LocalCluster {
  readonly nodes = new Map<string, NodeProcess & { child: ChildProcess }>();
  private constructor(
    readonly root: string,
    readonly secret: string,
    private readonly env: Record<string, string>,
  ) {}

  /**
   * Starts `count` genesis nodes p1..pN; resolves once every one listens (not yet ready: see waitReady).
   * `nodeEnv`: settings of one node (e.g. its own INSPECTOR_PORT), on top of `env`.
   */
  static async start(
    count: number,
    env: Record<string, string> = {},
    nodeEnv: (id: string) => Record<string, string> = () => ({}),
  ): Promise<LocalCluster> {
    ensureNodeBuild();
    const root = await mkdtemp(join(tmpdir(), "raft-locks-cluster-"));
    const cluster = new LocalCluster(root, "cluster-test-secret-0123456789", env);
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
    const peers = ports.map((port, i) => `p${i + 1}=http://127.0.0.1:${port}`).join(",");
    await Promise.all(
      ports.map((port, i) => cluster.spawnNode(`p${i + 1}`, port, { PEERS: peers, ...nodeEnv(`p${i + 1}`) })),
    );
    return cluster;
  }

  origins(): string[] {
    return [...this.nodes.values()].filter((n) => n.running()).map((n) => n.origin);
  }

  node(id: string): NodeProcess {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** A new node that joins through `via` (NODE_ID given, as `npm run node` with JOIN). */
  async join(id: string, via: string, env: Record<string, string> = {}): Promise<NodeProcess> {
    return this.spawnNode(id, await freePort(), { JOIN: via, ...env });
  }

  /** A new node that is not a genesis node and waits to be added by hand (POST /v1/cluster/peers). */
  async startExtra(id: string): Promise<NodeProcess> {
    const genesis = [...this.nodes.values()].filter((n) => n.env.PEERS !== undefined);
    const peers = genesis[0]?.env.PEERS ?? "";
    return this.spawnNode(id, await freePort(), { PEERS: peers, RAFT_PEERS: String(peers.split(",").length) });
  }

  /** Sends `signal` to the node (the launcher; with SIGKILL, its whole process group) and waits for it to exit. */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const n = this.nodes.get(id);
    if (n === undefined || !n.running() || n.child.pid === undefined) return;
    const exited = new Promise((done) => n.child.once("exit", done));
    if (signal === "SIGKILL") killGroup(n.child.pid);
    else n.child.kill(signal);
    await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
    killGroup(n.child.pid);
  }

  /** Starts a stopped node again, same id, port, data and settings. */
  async restart(id: string): Promise<NodeProcess> {
    const n = this.node(id);
    if (n.running()) throw new Error(`${id} is running`);
    return this.spawnNode(id, n.port, n.env);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.keys()].map((id) => this.kill(id, "SIGKILL")));
    await rm(this.root, { recursive: true, force: true });
  }

  private async spawnNode(id: string, port: number, env: Record<string, string>): Promise<NodeProcess> {
    const dataDir = join(this.root, id);
    const child = spawn(process.execPath, [NODE_MJS], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...this.env,
        ...env,
        NODE_ID: id,
        HOST: "127.0.0.1",
        PORT: String(port),
        DATA_DIR: this.root,
        CLUSTER_SECRET: this.secret,
      },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: kill -9 takes workerd down with it, as a container's would.
      detached: true,
    });
    let out = "";
    let running = true;
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8").on("data", (s: string) => {
        out = (out + s).slice(-LOG_TAIL_CHARS);
      });
    }
    child.once("exit", () => {
      running = false;
    });
    const node = {
      id,
      port,
      origin: `http://127.0.0.1:${port}`,
      dataDir,
      env,
      child,
      running: () => running,
      output: () => out,
    };
    this.nodes.set(id, node);
    const deadline = Date.now() + LISTEN_TIMEOUT_MS;
    while (!out.includes(" listening on ")) {
      if (!running) throw new Error(`${id} exited before listening:\n${out}`);
      if (Date.now() > deadline) throw new Error(`${id} did not listen within ${LISTEN_TIMEOUT_MS} ms:\n${out}`);
      await sleep(50);
    }
    return node;
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: already gone
  }
}
