/**
 * syncctl end to end: the built bundle (dist/cli/syncctl.mjs, as `npm run build:cli` makes it) run as a
 * child process against the real server (scripts/start.ts on loopback: the insecure local mode, admin
 * routes open), checking what it prints, its --json output and its exit status.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, waitReady } from "../../bench/server.js";
import { type ServerProcess, spawnServer } from "./server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = join(ROOT, "dist", "cli", "syncctl.mjs");
/** Bounds one syncctl run (its client retries for a few seconds at most). */
const RUN_TIMEOUT_MS = 30_000;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

let server: ServerProcess | undefined;
let dataDir: string | undefined;

/** Runs the bundle with SYNC_URL pointing at the server; `stdin` lines are written and closed. */
function syncctl(args: string[], options: { stdin?: string[]; direct?: boolean; env?: Record<string, string> } = {}) {
  return new Promise<Ran>((done, fail) => {
    // `direct`: exec the file itself, through its shebang and executable bit, as an installed bin runs.
    const [command, argv] = options.direct ? [BIN, args] : [process.execPath, [BIN, ...args]];
    const child = spawn(command, argv, {
      env: { ...process.env, SYNC_URL: server?.origin ?? "", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: RUN_TIMEOUT_MS,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      stderr += s;
    });
    child.once("error", fail);
    child.once("close", (code) => done({ code, stdout, stderr }));
    child.stdin.end(options.stdin === undefined ? "" : `${options.stdin.join("\n")}\n`);
  });
}

/** Runs a --json command that must succeed, and answers its parsed stdout. */
async function json<T = Record<string, unknown>>(args: string[], stdin?: string[]): Promise<T> {
  const ran = await syncctl(["--json", ...args], { stdin });
  expect(ran, `syncctl ${args.join(" ")}`).toMatchObject({ code: 0, stderr: "" });
  return JSON.parse(ran.stdout) as T;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "raft-locks-syncctl-"));
  const build = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-cli.ts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (build.status !== 0) throw new Error(`npm run build:cli failed:\n${build.stdout}${build.stderr}`);
  server = await spawnServer(dataDir, { FAULT_INJECTION: "true" });
  await waitReady(server.origin);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 30_000);

