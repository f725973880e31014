// What each syncctl command sends (through the client) and prints, against a fake service.
import { describe, expect, it } from "vitest";
import { NOW, problem, type Request, syncctl } from "./cli-harness.js";

const grant = { resource: "deploy/prod", owner: "ci", mode: "exclusive", fencingToken: 12, expiresAt: NOW + 30_000 };

describe("where and as whom", () => {
  const route = { "GET /v1/locks": { body: { locks: [], truncated: false } } };
  const origin = (r: Request[]) => r.map((x) => x.headers.get("authorization"));

  it("--url and --token win over SYNC_URL and SYNC_TOKEN, which win over the default", async () => {
    const urls: string[] = [];
    const recordingFetch: typeof fetch = async (input) => {
      urls.push(String(input));
      return Response.json({ locks: [], truncated: false });
    };
    const env = { SYNC_URL: "http://env.example:1", SYNC_TOKEN: "env-token" };
    await syncctl(["lock", "list"], { fetch: recordingFetch });
    await syncctl(["lock", "list"], { fetch: recordingFetch, env });
    await syncctl(["lock", "list", "--url", "http://flag.example:2/"], { fetch: recordingFetch, env });
    expect(urls).toEqual([
      "http://127.0.0.1:8787/v1/locks",
      "http://env.example:1/v1/locks",
      "http://flag.example:2/v1/locks",
    ]);

    const fromEnv = await syncctl(["lock", "list"], { routes: route, env });
    expect(origin(fromEnv.requests)).toEqual(["Bearer env-token"]);
    // Global flags may come after the command too.
    const fromFlag = await syncctl(["lock", "list", "--token", "flag-token"], { routes: route, env });
    expect(origin(fromFlag.requests)).toEqual(["Bearer flag-token"]);
    const none = await syncctl(["lock", "list"], { routes: route, env: { SYNC_TOKEN: "" } });
    expect(origin(none.requests)).toEqual([null]);
  });
});

describe("lock", () => {
  it("acquire sends the flags as the API's fields and prints the grant", async () => {
    const ran = await syncctl(
      ["lock", "acquire", "deploy/prod", "--owner", "ci", "--mode", "shared", "--ttl-ms", "60000", "--wait-ms", "500"],
      { routes: { "POST /v1/locks/deploy%2Fprod/acquire": { body: grant } } },
    );
    expect(ran.code).toBe(0);
    expect(ran.requests[0]?.body).toEqual({ owner: "ci", mode: "shared", ttlMs: 60000, waitMs: 500 });
    expect(ran.stdout).toBe(
      [
        "resource      deploy/prod",
        "owner         ci",
        "mode          exclusive",
        "fencingToken  12",
        "expiresAt     2026-12-04T09:00:30.000Z (in 30.0s)",
        "",
      ].join("\n"),
    );
  });

  it("acquire --json prints the grant as one line", async () => {
    const ran = await syncctl(["lock", "acquire", "deploy/prod", "--owner", "ci", "--json"], {
      routes: { "POST /v1/locks/deploy%2Fprod/acquire": { body: grant } },
    });
    expect(ran.requests[0]?.body).toEqual({ owner: "ci", mode: "exclusive" });
    expect(ran.stdout.endsWith("\n")).toBe(true);
    expect(ran.stdout.trim().split("\n")).toHaveLength(1);
    expect(JSON.parse(ran.stdout)).toEqual(grant);
  });

  it("release says whether it released or withdrew a wait; not-holder is 2", async () => {
    const released = await syncctl(["lock", "release", "a", "--owner", "ci"], {
      routes: { "POST /v1/locks/a/release": { body: { released: true } } },
    });
    expect(released.stdout).toBe("released a (ci)\n");
    expect(released.requests[0]?.body).toEqual({ owner: "ci" });
    const withdrawn = await syncctl(["lock", "release", "a", "--owner", "ci"], {
      routes: { "POST /v1/locks/a/release": { body: { released: false, withdrawn: true } } },
    });
    expect(withdrawn.stdout).toBe("withdrew ci's wait for a\n");
    const notHolder = await syncctl(["lock", "release", "a", "--owner", "ci"], {
      routes: { "POST /v1/locks/a/release": problem(409, "not-holder", "ci does not hold a") },
    });
    expect(notHolder.code).toBe(2);
  });

  it("renew sends ttlMs only when given", async () => {
    const routes = { "POST /v1/locks/a/renew": { body: { expiresAt: NOW + 5000 } } };
    const plain = await syncctl(["lock", "renew", "a", "--owner", "ci"], { routes });
    expect(plain.requests[0]?.body).toEqual({ owner: "ci" });
    expect(plain.stdout).toBe("renewed a (ci) until 2026-12-04T09:00:05.000Z (in 5.0s)\n");
    const longer = await syncctl(["lock", "renew", "a", "--owner", "ci", "--ttl-ms", "9000"], { routes });
    expect(longer.requests[0]?.body).toEqual({ owner: "ci", ttlMs: 9000 });
  });

  it("get shows holders and waiters", async () => {
    const view = {
      resource: "a",
      mode: "shared",
      holders: [
        { owner: "r1", mode: "shared", expiresAt: NOW + 1000 },
        { owner: "r2", mode: "shared", expiresAt: NOW - 2000 },
      ],
      waiters: [{ owner: "w1", mode: "exclusive" }],
    };
    const ran = await syncctl(["lock", "get", "a"], { routes: { "GET /v1/locks/a": { body: view } } });
    expect(ran.stdout).toContain("mode      shared");
    expect(ran.stdout).toMatch(/r1\s+shared\s+2026-12-04T09:00:01.000Z \(in 1.0s\)/);
    expect(ran.stdout).toContain("(2.0s ago)");
    expect(ran.stdout).toMatch(/w1\s+exclusive/);
    const free = await syncctl(["lock", "get", "b"], {
      routes: { "GET /v1/locks/b": { body: { resource: "b", mode: null, holders: [], waiters: [] } } },
    });
    expect(free.stdout).toBe("resource  b\nmode      free\n");
  });

  it("list passes --prefix and says when the listing was cut", async () => {
    const ran = await syncctl(["lock", "list", "--prefix", "deploy/"], {
      routes: {
        "GET /v1/locks": {
          body: {
            locks: [
              { resource: "deploy/a", mode: "exclusive", holders: [grant], waiters: [{ owner: "w", mode: "shared" }] },
            ],
            truncated: true,
          },
        },
      },
    });
    expect(ran.requests[0]?.query.get("prefix")).toBe("deploy/");
    expect(ran.stdout).toMatch(/deploy\/a\s+exclusive\s+ci\s+w/);
    expect(ran.stdout).toContain("truncated");
  });
});

