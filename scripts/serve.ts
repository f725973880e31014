// The one way this project serves its Worker outside Cloudflare: the stable `miniflare` package
// running a bundle of the Worker. `npm start` (scripts/start.ts, one process) and `npm run node`
// (scripts/node.ts, one node of a multi-process cluster) both start here. `wrangler dev` puts a
// proxy in front of workerd that is several times slower under load.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { parseEnv } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";

const ROOT = resolve(import.meta.dirname, "..");

/** Settings handed to the Worker as string bindings when set. */
export const BINDING_NAMES = [
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

export type Settings = Record<string, string | undefined>;

/** Process environment first, then `.env` (in the working directory) for anything it does not set. */
export function loadSettings(): Settings {
  const envFile = resolve(".env");
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, "utf8")) : {};
  return { ...fromFile, ...process.env };
}

/** What Miniflare needs from wrangler.toml, resolved once when the bundle is built. */
export interface BundleConfig {
  main: string;
  compatibilityDate?: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  durableObjects: Record<string, { className: string; useSQLite: boolean }>;
}

export interface Bundle {
  dir: string;
  config: BundleConfig;
}

const CONFIG_FILE = "bundle-config.json";

/** A bundle built earlier (e.g. `npm run build:node`, in the container image), if `dir` holds one. */
export function readBundle(dir: string): Bundle | undefined {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) return undefined;
  return { dir, config: JSON.parse(readFileSync(path, "utf8")) as BundleConfig };
}

/** The sources a bundle is made of: a bundle is reused while none of them changed. */
export function sourcesHash(): string {
  const hash = createHash("sha256");
  const files: string[] = ["wrangler.toml", "package-lock.json"];
  for (const dir of ["workers", "objects", "shared"]) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) files.push(relative(ROOT, join(entry.parentPath, entry.name)));
    }
  }
  for (const file of files.sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(ROOT, file)));
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * The Worker bundle for the current sources: reused from `.wrangler/bundle/<hash of sources>`
 * when built before, else built with `wrangler deploy --dry-run` (11–17 s on 2 cores). Builds run
 * in a directory of their own and are renamed into place, so processes started side by side
 * (a local cluster) never read a half-written bundle.
 */
export async function currentBundle(say: (line: string) => void): Promise<Bundle> {
  const dir = join(ROOT, ".wrangler", "bundle", sourcesHash());
  const cached = readBundle(dir);
  if (cached !== undefined) {
    say(`reusing the Worker bundle in ${relative(ROOT, dir)} (sources unchanged)`);
    return cached;
  }
  say("bundling the Worker with wrangler (sources changed since the last bundle; ~15 s)...");
  const tmp = `${dir}.tmp-${process.pid}`;
  await buildBundle(tmp);
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process finished the same bundle first
  }
  return readBundle(dir) as Bundle;
}

