// docker-compose.yml checked without a Docker engine: against the Compose Specification JSON schema
// (deploy/compose-spec.json, vendored) and against what this cluster needs of it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  durationSeconds,
  environmentOf,
  InterpolationError,
  interpolate,
  interpolateAll,
  mountsOf,
  parseComposeYaml,
  publishedPorts,
  ROOT,
  readComposeYaml,
  type Service,
  variablesIn,
} from "./compose-file.js";

const IMAGE_CMD = "node dist/node/node.mjs";
const CONTAINER_PORT = "8787";

function compileSchema() {
  const schema = JSON.parse(readFileSync(join(ROOT, "deploy/compose-spec.json"), "utf8")) as Record<string, unknown>;
  // The file names draft-07 by an https URL Ajv does not know; its keywords are draft-07's (plus
  // `deprecated`, an annotation, hence strict: false).
  delete schema.$schema;
  const ajv = new Ajv({ strict: false, allErrors: true });
  return ajv.compile(schema);
}
const validate = compileSchema();

function schemaErrors(data: unknown): string[] {
  return validate(data) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
}

/** A complete environment, as a user's .env would give: CLUSTER_SECRET set, the rest defaults. */
const ENV = { CLUSTER_SECRET: "test-secret" };
const raw = readComposeYaml();
const config = interpolateAll(raw, ENV) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = config.services;
const nodeServices = Object.entries(services).filter(([, s]) => s.build !== undefined);
const genesis = nodeServices.filter(([, s]) => environmentOf(s).NODE_ID !== undefined);
const joiners = nodeServices.filter(([, s]) => environmentOf(s).JOIN !== undefined);

/** PEERS=`p1=http://node1:8787,...` as [id, url] pairs. */
function peersOf(env: Record<string, string>): [string, URL][] {
  return (env.PEERS ?? "")
    .split(",")
    .filter((p) => p.trim() !== "")
    .map((p) => {
      const [id, url] = p.split("=");
      return [id?.trim() ?? "", new URL(url?.trim() ?? "")];
    });
}

/** The command a service runs (its own, or the image's CMD), as one string. */
function commandOf(s: Service): string {
  if (s.command === undefined) return IMAGE_CMD;
  return Array.isArray(s.command) ? s.command.join(" ") : s.command;
}