describe("queue", () => {
  const sent = (req: Request) => ({
    body: {
      messages: (req.body as { messages: unknown[] }).messages.map((_, i) => ({ id: `m${i}`, shard: i % 2 })),
    },
  });

  it("send parses each body as JSON, falling back to the string", async () => {
    const ran = await syncctl(
      [
        "queue",
        "send",
        "jobs",
        "--body",
        '{"a":1}',
        "--body",
        "hello",
        "--body",
        "42",
        "--key",
        "k",
        "--delay-ms",
        "5",
      ],
      { routes: { "POST /v1/queues/jobs/messages": sent } },
    );
    expect(ran.code).toBe(0);
    expect(ran.requests[0]?.body).toEqual({
      messages: [
        { body: { a: 1 }, key: "k", delayMs: 5 },
        { body: "hello", key: "k", delayMs: 5 },
        { body: 42, key: "k", delayMs: 5 },
      ],
    });
    expect(ran.stdout).toMatch(/ID\s+SHARD/);
    expect(ran.stdout).toMatch(/m2\s+0/);
  });

  it("send - reads one body per stdin line, in batches of 100, skipping blank lines", async () => {
    const lines = Array.from({ length: 250 }, (_, i) => (i % 50 === 0 ? "" : JSON.stringify({ n: i })));
    const ran = await syncctl(["--json", "queue", "send", "jobs", "-"], {
      stdin: lines,
      routes: { "POST /v1/queues/jobs/messages": sent },
    });
    expect(ran.code).toBe(0);
    const batches = ran.requests.map((r) => (r.body as { messages: Array<{ body: { n: number } }> }).messages);
    expect(batches.map((b) => b.length)).toEqual([100, 100, 45]);
    expect(batches.flat().map((m) => m.body.n)).toEqual(lines.filter((l) => l !== "").map((l) => JSON.parse(l).n));
    expect(JSON.parse(ran.stdout).messages).toHaveLength(245);
  });

  it("a send that fails after some batches prints the ones sent, then fails", async () => {
    let calls = 0;
    const ran = await syncctl(["--json", "queue", "send", "jobs", "-"], {
      stdin: Array.from({ length: 150 }, (_, i) => String(i)),
      routes: {
        "POST /v1/queues/jobs/messages": (req) =>
          ++calls === 1 ? sent(req) : problem(413, "payload-too-large", "big"),
      },
    });
    expect(ran.code).toBe(64);
    expect(JSON.parse(ran.stdout).messages).toHaveLength(100);
    expect(JSON.parse(ran.stderr)).toMatchObject({ status: 413 });
  });

  it("receive prints each message's receipt, for ack", async () => {
    const ran = await syncctl(
      ["queue", "receive", "jobs", "--max", "2", "--wait-ms", "100", "--visibility-ms", "5000"],
      {
        routes: {
          "POST /v1/queues/jobs/receive": {
            body: {
              messages: [
                { id: "m1", body: { a: 1 }, receipt: "0:17:1", attempts: 1, enqueuedAt: NOW },
                { id: "m2", body: "x".repeat(100), key: "k", receipt: "1:4:2", attempts: 2, enqueuedAt: NOW },
              ],
            },
          },
        },
      },
    );
    expect(ran.requests[0]?.body).toEqual({ max: 2, waitMs: 100, visibilityMs: 5000 });
    expect(ran.stdout).toMatch(/0:17:1\s+m1\s+1\s+-\s+\{"a":1\}/);
    expect(ran.stdout).toMatch(/1:4:2\s+m2\s+2\s+k\s+x{59}…/);
    const none = await syncctl(["queue", "receive", "jobs"], {
      routes: { "POST /v1/queues/jobs/receive": { body: { messages: [] } } },
    });
    expect(none.stdout).toBe("no messages\n");
    expect(none.requests[0]?.body).toEqual({});
  });

  it("ack takes receipts from arguments and from stdin, and says how many were stale", async () => {
    const routes = { "POST /v1/queues/jobs/ack": { body: { acked: 2 } } };
    const ran = await syncctl(["queue", "ack", "jobs", "0:1:1", "-"], { stdin: ["1:2:1 ", "", "2:3:1"], routes });
    expect(ran.requests[0]?.body).toEqual({ receipts: ["0:1:1", "1:2:1", "2:3:1"] });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/^acked 2 of 3 \(the others were stale/);
    const empty = await syncctl(["queue", "ack", "jobs", "-"], { stdin: [], routes });
    expect(empty.code).toBe(64);
    expect(empty.requests).toHaveLength(0);
  });

  it("nack, config, redrive, peek, purge, list, delete, stats", async () => {
    const routes = {
      "POST /v1/queues/jobs/nack": { body: { released: 1 } },
      "POST /v1/queues/jobs/redrive": { body: { moved: 7 } },
      "POST /v1/queues/jobs/peek": {
        body: { messages: [{ id: "m1", body: [1, 2], attempts: 0, enqueuedAt: NOW - 1500 }] },
      },
      "GET /v1/queues": { body: { queues: [{ queue: "jobs", visible: 3, inflight: 1, delayed: 0, dlq: 2 }] } },
      "DELETE /v1/queues/jobs": { body: { deleted: true } },
      "PUT /v1/queues/jobs": { body: { queue: "jobs", maxAttempts: 1, visibilityMs: 30000 } },
      "GET /v1/queues/jobs": {
        body: {
          queue: "jobs",
          visible: 3,
          inflight: 1,
          delayed: 0,
          dlq: 2,
          shards: [{ shard: 0, visible: 3, inflight: 1 }],
        },
      },
    };
    const nack = await syncctl(["queue", "nack", "jobs", "0:1:1", "--delay-ms", "100"], { routes });
    expect(nack.requests[0]?.body).toEqual({ receipts: ["0:1:1"], delayMs: 100 });
    expect(nack.stdout).toBe("released 1 of 1\n");
    const config = await syncctl(["queue", "config", "jobs", "--max-attempts", "1"], { routes });
    expect(config.requests[0]).toMatchObject({ method: "PUT", body: { maxAttempts: 1 } });
    expect(config.stdout).toBe("queue         jobs\nmaxAttempts   1\nvisibilityMs  30000\n");
    const redrive = await syncctl(["queue", "redrive", "jobs", "--max", "10"], { routes });
    expect(redrive.requests[0]?.body).toEqual({ max: 10 });
    expect(redrive.stdout).toBe("moved 7 from jobs.dlq to jobs\n");
    const peek = await syncctl(["queue", "peek", "jobs"], { routes });
    expect(peek.stdout).toMatch(/m1\s+0\s+-\s+2026-12-04T08:59:58.500Z \(1.5s ago\)\s+\[1,2\]/);
    const list = await syncctl(["--json", "queue", "list"], { routes });
    expect(JSON.parse(list.stdout)).toEqual(routes["GET /v1/queues"].body);
    const del = await syncctl(["queue", "delete", "jobs"], { routes });
    expect(del.requests[0]?.method).toBe("DELETE");
    expect(del.stdout).toBe("deleted jobs\n");
    const stats = await syncctl(["queue", "stats", "jobs"], { routes });
    expect(stats.stdout).toMatch(/dlq\s+2/);
    expect(stats.stdout).toMatch(/SHARD\s+VISIBLE\s+INFLIGHT\n[- ]+\n\s*0\s+3\s+1/);
  });
});

