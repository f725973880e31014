// Starts `scripts/start.ts` (the Worker on Miniflare, as `npm start` serves it) for a benchmark run:
// a free loopback port, a fresh DATA_DIR, ready once every Raft group has a leader.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";

const ROOT = resolve(import.meta.dirname, "..");
/** Bundling with wrangler plus starting workerd takes a few seconds; this only bounds a hung start. */
const LISTEN_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** Keep only the end of the server's output: that is where a failure shows. */
const LOG_TAIL_CHARS = 8_000;

export interface Server {
  origin: string;
  /** Where the server keeps its Durable Objects' storage (removed by stop()). */
  dataDir: string;
  /** The tail of what the server wrote to stderr, for failure reports. */
  stderr(): string;
  running(): boolean;
  stop(): Promise<void>;
}

/**
 * A loopback port free now, for a server started next. Picked at random below Linux's ephemeral
 * range (32768–60999), not by binding port 0: an ephemeral port handed out here is one the kernel
 * may give the very next outgoing connection (a test's client, another server's peer call), and
 * the server then fails with "address already in use" (seen in CI with several servers at once).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FIRST_PORT + Math.floor(Math.random() * (LAST_PORT - FIRST_PORT));
    // Never the same port twice from this process: callers may ask for several before starting any.
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
}

const FIRST_PORT = 20_000;
const LAST_PORT = 32_000;
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once("error", () => done(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
  });
}

/** `env` adds to (and overrides) this process's environment, e.g. RAFT_GROUPS or API_TOKEN. */
export async function startServer(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "raft-locks-bench-"));
  // `node --import tsx` runs start.ts in this one child (no tsx wrapper process that relays signals),
  // with the same Node as this process: the Node 22 that npm scripts run on.
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: ROOT,
    // HOST is pinned to loopback: load is only ever sent to this machine, whatever .env says.
    env: { ...process.env, ...env, HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so a stop that hangs can take workerd (its child) down with it,
    // and Ctrl-C in the terminal reaches only this process, which then stops the server in order.
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    stdout = (stdout + s).slice(-LOG_TAIL_CHARS);
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    stderr = (stderr + s).slice(-LOG_TAIL_CHARS);
  });
  const exited = new Promise<number | string>((done) => {
    child.once("exit", (code, signal) => done(code ?? signal ?? "unknown"));
    child.once("error", (err) => done(String(err)));
  });
  let running = true;
  void exited.then(() => {
    running = false;
  });
  let stopped: Promise<void> | undefined;

  const server: Server = {
    origin: `http://127.0.0.1:${port}`,
    dataDir,
    stderr: () => stderr,
    running: () => running,
    stop() {
      stopped ??= (async () => {
        if (running && child.pid !== undefined) {
          // start.ts answers SIGTERM with Miniflare's dispose(), which stops workerd cleanly.
          child.kill("SIGTERM");
          await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
        }
        // Whatever of its process group is still there (all of it, if the graceful stop hung).
        if (child.pid !== undefined) killGroup(child.pid);
        await rm(dataDir, { recursive: true, force: true });
        // start.ts bundles the Worker into .wrangler/start/<port>; that port was ours, so is the bundle.
        await rm(join(ROOT, ".wrangler", "start", String(port)), { recursive: true, force: true });
      })();
      return stopped;
    },
  };

  try {
    const deadline = Date.now() + LISTEN_TIMEOUT_MS;
    while (!stdout.includes("listening on")) {
      if (!running) throw new Error(`server exited (${await exited}) before listening`);
      if (Date.now() > deadline) throw new Error(`server did not print "listening on" within ${LISTEN_TIMEOUT_MS} ms`);
      await sleep(50);
    }
    return server;
  } catch (err) {
    await server.stop();
    throw Object.assign(err as Error, { serverStderr: stderr });
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * Polls GET /readyz until 200 (it answers 503 until every Raft group has elected a leader).
 * Resolves to its JSON body, e.g. `{ ready: true, groups: 4 }`.
 */
export async function waitReady(origin: string, server?: Server): Promise<Record<string, unknown>> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (server && !server.running()) throw new Error("server exited before it was ready");
    try {
      const res = await request(`${origin}/readyz`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
      const text = await res.body.text();
      if (res.statusCode === 200) return JSON.parse(text) as Record<string, unknown>;
      last = `${res.statusCode} ${text}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(200);
  }
  throw new Error(`${origin}/readyz not 200 within ${READY_TIMEOUT_MS} ms; last answer: ${last}`);
}