describe("syncctl against npm start", () => {
  it("locks: acquire, get, conflict (2), not-holder (2), release, a 400 (64)", async () => {
    const grant = await json<{ fencingToken: number; owner: string; expiresAt: number }>([
      "lock",
      "acquire",
      "cli/a",
      "--owner",
      "o1",
      "--ttl-ms",
      "60000",
    ]);
    expect(grant.owner).toBe("o1");
    expect(grant.fencingToken).toBeGreaterThan(0);

    // The installed form: the file run through its shebang.
    const view = await syncctl(["lock", "get", "cli/a"], { direct: true });
    expect(view.code).toBe(0);
    expect(view.stdout).toMatch(/mode\s+exclusive/);
    expect(view.stdout).toMatch(/o1\s+exclusive\s+\d{4}-/);

    const conflict = await syncctl(["lock", "acquire", "cli/a", "--owner", "o2"]);
    expect(conflict.code).toBe(2);
    expect(conflict.stdout).toBe("");
    expect(conflict.stderr).toContain("lock-conflict");
    const conflictJson = await syncctl(["--json", "lock", "acquire", "cli/a", "--owner", "o2", "--wait-ms", "200"]);
    expect(conflictJson.code).toBe(2);
    expect(conflictJson.stdout).toBe("");
    const problem = JSON.parse(conflictJson.stderr);
    expect(problem.type).toMatch(/lock-conflict$/);
    expect(problem.holders.map((h: { owner: string }) => h.owner)).toEqual(["o1"]);
    expect(problem.waitedMs).toBeGreaterThanOrEqual(200);

    const notHolder = await syncctl(["lock", "release", "cli/a", "--owner", "o2"]);
    expect(notHolder.code).toBe(2);
    expect(notHolder.stderr).toContain("not-holder");

    const listed = await json<{ locks: Array<{ resource: string }> }>(["lock", "list", "--prefix", "cli/"]);
    expect(listed.locks.map((l) => l.resource)).toEqual(["cli/a"]);

    const released = await syncctl(["lock", "release", "cli/a", "--owner", "o1"]);
    expect(released).toMatchObject({ code: 0, stdout: "released cli/a (o1)\n" });
    expect(await json(["lock", "get", "cli/a"])).toMatchObject({ mode: null, holders: [] });

    // Granted again after the release, with a larger fencing token.
    const again = await json<{ fencingToken: number }>(["lock", "acquire", "cli/a", "--owner", "o2"]);
    expect(again.fencingToken).toBeGreaterThan(grant.fencingToken);

    const invalid = await syncctl(["lock", "acquire", "bad name!", "--owner", "o1"]);
    expect(invalid.code).toBe(64);
    expect(invalid.stderr).toContain("400");
  });

  it("queues: send from stdin, receive, ack, nack into the dead-letter queue, stats, redrive", async () => {
    const q = "cli-jobs";
    expect(await json(["queue", "config", q, "--max-attempts", "1"])).toMatchObject({ maxAttempts: 1 });
    const sent = await json<{ messages: Array<{ id: string }> }>(["queue", "send", q, "-"], ['{"n":1}', "two", "3"]);
    expect(sent.messages).toHaveLength(3);

    type Received = { messages: Array<{ id: string; body: unknown; receipt: string }> };
    const received: Received["messages"] = [];
    for (let i = 0; i < 10 && received.length < 3; i++) {
      received.push(...(await json<Received>(["queue", "receive", q, "--max", "10", "--wait-ms", "500"])).messages);
    }
    expect(received.map((m) => m.body).sort()).toEqual([3, { n: 1 }, "two"].sort());
    expect(new Set(received.map((m) => m.id))).toEqual(new Set(sent.messages.map((m) => m.id)));

    const [first, second, third] = received.map((m) => m.receipt);
    const acked = await syncctl(["queue", "ack", q, first as string, "-"], { stdin: [second as string] });
    expect(acked).toMatchObject({ code: 0, stdout: "acked 2 of 2\n" });
    // Acked already: stale, counted as not acked, still exit 0.
    const stale = await syncctl(["queue", "ack", q, first as string]);
    expect(stale.code).toBe(0);
    expect(stale.stdout).toMatch(/^acked 0 of 1/);

    // maxAttempts 1: the nacked message is dead-lettered by the next receive that would deliver it again.
    expect(await json(["queue", "nack", q, third as string])).toEqual({ released: 1 });
    let stats = await json<{ visible: number; inflight: number; dlq: number }>(["queue", "stats", q]);
    for (let i = 0; i < 10 && stats.dlq === 0; i++) {
      expect((await json<Received>(["queue", "receive", q, "--max", "10"])).messages).toEqual([]);
      stats = await json(["queue", "stats", q]);
    }
    expect(stats).toMatchObject({ visible: 0, inflight: 0, dlq: 1 });
    const human = await syncctl(["queue", "stats", q]);
    expect(human.stdout).toMatch(/dlq\s+1/);

    expect(await json(["queue", "redrive", q])).toEqual({ moved: 1 });
    expect(await json(["queue", "stats", q])).toMatchObject({ visible: 1, dlq: 0 });
    const peeked = await syncctl(["queue", "peek", q]);
    expect(peeked.stdout).toContain(received[2]?.id as string);
    const queues = await json<{ queues: Array<{ queue: string }> }>(["queue", "list"]);
    expect(queues.queues.map((x) => x.queue)).toContain(q);
    expect(await json(["queue", "purge", q])).toEqual({ purged: 1 });
  });

  it("cache: put (JSON or string), get, del, then get is 4; node", async () => {
    expect(await json(["cache", "put", "cli:k", '{"a":1}'])).toMatchObject({ key: "cli:k", state: "M" });
    expect(await json(["cache", "get", "cli:k"])).toMatchObject({ key: "cli:k", value: { a: 1 } });
    await json(["cache", "put", "cli:s", "plain words"]);
    const plain = await syncctl(["cache", "get", "cli:s"]);
    expect(plain.stdout).toMatch(/value\s+plain words/);

    expect(await json(["cache", "del", "cli:k"])).toEqual({ deleted: true });
    const gone = await syncctl(["--json", "cache", "get", "cli:k"]);
    expect(gone.code).toBe(4);
    expect(gone.stdout).toBe("");
    expect(JSON.parse(gone.stderr)).toMatchObject({ status: 404 });

    const node = await json<{ node: string; capacity: number; stats: { hits: number } }>(["cache", "node", "n1"]);
    expect(node.node).toBe("n1");
    expect(node.capacity).toBeGreaterThan(0);
    const unknown = await syncctl(["cache", "node", "n999"]);
    expect(unknown.code).toBe(4);
  });

  it("cluster status, as a table and as JSON", async () => {
    const status = await json<{ groups: Array<{ group: string; leader: string | null }> }>(["cluster", "status"]);
    expect(status.groups.length).toBeGreaterThan(0);
    for (const g of status.groups) expect(g.leader).toMatch(/^p\d+$/);
    const table = await syncctl(["cluster", "status"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^GROUP\s+LEADER\s+TERM/);
    expect(table.stdout).toContain("leader");
  });

  it("bench locks for a second prints ops/s and percentiles", async () => {
    const result = await json<{
      ops: Array<{ op: string; count: number; p50Ms: number; p99Ms: number }>;
      total: { count: number; perSecond: number; errors: number };
    }>(["bench", "locks", "-c", "2", "--seconds", "1"]);
    expect(result.ops.map((o) => o.op)).toEqual(["acquire", "release"]);
    expect(result.total.count).toBeGreaterThan(0);
    expect(result.total.errors).toBe(0);
    for (const op of result.ops) expect(op.p99Ms).toBeGreaterThanOrEqual(op.p50Ms);
    // It released what it acquired.
    expect((await json<{ locks: unknown[] }>(["lock", "list", "--prefix", "syncctl-bench/"])).locks).toEqual([]);

    const human = await syncctl(["bench", "cache", "-c", "1", "--seconds", "1"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/OP\s+COUNT\s+OPS\/S\s+P50-MS\s+P99-MS\s+ERRORS/);
  });

  it("no service at the URL is 3; a wrong flag is 64", async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const down = await syncctl(["--json", "cluster", "status"], { env: { SYNC_URL: nowhere } });
    expect(down.code).toBe(3);
    expect(down.stdout).toBe("");
    expect(JSON.parse(down.stderr)).toMatchObject({ type: "network" });
    const usage = await syncctl(["lock", "acquire", "x", "--owner", "o", "--ttl", "5"]);
    expect(usage.code).toBe(64);
    expect(usage.stderr).toContain("unknown option '--ttl'");
  });
});
