// The Dockerfile's essentials, checked without a Docker engine: a bookworm base (workerd needs
// glibc >= 2.35), a multi-stage build, a non-root user, a health check, and the container command
// the cluster tests and docker-compose.yml rely on.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, readComposeYaml, type Service } from "./compose-file.js";

interface Instruction {
  op: string;
  args: string;
}

/** Instructions in order: comments dropped, `\` continuations joined (parser directives are comments too). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue;
    pending += line.replace(/\\\s*$/, " ");
    if (/\\\s*$/.test(line)) continue;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(pending.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    pending = "";
  }
  return out;
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));

/** Stages as lists of instructions (global ARGs before the first FROM are stage -1's). */
function stages(instructions: Instruction[]): { from: string; name?: string; body: Instruction[] }[] {
  const result: { from: string; name?: string; body: Instruction[] }[] = [];
  for (const i of instructions) {
    if (i.op === "FROM") {
      const [image, as, name] = i.args.replace(/^--platform=\S+\s+/, "").split(/\s+/);
      result.push({ from: image ?? "", name: as?.toUpperCase() === "AS" ? name : undefined, body: [] });
    } else result.at(-1)?.body.push(i);
  }
  return result;
}

/** `${NAME}` in a FROM resolved with the ARG defaults declared before the first FROM. */
function resolveFrom(image: string): string {
  const globalArgs = new Map<string, string>();
  for (const i of dockerfile) {
    if (i.op === "FROM") break;
    const m = /^(\w+)=(.*)$/.exec(i.args);
    if (i.op === "ARG" && m?.[1] !== undefined) globalArgs.set(m[1], m[2] ?? "");
  }
  return image.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? "");
}

const all = stages(dockerfile);
const final = all.at(-1);
const finalOps = (op: string) => (final?.body ?? []).filter((i) => i.op === op);

describe("Dockerfile", () => {
  it("builds in stages from node 22 on Debian bookworm (no Alpine, no bullseye)", () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const stage of all) {
      const image = stage.name !== undefined && all.some((s) => s.name === stage.from) ? null : resolveFrom(stage.from);
      if (image === null) continue;
      expect(image).toMatch(/^node:22(\.\d+)*-bookworm(-slim)?(@sha256:[0-9a-f]{64})?$/);
    }
  });

  it("builds with npm ci and npm run build:node, and ships only dist/node and miniflare", () => {
    const runs = dockerfile.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build:node\b/.test(r))).toBe(true);
    // The runtime's miniflare is the lockfile's version.
    expect(runs.some((r) => r.includes("node_modules/miniflare") && /npm install --omit=dev/.test(r))).toBe(true);
    // ... with the project's overrides (they pin workerd and sharp), or npm resolves other versions.
    expect(runs.some((r) => r.includes("node_modules/miniflare") && r.includes("root.overrides"))).toBe(true);
    const copies = finalOps("COPY").map((i) => i.args);
    expect(copies.some((c) => /--from=\w+\s+\S*dist\/node\s/.test(c))).toBe(true);
    expect(copies.some((c) => /^\.\s/.test(c) || /^\S+\s+\.\s*$/.test(c.replace(/--\S+\s+/g, "")))).toBe(false);
    expect(finalOps("RUN").some((i) => /\bnpm (ci|run)\b/.test(i.args))).toBe(false);
  });

  it("runs as a non-root user", () => {
    const user = finalOps("USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:.*)?$/);
  });

  it("listens on 0.0.0.0:8787, stops with SIGTERM, and checks /healthz with node (no curl)", () => {
    expect(finalOps("ENV").some((i) => /\bHOST=0\.0\.0\.0\b/.test(i.args))).toBe(true);
    expect(finalOps("EXPOSE").map((i) => i.args)).toContain("8787");
    expect(finalOps("STOPSIGNAL").map((i) => i.args)).toEqual(["SIGTERM"]);
    const health = finalOps("HEALTHCHECK").at(-1)?.args ?? "";
    expect(health).toMatch(/CMD\s+\["node",\s*"-e"/);
    expect(health).toContain("/healthz");
    expect(health).toContain("process.env.PORT");
    expect(health).not.toMatch(/curl|wget/);
  });

  it("its command is `node dist/node/node.mjs`, the command compose and the cluster tests use", () => {
    const cmd = finalOps("CMD").at(-1)?.args ?? "";
    expect(JSON.parse(cmd)).toEqual(["node", "dist/node/node.mjs"]);
    expect(finalOps("ENTRYPOINT")).toEqual([]);
    // The compose health check is the image's.
    const node1 = (readComposeYaml().services as Record<string, Service>).node1;
    const composeProbe = ((node1?.healthcheck?.test ?? []) as string[]).at(-1);
    expect(finalOps("HEALTHCHECK").at(-1)?.args).toContain(JSON.stringify(composeProbe));
  });

  // Node mode (scripts/node.ts) adds the script; until it lands the image cannot be built, and this is skipped.
  const scripts = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> })
    .scripts;
  it.skipIf(scripts["build:node"] === undefined)("package.json has the build:node script the image runs", () => {
    expect(scripts["build:node"]).toMatch(/\S/);
  });
});

describe(".dockerignore", () => {
  it("keeps installs, data, build output, secrets and git history out of the build context", () => {
    const lines = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const entry of ["node_modules", ".data", ".wrangler", "dist", ".git", ".env"]) {
      expect(lines, entry).toContain(entry);
    }
    // The build needs these.
    for (const needed of ["package.json", "package-lock.json", "wrangler.toml", "scripts", "workers"]) {
      expect(lines, needed).not.toContain(needed);
    }
  });
});
