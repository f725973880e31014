// syncctl's exit status for each outcome (cli/exit-codes.ts), in isolation and through whole runs.
import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { EXIT, EXIT_CODE_MEANINGS, exitCodeFor, exitCodeForStatus } from "../../cli/exit-codes.js";
import { UsageError } from "../../cli/values.js";
import { errorFromProblem, NetworkError } from "../../client/index.js";
import { problem, syncctl } from "./cli-harness.js";

describe("exitCodeFor", () => {
  it.each([
    [400, "validation", EXIT.usage],
    [401, "unauthorized", EXIT.denied],
    [403, "forbidden", EXIT.denied],
    [404, "not-found", EXIT.notFound],
    [405, "method-not-allowed", EXIT.unexpected],
    [409, "lock-conflict", EXIT.conflict],
    [409, "deadlock", EXIT.conflict],
    [409, "not-holder", EXIT.conflict],
    [413, "payload-too-large", EXIT.usage],
    [422, "idempotency-key-reused", EXIT.conflict],
    [500, "internal", EXIT.unexpected],
    [503, "no-quorum", EXIT.unavailable],
    [504, "timeout", EXIT.unavailable],
  ])("%i %s → %i", (status, name, code) => {
    expect(exitCodeFor(errorFromProblem(status, { type: `/problems/${name}`, status }))).toBe(code);
    expect(exitCodeForStatus(status)).toBe(code);
  });

  it("maps no answer to unavailable, refusals to usage, and anything else to unexpected", () => {
    expect(exitCodeFor(new NetworkError(new TypeError("fetch failed")))).toBe(EXIT.unavailable);
    expect(exitCodeFor(new UsageError("nothing to send"))).toBe(EXIT.usage);
    expect(exitCodeFor(new CommanderError(1, "commander.unknownOption", "unknown option"))).toBe(EXIT.usage);
    expect(exitCodeFor(new CommanderError(0, "commander.helpDisplayed", "(outputHelp)"))).toBe(EXIT.ok);
    expect(exitCodeFor(new SyntaxError("Unexpected token <"))).toBe(EXIT.unexpected);
    expect(exitCodeFor("a string")).toBe(EXIT.unexpected);
  });

  it("documents every code it can answer", () => {
    expect(EXIT_CODE_MEANINGS.map(([code]) => code).sort((a, b) => a - b)).toEqual(
      Object.values(EXIT).sort((a, b) => a - b),
    );
  });
});

