// `npm start`: bundle the Worker with wrangler, then serve it with the stable
// `miniflare` package directly. `wrangler dev` (`npm run dev`) puts a proxy in
// front of workerd that is several times slower under load.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";
import { configuredShape } from "../shared/cluster.js";
import { checkShapeFile } from "./shape-file.js";

const ROOT = resolve(import.meta.dirname, "..");
const CONFIG_PATH = join(ROOT, "wrangler.toml");

// Variables handed to the Worker as string bindings when set.
const BINDING_NAMES = [
  "API_TOKEN",
  "ADMIN_TOKEN",
  "FAULT_INJECTION",
  "RAFT_GROUPS",
  "RAFT_PEERS",
  "RAFT_TICK_MS",
  "QUEUE_SHARDS",
  "RAFT_COMPACT_EVERY",
  "CACHE_NODES",
  "CACHE_CAPACITY",
  "CACHE_LEASE_MS",
] as const;

/** Process environment first, then `.env` for anything it does not set. */
function loadSettings(): Record<string, string | undefined> {
  const envFile = join(ROOT, ".env");
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, "utf8")) : {};
  return { ...fromFile, ...process.env };
}

/** `wrangler deploy --dry-run` bundles exactly as a deploy would, without contacting Cloudflare. */
function build(outDir: string): Promise<void> {
  const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");
  const args = [wranglerBin, "deploy", "--dry-run", "--outdir", outDir, "--config", CONFIG_PATH];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    child.on("error", fail);
    child.on("exit", (code) => (code === 0 ? done() : fail(new Error(`wrangler build exited with ${code}`))));
  });
}

/** The parts of wrangler's parsed config used here (its published types lean on a package it bundles). */
interface WranglerConfig {
  main?: string;
  compatibility_date?: string;
  compatibility_flags: string[];
  vars: Record<string, unknown>;
  durable_objects: { bindings: { name: string; class_name: string }[] };
  migrations: { new_sqlite_classes?: string[] }[];
}

/** Wrangler's own parser, so wrangler.toml stays the one place the Worker is configured. */
async function readConfig() {
  const { unstable_readConfig } = await import("wrangler");
  const config: WranglerConfig = unstable_readConfig({ config: CONFIG_PATH });
  const sqliteClasses = new Set(config.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
  const durableObjects = Object.fromEntries(
    config.durable_objects.bindings.map((b) => [
      b.name,
      { className: b.class_name, useSQLite: sqliteClasses.has(b.class_name) },
    ]),
  );
  return { config, durableObjects };
}

async function main(): Promise<void> {
  const settings = loadSettings();
  const port = Number(settings.PORT ?? 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number, got ${settings.PORT}`);
  }
  const dataDir = resolve(ROOT, settings.DATA_DIR ?? ".data");
  // One bundle directory per port, so servers started side by side never rebuild each other's files.
  const outDir = join(ROOT, ".wrangler", "start", String(port));

  // Both take about two seconds on their own; overlap them.
  const [{ config, durableObjects }] = await Promise.all([readConfig(), build(outDir)]);

  const bindings: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.vars)) if (typeof value === "string") bindings[name] = value;
  for (const name of BINDING_NAMES) {
    const value = settings[name];
    if (value !== undefined && value !== "") bindings[name] = value;
  }

  // The data was created under one RAFT_GROUPS, RAFT_PEERS and QUEUE_SHARDS; never serve it under others.
  const shape = configuredShape(bindings);
  const mismatch = checkShapeFile(dataDir, shape);
  if (mismatch !== undefined) {
    console.error(mismatch);
    process.exit(2);
  }

  const mainModule = config.main ?? "index.js";
  const listenersBefore = new Set([...process.listeners("SIGINT"), ...process.listeners("SIGTERM")]);
  const mf = new Miniflare({
    // Loopback unless told otherwise (a container sets HOST=0.0.0.0).
    host: settings.HOST ?? "127.0.0.1",
    port,
    log: new Log(LogLevel.INFO),
    // A log line per request would dominate load tests.
    logRequests: false,
    // No network here: use the placeholder `request.cf` instead of fetching one.
    cf: false,
    telemetry: { enabled: false },
    // INSPECTOR_PORT=9229 lets Chrome DevTools (or a CPU profiler) attach to the Worker and its objects.
    ...(settings.INSPECTOR_PORT ? { inspectorPort: Number(settings.INSPECTOR_PORT) } : {}),
    modules: true,
    scriptPath: join(outDir, `${basename(mainModule, extname(mainModule))}.js`),
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    bindings,
    durableObjects,
    // Durable Object storage (and any KV, cache, D1 added later) lives under DATA_DIR/<plugin>,
    // e.g. DATA_DIR/do, so it survives restarts.
    defaultPersistRoot: dataDir,
  });

  // Miniflare's own SIGINT/SIGTERM hooks SIGKILL workerd and exit at once; swap them for an awaited dispose().
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    await mf.dispose();
    process.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const listener of process.listeners(signal)) {
      if (!listenersBefore.has(listener)) process.removeListener(signal, listener);
    }
    process.on(signal, stop);
  }

  const url = await mf.ready;
  console.log(`listening on ${url.origin} (data in ${dataDir})`);
  console.log(
    `cluster: ${shape.groups} Raft groups x ${shape.peers} peers, each peer a Durable Object (g<group>-p<peer>); ` +
      `${shape.queueShards} shards per queue`,
  );
  // Wake the peers now, so the groups elect leaders before the first request.
  fetch(new URL("/readyz", url)).catch(() => undefined);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
