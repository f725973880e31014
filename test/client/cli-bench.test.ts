// syncctl bench: the closed loop and its figures (cli/commands/bench.ts) on a fake service and a fake clock.
import { describe, expect, it } from "vitest";
import { benchText, runBench, SCENARIOS } from "../../cli/commands/bench.js";
import { SyncClient } from "../../client/index.js";
import { fakeFetch, problem, type Request, type Routes, syncctl } from "./cli-harness.js";

const scenario = (name: string) => {
  const found = SCENARIOS.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no scenario ${name}`);
  return found;
};

/** A clock that moves 5 ms each time it is read: the run's length is a count of reads, not of real time. */
function steppingClock() {
  let t = 0;
  return () => {
    t += 5;
    return t;
  };
}

/** The fake routes by exact path; bench resources have run ids in them, so match on the path's shape. */
function byShape(routes: Record<string, (req: Request) => { status?: number; body?: unknown }>): typeof fetch {
  const requests: Request[] = [];
  return fakeFetch(
    new Proxy(
      {},
      {
        get: (_, key: string) => {
          const [method, path] = key.split(" ");
          const shape = (path ?? "")
            .replace(/^\/v1\/(locks|queues)\/[^/]+/, "/v1/$1/*")
            .replace(/^\/v1\/cache\/[^/]+/, "/v1/cache/*");
          return routes[`${method} ${shape}`];
        },
      },
    ) as Routes,
    requests,
  );
}

describe("runBench", () => {
  it("locks: every worker acquires then releases its own resource until the time is up", async () => {
    const seen: Request[] = [];
    const fetch = byShape({
      "POST /v1/locks/*/acquire": (req) => {
        seen.push(req);
        return { body: { resource: "r", owner: "o", mode: "exclusive", fencingToken: 1, expiresAt: 0 } };
      },
      "POST /v1/locks/*/release": (req) => {
        seen.push(req);
        return { body: { released: true } };
      },
    });
    const c = new SyncClient({ url: "http://fake", fetch, retry: { attempts: 1 } });
    const result = await runBench(scenario("locks"), c, { concurrency: 3, seconds: 1 }, steppingClock());
    const acquire = result.ops.find((o) => o.op === "acquire");
    const release = result.ops.find((o) => o.op === "release");
    expect(acquire?.count).toBeGreaterThan(10);
    expect(release?.count).toBe(acquire?.count);
    expect(result.total.count).toBe((acquire?.count ?? 0) * 2);
    expect(result.total.errors).toBe(0);
    expect(acquire?.p50Ms).toBeGreaterThanOrEqual(5);
    // Three workers, three resources, each released by the owner that acquired it.
    const resources = new Set(seen.map((r) => r.path));
    expect(resources.size).toBe(6);
    for (const r of seen) expect((r.body as { owner: string }).owner).toMatch(/^syncctl-bench-/);
    expect(benchText(result, "x")).toMatch(/acquire\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+0/);
  });

  it("counts failures per op and problem, and skips the release of a lock not granted", async () => {
    let n = 0;
    const fetch = byShape({
      "POST /v1/locks/*/acquire": () =>
        ++n % 2 === 0
          ? problem(503, "no-quorum", "electing")
          : { body: { resource: "r", owner: "o", mode: "exclusive", fencingToken: 1, expiresAt: 0 } },
      "POST /v1/locks/*/release": () => ({ body: { released: true } }),
    });
    const c = new SyncClient({ url: "http://fake", fetch, retry: { attempts: 1 } });
    const result = await runBench(scenario("locks"), c, { concurrency: 1, seconds: 1 }, steppingClock());
    const acquire = result.ops.find((o) => o.op === "acquire");
    const release = result.ops.find((o) => o.op === "release");
    expect(acquire?.errors).toBe(result.errors["acquire no-quorum"]);
    expect(acquire?.errors).toBeGreaterThan(0);
    expect(release?.count).toBe(acquire?.count);
    expect(result.total.errors).toBe(acquire?.errors);
    expect(benchText(result, "x")).toContain("acquire no-quorum:");
  });

  it("queue: acks what it received and deletes its queue afterwards", async () => {
    const paths: string[] = [];
    let queued = 0;
    const fetch = byShape({
      "POST /v1/queues/*/messages": (req) => {
        paths.push(req.path);
        queued++;
        return { body: { messages: [{ id: "m", shard: 0 }] } };
      },
      "POST /v1/queues/*/receive": () =>
        queued-- > 0
          ? { body: { messages: [{ id: "m", body: 1, receipt: "0:1:1", attempts: 1, enqueuedAt: 0 }] } }
          : { body: { messages: [] } },
      "POST /v1/queues/*/ack": (req) => ({ body: { acked: (req.body as { receipts: string[] }).receipts.length } }),
      "DELETE /v1/queues/*": (req) => {
        paths.push(`DELETE ${req.path}`);
        return { body: { deleted: true } };
      },
    });
    const c = new SyncClient({ url: "http://fake", fetch, retry: { attempts: 1 } });
    const result = await runBench(scenario("queue"), c, { concurrency: 2, seconds: 1 }, steppingClock());
    const count = (op: string) => result.ops.find((o) => o.op === op)?.count ?? 0;
    expect(count("send")).toBeGreaterThan(0);
    expect(count("ack")).toBe(count("receive"));
    const queue = paths[0]?.split("/")[3];
    expect(paths.at(-1)).toBe(`DELETE /v1/queues/${queue}`);
  });

  it("throws the first error when nothing succeeded", async () => {
    const fetch = byShape({ "POST /v1/locks/*/acquire": () => problem(403, "forbidden", "admin only") });
    const c = new SyncClient({ url: "http://fake", fetch, retry: { attempts: 1 } });
    await expect(runBench(scenario("locks"), c, { concurrency: 2, seconds: 1 }, steppingClock())).rejects.toMatchObject(
      {
        status: 403,
        detail: "admin only",
      },
    );
  });
});

describe("syncctl bench", () => {
  it("prints the figures as JSON, and exits 3 when the service cannot be reached", async () => {
    const fetch = byShape({
      "PUT /v1/cache/*": () => ({ body: { key: "k", node: "n1", state: "M" } }),
      "GET /v1/cache/*": () => ({ body: { key: "k", value: 1, node: "n1", state: "M", hit: true } }),
    });
    const ran = await syncctl(["--json", "bench", "cache", "-c", "2", "--seconds", "1"], { fetch });
    expect(ran.code).toBe(0);
    const result = JSON.parse(ran.stdout);
    expect(result).toMatchObject({ scenario: "cache", concurrency: 2, errors: {} });
    expect(result.ops.map((o: { op: string }) => o.op)).toEqual(["put", "get"]);
    expect(result.seconds).toBeGreaterThanOrEqual(1);

    const down: typeof fetch = async () => {
      throw new TypeError("fetch failed");
    };
    const failed = await syncctl(["bench", "locks", "-c", "1", "--seconds", "1"], { fetch: down });
    expect(failed.code).toBe(3);
    expect(failed.stdout).toBe("");
  });
});
