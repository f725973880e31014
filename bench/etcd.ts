// The comparison row of `npm run bench -- all`: a 3-member etcd (Debian's etcd-server, 3.4) on
// loopback, in a temp dir, and lock acquire+release through its v3 JSON gateway with the same client.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { Scenario } from "./load.js";
import { RESOURCES_PER_WORKER } from "./locks.js";
import { freePort } from "./server.js";

export const ETCD_BIN = process.env.ETCD_BIN ?? "/usr/bin/etcd";
const READY_TIMEOUT_MS = 30_000;
/** A worker's lease outlives any run; the members are removed at the end anyway. */
const LEASE_TTL_S = 600;

export interface Etcd {
  origins: string[];
  version: string;
  stop(): Promise<void>;
}

/** undefined when there is no etcd binary (the caller says so and skips the row). */
export function etcdVersion(): string | undefined {
  if (!existsSync(ETCD_BIN)) return undefined;
  const r = spawnSync(ETCD_BIN, ["--version"], { encoding: "utf8" });
  return /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? "unknown";
}

/** Starts `members` etcd members on loopback with their data in one temp dir; resolves when /health says true. */
export async function startEtcd(members = 3): Promise<Etcd> {
  const version = etcdVersion();
  if (version === undefined) throw new Error(`no etcd at ${ETCD_BIN}`);
  const dir = await mkdtemp(join(tmpdir(), "raft-locks-etcd-"));
  const client = await Promise.all(Array.from({ length: members }, () => freePort()));
  const peer = await Promise.all(Array.from({ length: members }, () => freePort()));
  const url = (port: number) => `http://127.0.0.1:${port}`;
  const initial = peer.map((p, i) => `m${i + 1}=${url(p)}`).join(",");
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const stop = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null ? new Promise((done) => c.once("exit", done)) : undefined,
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < members; i++) {
    const name = `m${i + 1}`;
    const child = spawn(
      ETCD_BIN,
      [
        ...["--name", name, "--data-dir", join(dir, name)],
        ...["--listen-client-urls", url(client[i] as number), "--advertise-client-urls", url(client[i] as number)],
        ...["--listen-peer-urls", url(peer[i] as number), "--initial-advertise-peer-urls", url(peer[i] as number)],
        ...["--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "bench"],
        ...["--log-level", "error", "--logger", "zap"],
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let log = "";
    child.stderr?.setEncoding("utf8").on("data", (s: string) => {
      log = (log + s).slice(-4000);
      logs[i] = log;
    });
    children.push(child);
  }
  const origins = client.map(url);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (const origin of origins) {
    for (;;) {
      try {
        const res = await request(`${origin}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
        const body = (await res.body.json()) as { health?: unknown };
        if (body.health === "true" || body.health === true) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`etcd ${origin} not healthy within ${READY_TIMEOUT_MS} ms:\n${logs.join("\n")}`);
      }
      await sleep(200);
    }
  }
  return { origins, version, stop };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

/**
 * The locks scenario's workload on etcd: each worker holds one lease (its owner), and acquires then
 * releases bench-<worker>-<i % 50> (v3 concurrency API: /v3/lock/lock with the lease, /v3/lock/unlock
 * with the key it answered). The lease grant is made once per worker, before its first timed op.
 */
export function etcdLocks(): Scenario {
  const leases = new Map<number, Promise<string>>();
  return {
    name: "etcd-locks",
    describe: `etcd v3 JSON gateway: lock bench-<worker>-<i % ${RESOURCES_PER_WORKER}> with the worker's lease, then unlock; each call is one op`,
    iteration: (client) => async (worker, i, timed) => {
      let lease = leases.get(worker);
      if (lease === undefined) {
        lease = client.call("POST", "/v3/lease/grant", { TTL: LEASE_TTL_S }, true).then((r) => {
          const id = (r.json as { ID?: unknown } | undefined)?.ID;
          if (typeof id !== "string") throw new Error(`lease grant: ${r.outcome} ${r.body ?? JSON.stringify(r.json)}`);
          return id;
        });
        leases.set(worker, lease);
      }
      const name = b64(`bench-${worker}-${i % RESOURCES_PER_WORKER}`);
      const acquired = await timed("acquire", async () =>
        client.call("POST", "/v3/lock/lock", { name, lease: await lease }, true),
      );
      const key = (acquired?.json as { key?: unknown } | undefined)?.key;
      if (acquired?.status !== 200 || typeof key !== "string") return;
      await timed("release", () => client.call("POST", "/v3/lock/unlock", { key }, true));
    },
  };
}
