// Runs `scripts/start.ts` on a DATA_DIR the caller owns, so a test can SIGKILL it and start it again
// on the same storage. bench/server.ts's `startServer` makes (and on stop deletes) a DATA_DIR of its own
// and keeps the child's pid to itself, so it can do neither; its `freePort` and `waitReady` are reused.
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../../bench/server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const LISTEN_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_TAIL_CHARS = 8_000;

export interface ServerProcess {
  origin: string;
  /** The tail of what the server wrote (stdout and stderr), for failure reports. */
  output(): string;
  running(): boolean;
  /** SIGKILL to the whole process group (start.ts, workerd, anything else it started), at once. */
  kill9(): Promise<void>;
  /** SIGTERM (start.ts disposes Miniflare), then SIGKILL to whatever of the group is left. Keeps DATA_DIR. */
  stop(): Promise<void>;
}

/** Starts the server on a free loopback port with storage in `dataDir`; resolves once it listens. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  // As bench/server.ts: the same Node, no tsx wrapper process, its own process group.
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: ROOT,
    env: { ...process.env, ...env, HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  let listening = false;
  const keep = (s: string) => {
    output = (output + s).slice(-LOG_TAIL_CHARS);
  };
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    keep(s);
    if (output.includes("listening on")) listening = true;
  });
  child.stderr.setEncoding("utf8").on("data", keep);
  let running = true;
  const exited = new Promise<string>((done) => {
    child.once("exit", (code, signal) => done(String(code ?? signal ?? "unknown")));
    child.once("error", (err) => done(String(err)));
  }).then((how) => {
    running = false;
    return how;
  });
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  let stopped: Promise<void> | undefined;

  const server: ServerProcess = {
    origin: `http://127.0.0.1:${port}`,
    output: () => output,
    running: () => running,
    async kill9() {
      killGroup();
      await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
    },
    stop() {
      stopped ??= (async () => {
        if (running) {
          child.kill("SIGTERM");
          await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
        }
        killGroup();
        // start.ts bundles the Worker into .wrangler/start/<port>; that port was ours, so is the bundle.
        await rm(join(ROOT, ".wrangler", "start", String(port)), { recursive: true, force: true });
      })();
      return stopped;
    },
  };

  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  while (!listening) {
    if (!running || Date.now() > deadline) {
      await server.stop();
      throw new Error(`server did not start listening (exit: ${running ? "none" : await exited}):\n${output}`);
    }
    await sleep(50);
  }
  return server;
}
