// The published shape: `npm run build:client`, then a Node program imports `raft-locks/client`
// (the package's self-reference through "exports"), and a TypeScript one type-checks against its .d.ts.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

beforeAll(() => {
  execFileSync(bin("tsx"), [join(ROOT, "scripts", "build-client.ts")], { cwd: ROOT, stdio: "pipe" });
}, 60_000);

describe("raft-locks/client", () => {
  it("imports in plain Node and works on a given fetch", () => {
    const program = `
      import { SyncClient, LockConflictError, SyncError } from "raft-locks/client";
      const fetch = async () => new Response(JSON.stringify({ type: "/problems/lock-conflict", status: 409,
        holders: [{ owner: "a", mode: "exclusive", expiresAt: 1 }], waitedMs: 5 }), { status: 409 });
      const client = new SyncClient({ url: "http://svc", fetch });
      const err = await client.locks.acquire("r", { owner: "o" }).catch((e) => e);
      console.log(JSON.stringify({ sync: typeof SyncClient, conflict: err instanceof LockConflictError,
        base: err instanceof SyncError, holders: err.holders.length, waitedMs: err.waitedMs }));
    `;
    // npm scripts run on Node 22 (the `node` devDependency); the machine's own Node (20 here) is what
    // a user of the package may have, and the package promises Node >= 20.
    const nodes = [...new Set([process.execPath, "/usr/bin/node"].filter((n) => existsSync(n)))];
    for (const node of nodes) {
      const out = execFileSync(node, ["--input-type=module", "-e", program], { cwd: ROOT, encoding: "utf8" });
      expect(JSON.parse(out), node).toEqual({ sync: "function", conflict: true, base: true, holders: 1, waitedMs: 5 });
    }
  });

  it("is one file with no imports (zod is for types only) and no Node built-ins", () => {
    const js = readFileSync(join(ROOT, "dist", "client", "index.js"), "utf8");
    expect(js).not.toMatch(/^\s*import\s/m);
    expect(js).not.toMatch(/\bfrom\s*["']/);
    expect(js).not.toMatch(/node:|\bprocess\.|\bBuffer\b/);
  });

  it("type-checks a consumer against the published declarations", () => {
    // Under dist/ (ignored by git and the root typecheck): the package's own package.json is the nearest.
    const dir = join(ROOT, "dist", "client-consumer");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "consumer.ts"),
      `import { SyncClient, type Grant, type Message, DeadlockError } from "raft-locks/client";
       const client = new SyncClient({ url: "http://svc" });
       export async function f(): Promise<number> {
         const g: Grant = await client.locks.acquire("r", { owner: "o", mode: "shared", waitMs: 10 });
         const ms: Message[] = await client.queues.receive("q", { max: 2 });
         const e = new DeadlockError(409, { cycle: ["a"] });
         return g.fencingToken + ms.length + e.cycle.length;
       }
       // @ts-expect-error: an unknown mode is refused
       client.locks.acquire("r", { owner: "o", mode: "upgrade" });
       // @ts-expect-error: the owner is required
       client.locks.acquire("r", {});
      `,
    );
    // As a browser or Worker project would: no Node types; resolution through "exports".
    const compilerOptions = {
      noEmit: true,
      strict: true,
      module: "nodenext",
      target: "es2022",
      lib: ["es2022", "dom"],
    };
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { ...compilerOptions, types: [] }, files: ["consumer.ts"] }),
    );
    const args = ["-p", dir];
    try {
      execFileSync(bin("tsc"), args, { cwd: ROOT, encoding: "utf8" });
    } catch (err) {
      throw new Error(`tsc: ${(err as { stdout: string }).stdout}`);
    }
  }, 30_000);
});