describe("cache", () => {
  it("put parses the value as JSON, else sends the string, through --node", async () => {
    const routes = { "PUT /v1/cache/user%3A42": { body: { key: "user:42", node: "n2", state: "M" } } };
    const json = await syncctl(["cache", "put", "user:42", '{"a":1}', "--node", "n2"], { routes });
    expect(json.requests[0]?.body).toEqual({ value: { a: 1 } });
    expect(json.requests[0]?.query.get("node")).toBe("n2");
    expect(json.stdout).toBe("stored user:42 on n2 (M)\n");
    const text = await syncctl(["cache", "put", "user:42", "not json"], { routes });
    expect(text.requests[0]?.body).toEqual({ value: "not json" });
    const stdin = await syncctl(["cache", "put", "user:42", "-", "--propagation", "update"], {
      stdin: ["{", ' "b": [1,', "2] }"],
      routes,
    });
    expect(stdin.requests[0]?.body).toEqual({ value: { b: [1, 2] } });
    expect(stdin.requests[0]?.query.get("propagation")).toBe("update");
  });

  it("get prints the value; del says whether there was one; node shows the counters", async () => {
    const routes = {
      "GET /v1/cache/k": { body: { key: "k", value: { a: 1 }, node: "n1", state: "E", hit: false } },
      "DELETE /v1/cache/k": { body: { deleted: false } },
      "GET /v1/cache/nodes/n1": {
        body: {
          node: "n1",
          capacity: 1000,
          lines: [{ key: "k", state: "E" }],
          stats: { hits: 3, misses: 1, evictions: 0, invalidations: 0, writebacks: 0, updates: 0, hitRate: 0.75 },
        },
      },
    };
    const get = await syncctl(["cache", "get", "k"], { routes });
    expect(get.stdout).toMatch(/value\s+\{"a":1\}/);
    expect(get.stdout).toMatch(/hit\s+false/);
    const json = await syncctl(["--json", "cache", "get", "k"], { routes });
    expect(JSON.parse(json.stdout).value).toEqual({ a: 1 });
    const del = await syncctl(["cache", "del", "k"], { routes });
    expect(del.code).toBe(0);
    expect(del.stdout).toBe("k had no value\n");
    const node = await syncctl(["cache", "node", "n1"], { routes });
    expect(node.stdout).toMatch(/hitRate\s+75.0%/);
    expect(node.stdout).toMatch(/k\s+E/);
    const missing = await syncctl(["cache", "get", "k", "--node", "n9"], {
      routes: { "GET /v1/cache/k": problem(404, "not-found", "no node n9") },
    });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("(or there is no node n9)");
  });
});