describe("docker-compose.yml against the Compose Specification schema", () => {
  it("is valid as written (variables unresolved) and after interpolation", () => {
    expect(schemaErrors(raw)).toEqual([]);
    expect(schemaErrors(config)).toEqual([]);
  });

  it("the validator rejects what Compose rejects", () => {
    const broken = parseComposeYaml(`
services:
  a:
    image: x
    ports: { published: 1 }
    healthcheck: { test: 5, interval: 10s }
    unknown_key: true
`);
    const errors = schemaErrors(broken);
    expect(errors.join("\n")).toMatch(/ports/);
    expect(errors.join("\n")).toMatch(/additional properties/);
  });

  it("refuses to start without CLUSTER_SECRET (required variable)", () => {
    expect(() => interpolateAll(raw, {})).toThrow(InterpolationError);
    expect(() => interpolateAll(raw, { CLUSTER_SECRET: "" })).toThrow(/CLUSTER_SECRET/);
  });

  it("interpolates like Compose", () => {
    const env = { A: "a", EMPTY: "" };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's syntax, not a template
    expect(interpolate("$$HOSTNAME ${A} $A ${B:-d} ${EMPTY:-d} ${EMPTY-d} ${A:+x} ${B+x}", env)).toBe(
      "$HOSTNAME a a d d  x ",
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's syntax, not a template
    expect(() => interpolate("${B?needed}", env)).toThrow(/needed/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's syntax, not a template
    expect(interpolate("${B:-${A}}", env)).toBe("a");
  });
});

describe("docker-compose.yml: the cluster's own rules", () => {
  it("has three genesis nodes and one scalable joiner service, all from this repo's image", () => {
    expect(genesis.map(([name]) => name).sort()).toEqual(["node1", "node2", "node3"]);
    expect(joiners.map(([name]) => name)).toEqual(["node"]);
    expect(nodeServices.length).toBe(genesis.length + joiners.length);
    const images = new Set(nodeServices.map(([, s]) => s.image));
    expect(images.size).toBe(1);
  });

  it("every node: healthcheck on /healthz, CLUSTER_SECRET, 0.0.0.0, init, a private network, time to leave", () => {
    for (const [name, s] of nodeServices) {
      const env = environmentOf(s);
      expect(env.CLUSTER_SECRET, name).toBe(ENV.CLUSTER_SECRET);
      expect(env.HOST, name).toBe("0.0.0.0");
      expect(env.PORT, name).toBe(CONTAINER_PORT);
      const test = s.healthcheck?.test;
      expect(Array.isArray(test) && test[0] === "CMD" && test.join(" ").includes("/healthz"), name).toBe(true);
      expect(s.healthcheck?.disable, name).not.toBe(true);
      expect(s.init, name).toBe(true);
      expect(s.networks, name).toEqual(["cluster"]);
      expect(durationSeconds(s.stop_grace_period ?? "10s"), name).toBeGreaterThanOrEqual(30);
      expect(s.stop_signal ?? "SIGTERM", name).toBe("SIGTERM");
      expect(s.profiles, `${name} must start without a profile`).toBeUndefined();
      expect(commandOf(s).endsWith(IMAGE_CMD), name).toBe(true);
    }
    // The raw file requires the secret (`:?`) rather than defaulting it.
    const rawEnv = environmentOf((raw.services as Record<string, Service>).node1 as Service);
    expect(rawEnv.CLUSTER_SECRET).toMatch(/^\$\{CLUSTER_SECRET:\?/);
  });

  it("every node keeps its data on a named volume, no two nodes in the same directory", () => {
    const declared = Object.keys(config.volumes ?? {});
    const dataDirs = new Set<string>();
    for (const [name, s] of nodeServices) {
      const env = environmentOf(s);
      // A node keeps its data in DATA_DIR/<its id> (scripts/node.ts); a replica's id comes from its hostname.
      const dataDir = env.DATA_DIR;
      expect(dataDir, name).toBeDefined();
      const mount = mountsOf(s).find((m) => dataDir === m.target || dataDir?.startsWith(`${m.target}/`));
      expect(mount, `${name}: ${dataDir} is on no volume`).toBeDefined();
      expect(declared, name).toContain(mount?.source);
      const key = `${mount?.source}:${dataDir}/${env.NODE_ID ?? "<hostname>"}`;
      expect(dataDirs.has(key), `${name} shares ${key}`).toBe(false);
      dataDirs.add(key);
    }
    for (const [name, s] of joiners) {
      // Replicas share the volume: each must take its id, and so its directory, from its own hostname.
      expect(environmentOf(s).NODE_ID, name).toBeUndefined();
    }
  });

  it("PEERS lists exactly the genesis nodes, each by its service name, and each advertises that URL", () => {
    const ids = genesis.map(([, s]) => environmentOf(s).NODE_ID).sort();
    for (const [name, s] of nodeServices) {
      const env = environmentOf(s);
      const peers = peersOf(env);
      expect(peers.map(([id]) => id).sort(), name).toEqual(ids);
      expect(env.RAFT_PEERS, name).toBe(String(peers.length));
      for (const [id, url] of peers) {
        const [service, target] = genesis.find(([, g]) => environmentOf(g).NODE_ID === id) ?? [];
        expect(service, `${id} in PEERS is no service`).toBeDefined();
        expect(url.hostname).toBe(service);
        expect(url.port).toBe(environmentOf(target as Service).PORT);
        expect(environmentOf(target as Service).ADVERTISE_URL).toBe(url.origin);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("the shape settings are the same on every node", () => {
    const shape = (s: Service) => {
      const env = environmentOf(s);
      return ["RAFT_GROUPS", "RAFT_PEERS", "QUEUE_SHARDS", "RAFT_TICK_MS", "CACHE_NODES"].map((k) => env[k]);
    };
    const [first, ...rest] = nodeServices.map(([, s]) => shape(s));
    for (const other of rest) expect(other).toEqual(first);
  });

  it("the joiner service scales: no replicas by default, no fixed name, ports or hostname, joins a genesis node", () => {
    for (const [name, s] of joiners) {
      expect(s.deploy?.replicas, name).toBe(0);
      expect(s.container_name, name).toBeUndefined();
      expect(s.hostname, name).toBeUndefined();
      expect(publishedPorts(s), name).toEqual([]);
      const join = new URL(environmentOf(s).JOIN ?? "");
      expect(
        genesis.map(([g]) => g),
        name,
      ).toContain(join.hostname);
      expect(join.port).toBe(CONTAINER_PORT);
      const dependsOn = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      expect(dependsOn, name).toContain(join.hostname);
      expect(environmentOf(s).LEAVE_ON_STOP ?? "true", name).toBe("true");
    }
  });

  it("no two services publish the same host port, with defaults or with PUBLISH_ADDRESS=0.0.0.0", () => {
    for (const env of [ENV, { ...ENV, PUBLISH_ADDRESS: "0.0.0.0" }]) {
      const all = Object.values((interpolateAll(raw, env) as { services: Record<string, Service> }).services);
      const ports = all.flatMap((s) => publishedPorts(s).map((p) => p.split(":").pop()));
      expect(new Set(ports).size, ports.join(",")).toBe(ports.length);
    }
    expect(genesis.map(([, s]) => publishedPorts(s))).toEqual([
      ["127.0.0.1:8701"],
      ["127.0.0.1:8702"],
      ["127.0.0.1:8703"],
    ]);
  });

  it("every variable the file uses is documented in .env.example", () => {
    const example = readFileSync(join(ROOT, ".env.example"), "utf8");
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    // Values only (Compose does not interpolate keys or comments); `$${HOSTNAME}` is an escape.
    const strings: string[] = [];
    const collect = (v: unknown): void => {
      if (typeof v === "string") strings.push(v);
      else if (typeof v === "object" && v !== null) for (const x of Object.values(v)) collect(x);
    };
    collect(raw);
    const used = variablesIn(strings.join("\n"));
    expect(used).toContain("CLUSTER_SECRET");
    expect(used).not.toContain("HOSTNAME");
    expect([...used].filter((v) => !documented.has(v))).toEqual([]);
  });

  it("Prometheus (monitoring profile) scrapes every genesis node and finds the joiners by DNS", () => {
    const prometheus = services.prometheus as Service;
    expect(prometheus.profiles).toEqual(["monitoring"]);
    const configMount = mountsOf(prometheus).find((m) => m.target === "/etc/prometheus/prometheus.yml");
    expect(configMount?.source).toBe("./deploy/prometheus/prometheus.yml");
    const prom = parse(readFileSync(join(ROOT, "deploy/prometheus/prometheus.yml"), "utf8")) as {
      scrape_configs: {
        metrics_path?: string;
        static_configs?: { targets: string[] }[];
        dns_sd_configs?: { names: string[]; type?: string; port: number }[];
      }[];
    };
    const targets = prom.scrape_configs.flatMap((c) => (c.static_configs ?? []).flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(genesis.map(([name]) => `${name}:${CONTAINER_PORT}`).sort());
    const dns = prom.scrape_configs.flatMap((c) => c.dns_sd_configs ?? []);
    expect(dns.flatMap((d) => d.names)).toEqual(joiners.map(([name]) => name));
    for (const d of dns) expect(String(d.port)).toBe(CONTAINER_PORT);
    for (const c of prom.scrape_configs) expect(c.metrics_path ?? "/metrics").toBe("/metrics");
  });

  it("Grafana (monitoring profile) mounts provisioning that exists", () => {
    const grafana = services.grafana as Service;
    expect(grafana.profiles).toEqual(["monitoring"]);
    for (const m of mountsOf(grafana)) {
      if (m.source?.startsWith("./")) expect(existsSync(join(ROOT, m.source)), m.source).toBe(true);
    }
    const dashboard = JSON.parse(readFileSync(join(ROOT, "deploy/grafana/dashboards/raft-locks.json"), "utf8")) as {
      uid: string;
      panels: { targets: { expr: string }[] }[];
    };
    expect(dashboard.uid).toBe("raft-locks");
    expect(dashboard.panels.length).toBeGreaterThan(0);
  });

  it("every named volume a service mounts is declared", () => {
    const declared = new Set(Object.keys(config.volumes ?? {}));
    for (const [name, s] of Object.entries(services)) {
      for (const m of mountsOf(s)) {
        if (m.source === undefined || m.source.startsWith(".") || m.source.startsWith("/")) continue;
        expect(declared.has(m.source), `${name}: ${m.source}`).toBe(true);
      }
    }
  });
});