/** Bundles the Worker into `outDir` with wrangler (exactly as a deploy would) and records its config. */
export async function buildBundle(outDir: string): Promise<void> {
  const configPath = join(ROOT, "wrangler.toml");
  const [config] = await Promise.all([readWranglerConfig(configPath), runWrangler(outDir, configPath)]);
  writeFileSync(join(outDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}

function runWrangler(outDir: string, configPath: string): Promise<void> {
  const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");
  const args = [wranglerBin, "deploy", "--dry-run", "--outdir", outDir, "--config", configPath];
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
async function readWranglerConfig(configPath: string): Promise<BundleConfig> {
  const { unstable_readConfig } = await import("wrangler");
  const config: WranglerConfig = unstable_readConfig({ config: configPath });
  const sqliteClasses = new Set(config.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
  const main = config.main ?? "index.js";
  return {
    main: `${main.replace(/^.*\//, "").replace(/\.[^.]+$/, "")}.js`,
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    vars: Object.fromEntries(
      Object.entries(config.vars).filter((e): e is [string, string] => typeof e[1] === "string"),
    ),
    durableObjects: Object.fromEntries(
      config.durable_objects.bindings.map((b) => [
        b.name,
        { className: b.class_name, useSQLite: sqliteClasses.has(b.class_name) },
      ]),
    ),
  };
}

/**
 * The insecure local mode: with no ADMIN_TOKEN, a server listening on loopback only leaves the
 * admin routes (fault injection, membership) open, and says so. INSECURE_LOCAL=false closes them;
 * on any other address they are closed until ADMIN_TOKEN is set.
 */
export function insecureLocal(settings: Settings, host: string, say: (line: string) => void): Record<string, string> {
  if (settings.ADMIN_TOKEN) return {};
  const loopback = host === "127.0.0.1" || host === "localhost" || host === "::1";
  const open = settings.INSECURE_LOCAL !== undefined ? settings.INSECURE_LOCAL === "true" && loopback : loopback;
  say(
    open
      ? "insecure local mode: no ADMIN_TOKEN, so admin and membership routes are open to anyone who can reach this loopback port"
      : "admin and membership routes are closed: set ADMIN_TOKEN to use them",
  );
  return { INSECURE_LOCAL: open ? "true" : "false" };
}

/** PORT, checked: a port number. */
export function portSetting(settings: Settings, fallback: number): number {
  const port = Number(settings.PORT ?? fallback);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number in 0..65535, got "${settings.PORT}"`);
  }
  return port;
}

/** Resolves when `host:port` can be listened on; otherwise one line naming PORT, and exit. */
export async function ensurePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const problem = await new Promise<string | undefined>((done) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => done(err.code ?? String(err)));
    probe.listen(port, host, () => probe.close(() => done(undefined)));
  });
  if (problem === undefined) return;
  const why = problem === "EADDRINUSE" ? "is already in use (another server running?)" : `cannot be used (${problem})`;
  console.error(`PORT=${port} ${why}: set PORT to a free port, e.g. PORT=${port + 1}`);
  process.exit(2);
}

export interface ServeOptions {
  bundle: Bundle;
  bindings: Record<string, string>;
  host: string;
  port: number;
  dataDir: string;
  inspectorPort?: number;
  /** Runs on SIGINT/SIGTERM before the server stops (a node leaving its cluster). */
  beforeStop?: (signal: NodeJS.Signals) => Promise<void>;
}

/** Serves the bundle on Miniflare; resolves with the URL once it listens. Stops on SIGINT/SIGTERM. */
export async function serve(options: ServeOptions): Promise<URL> {
  const { bundle } = options;
  const listenersBefore = new Set([...process.listeners("SIGINT"), ...process.listeners("SIGTERM")]);
  const mf = new Miniflare({
    host: options.host,
    port: options.port,
    log: new Log(LogLevel.INFO),
    // A log line per request would dominate load tests.
    logRequests: false,
    // No network here: use the placeholder `request.cf` instead of fetching one.
    cf: false,
    telemetry: { enabled: false },
    // INSPECTOR_PORT=9229 lets Chrome DevTools (or a CPU profiler) attach to the Worker and its objects.
    ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
    modules: true,
    // Module names are relative to the bundle, wherever the process was started from.
    modulesRoot: bundle.dir,
    scriptPath: join(bundle.dir, bundle.config.main),
    compatibilityDate: bundle.config.compatibilityDate,
    compatibilityFlags: bundle.config.compatibilityFlags,
    bindings: { ...bundle.config.vars, ...options.bindings },
    durableObjects: bundle.config.durableObjects,
    // Durable Object storage lives under DATA_DIR/<plugin>, e.g. DATA_DIR/do, across restarts.
    defaultPersistRoot: options.dataDir,
  });

  const url = await mf.ready;
  // Miniflare's own SIGINT/SIGTERM hooks (set while it starts workerd) SIGKILL workerd and exit at
  // once; swap them for an awaited dispose(), after `beforeStop` (which may still call the Worker).
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    try {
      await options.beforeStop?.(signal);
    } catch (err) {
      console.error(`before stopping: ${String(err)}`);
    }
    await mf.dispose();
    process.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const listener of process.listeners(signal)) {
      if (!listenersBefore.has(listener)) process.removeListener(signal, listener);
    }
    process.on(signal, stop);
  }
  return url;
}

/** The bindings the settings give: wrangler.toml's vars are in the bundle; these override them. */
export function bindingsFrom(settings: Settings, names: readonly string[] = BINDING_NAMES): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = settings[name];
    if (value !== undefined && value !== "") out[name] = value;
  }
  return out;
}

export { ROOT };