describe("cluster", () => {
  it("status is one row per peer, the group's columns on its first row", async () => {
    const status = {
      groups: [
        {
          group: "g0",
          leader: "p1",
          term: 3,
          commitIndex: 42,
          peers: [
            { id: "p1", role: "leader", matchIndex: 42, lastContactMs: 0 },
            { id: "p2", role: "down", matchIndex: 40, lastContactMs: null },
          ],
        },
        {
          group: "g1",
          leader: null,
          term: 5,
          commitIndex: 9,
          peers: [{ id: "p1", role: "candidate", matchIndex: 9, lastContactMs: null }],
        },
      ],
    };
    const ran = await syncctl(["cluster", "status"], { routes: { "GET /v1/cluster": { body: status } } });
    const rows = ran.stdout.trim().split("\n").slice(2);
    expect(rows[0]).toMatch(/^g0\s+p1\s+3\s+42\s+p1\s+leader\s+42\s+0$/);
    expect(rows[1]).toMatch(/^\s+p2\s+down\s+40\s+-$/);
    expect(rows[2]).toMatch(/^g1\s+none\s+5\s+9\s+p1\s+candidate\s+9\s+-$/);
  });

  it("add-peer sends the id and --peer-url; remove-peer deletes", async () => {
    const routes = {
      "POST /v1/cluster/peers": { status: 202, body: { accepted: true, change: "addLearner", peer: "p4" } },
      "DELETE /v1/cluster/peers/p4": { status: 202, body: { accepted: true, change: "remove", peer: "p4" } },
    };
    const add = await syncctl(["cluster", "add-peer", "p4", "--peer-url", "http://10.0.0.4:8787"], { routes });
    expect(add.requests[0]?.body).toEqual({ id: "p4", url: "http://10.0.0.4:8787" });
    expect(add.code).toBe(0);
    const remove = await syncctl(["--json", "cluster", "remove-peer", "p4"], { routes });
    expect(JSON.parse(remove.stdout)).toEqual(routes["DELETE /v1/cluster/peers/p4"].body);
  });
});