describe("exit status of whole runs", () => {
  const acquire = ["lock", "acquire", "build", "--owner", "ci"];
  const held = problem(409, "lock-conflict", "build is held by others", {
    holders: [{ owner: "other", mode: "exclusive", expiresAt: 1 }],
    waitedMs: 0,
  });

  it("a lock conflict is 2, with the holders on stderr and nothing on stdout", async () => {
    const ran = await syncctl(acquire, { routes: { "POST /v1/locks/build/acquire": held } });
    expect(ran.code).toBe(2);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toContain("build is held by others");
    expect(ran.stderr).toContain("holders: other (exclusive) until 1970-01-01T00:00:00.001Z");
    // A 409 is an answer, not a failure to retry.
    expect(ran.requests).toHaveLength(1);
  });

  it("under --json a conflict is the service's problem JSON on stderr", async () => {
    const ran = await syncctl(["--json", ...acquire], { routes: { "POST /v1/locks/build/acquire": held } });
    expect(ran.code).toBe(2);
    expect(ran.stdout).toBe("");
    const printed = JSON.parse(ran.stderr);
    expect(printed).toMatchObject({ type: "/problems/lock-conflict", status: 409, waitedMs: 0 });
    expect(printed.holders).toEqual([{ owner: "other", mode: "exclusive", expiresAt: 1 }]);
  });

  it("no quorum is 3, after the client's retries under one Idempotency-Key", async () => {
    const ran = await syncctl(acquire, {
      routes: { "POST /v1/locks/build/acquire": problem(503, "no-quorum", "electing") },
    });
    expect(ran.code).toBe(3);
    expect(ran.requests).toHaveLength(3);
    const keys = new Set(ran.requests.map((r) => r.headers.get("idempotency-key")));
    expect(keys.size).toBe(1);
  });

  it("a refused connection is 3, as a network problem under --json", async () => {
    const refused: typeof fetch = async () => {
      throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
    };
    const ran = await syncctl(["--json", "cluster", "status"], { fetch: refused });
    expect(ran.code).toBe(3);
    expect(ran.stdout).toBe("");
    expect(JSON.parse(ran.stderr)).toMatchObject({
      type: "network",
      detail: "fetch failed: connect ECONNREFUSED 127.0.0.1:1",
    });
  });

  it("a retry that succeeds is 0", async () => {
    let calls = 0;
    const ran = await syncctl(["queue", "purge", "jobs"], {
      routes: {
        "POST /v1/queues/jobs/purge": () => (++calls === 1 ? problem(504, "timeout", "slow") : { body: { purged: 3 } }),
      },
    });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe("purged 3 from jobs\n");
  });

  it("401 and 403 are 5", async () => {
    const denied = await syncctl(["lock", "get", "x"], {
      routes: { "GET /v1/locks/x": problem(401, "unauthorized", "") },
    });
    expect(denied.code).toBe(5);
    const forbidden = await syncctl(["cluster", "remove-peer", "p3"], {
      routes: { "DELETE /v1/cluster/peers/p3": problem(403, "forbidden", "needs ADMIN_TOKEN") },
    });
    expect(forbidden.code).toBe(5);
    expect(forbidden.stderr).toContain("needs ADMIN_TOKEN");
  });

  it("a key with no value is 4, as a not-found problem under --json", async () => {
    const ran = await syncctl(["--json", "cache", "get", "missing"], {
      routes: { "GET /v1/cache/missing": problem(404, "not-found", "no value") },
    });
    expect(ran.code).toBe(4);
    expect(ran.stdout).toBe("");
    expect(JSON.parse(ran.stderr)).toMatchObject({ status: 404, detail: "missing has no value" });
  });

  it("a 400 from the service is 64, with its detail", async () => {
    const ran = await syncctl([...acquire, "--ttl-ms", "5"], {
      routes: { "POST /v1/locks/build/acquire": problem(400, "validation", "ttlMs: too small") },
    });
    expect(ran.code).toBe(64);
    expect(ran.stderr).toContain("ttlMs: too small");
  });

  it("a 2xx that is not JSON (not the service) is 1", async () => {
    const html: typeof fetch = async () => new Response("<html>proxy</html>", { status: 200 });
    const ran = await syncctl(["lock", "get", "x"], { fetch: html });
    expect(ran.code).toBe(1);
    expect(ran.stdout).toBe("");
  });

  it.each([
    [["lock", "acquire", "build"], "required option '--owner <owner>'"],
    [["lock", "acquire", "build", "--owner", "a", "--mode", "upgrade"], "Allowed choices are exclusive, shared"],
    [["lock", "acquire", "build", "--owner", "a", "--ttl-ms", "1.5"], "non-negative integer"],
    [["lock", "acquire", "build", "--owner", "a", "--ttl-ms", "-1"], "non-negative integer"],
    [["queue", "send", "jobs"], "nothing to send"],
    [["queue", "send", "jobs", "--id", "m1", "--body", "a", "--body", "b"], "--id names one message"],
    [["queue", "send", "jobs", "stdin"], "Allowed choices are -"],
    [["bench", "locks", "-c", "0"], "positive integer"],
    [["lock", "frobnicate"], "unknown command 'frobnicate'"],
    [["lock", "get", "x", "--bogus"], "unknown option '--bogus'"],
    [["lock"], "Usage: syncctl lock"],
    [[], "Usage: syncctl"],
  ])("%j is a usage error (64) that sends nothing", async (argv, message) => {
    const ran = await syncctl(argv);
    expect(ran.code).toBe(64);
    expect(ran.requests).toHaveLength(0);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toContain(message);
  });

  it("usage errors under --json are a problem JSON on stderr", async () => {
    const ran = await syncctl(["--json", "lock", "acquire", "build"]);
    expect(ran.code).toBe(64);
    expect(JSON.parse(ran.stderr)).toEqual({
      type: "usage",
      title: "Usage error",
      detail: "required option '--owner <owner>' not specified",
    });
  });

  it("--help and --version are 0 on stdout; help lists the exit codes and an example", async () => {
    const help = await syncctl(["queue", "receive", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe("");
    expect(help.stdout).toContain("Example");
    expect(help.stdout).toContain("syncctl queue receive jobs");
    expect(help.stdout).toContain("64  usage");
    const version = await syncctl(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