describe("admin", () => {
  const status = {
    groups: ["g0", "g1"].map((group) => ({
      group,
      leader: "p1",
      term: 3,
      commitIndex: 9,
      peers: ["p1", "p2", "p3"].map((id) => ({
        id,
        role: id === "p1" ? "leader" : "follower",
        matchIndex: 9,
        lastContactMs: 5,
      })),
    })),
  };
  const partitioned = (req: Request) => ({ body: { partitioned: (req.body as { sides: string[][] }).sides } });

  it("partition sends the sides as typed; isolate cuts one peer off from every other member", async () => {
    const cut = await syncctl(["admin", "partition", "p1", "p2,p3"], {
      routes: { "POST /v1/admin/partition": partitioned },
    });
    expect(cut.code).toBe(0);
    expect(cut.requests[0]?.body).toEqual({ sides: [["p1"], ["p2", "p3"]] });
    expect(cut.stdout).toBe("partitioned: p1 | p2,p3\n");

    const isolated = await syncctl(["admin", "isolate", "p2"], {
      routes: { "GET /v1/cluster": { body: status }, "POST /v1/admin/partition": partitioned },
    });
    expect(isolated.code).toBe(0);
    expect(isolated.requests.at(-1)?.body).toEqual({ sides: [["p2"], ["p1", "p3"]] });
  });

  it("refuses a one-sided partition and bad peer ids before sending anything (64)", async () => {
    for (const argv of [
      ["admin", "partition", "p1"],
      ["admin", "partition", "p1", "node2"],
      ["admin", "isolate", "x"],
    ]) {
      const ran = await syncctl(argv, { routes: {} });
      expect(ran.code, argv.join(" ")).toBe(64);
      expect(ran.requests, argv.join(" ")).toEqual([]);
    }
  });

  it("heal, crash, restart and clock (negative after --) call their routes; without fault injection it is 4", async () => {
    const routes = {
      "POST /v1/admin/heal": { body: { healed: true } },
      "POST /v1/admin/peers/p2/crash": { body: { crashed: "p2" } },
      "POST /v1/admin/peers/p2/restart": { body: { restarted: "p2" } },
      "POST /v1/admin/peers/p3/clock": (req: Request) => ({
        body: { peer: "p3", offsetMs: (req.body as { offsetMs: number }).offsetMs },
      }),
    };
    expect((await syncctl(["admin", "heal"], { routes })).stdout).toBe("healed\n");
    expect((await syncctl(["admin", "crash", "p2"], { routes })).stdout).toBe("crashed p2\n");
    expect((await syncctl(["admin", "restart", "p2"], { routes })).stdout).toBe("restarted p2\n");
    const clock = await syncctl(["admin", "clock", "p3", "--", "-5000"], { routes });
    expect(clock.requests[0]?.body).toEqual({ offsetMs: -5000 });
    expect(clock.stdout).toBe("p3's clock runs -5000 ms off real time\n");
    const off = await syncctl(["admin", "heal"], {
      routes: { "POST /v1/admin/heal": problem(404, "not-found", "fault injection is off") },
    });
    expect(off.code).toBe(4);
  });
});
