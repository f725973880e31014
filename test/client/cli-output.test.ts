// syncctl's renderings and value parsing (cli/output.ts, cli/values.ts, the --json pre-scan).
import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { cell, errorText, fields, problemOf, when } from "../../cli/output.js";
import { wantsJson } from "../../cli/program.js";
import { chunks, integer, jsonOrString, UsageError } from "../../cli/values.js";
import { errorFromProblem, NetworkError } from "../../client/index.js";

describe("values", () => {
  it("jsonOrString: JSON when it parses, else the text as typed", () => {
    expect(jsonOrString('{"a":1}')).toEqual({ a: 1 });
    expect(jsonOrString("42")).toBe(42);
    expect(jsonOrString("null")).toBe(null);
    expect(jsonOrString('"quoted"')).toBe("quoted");
    expect(jsonOrString("hello")).toBe("hello");
    expect(jsonOrString("{not json")).toBe("{not json");
    expect(jsonOrString("")).toBe("");
  });

  it("integer takes plain digits only", () => {
    expect(integer("0")).toBe(0);
    expect(integer(" 30000 ")).toBe(30000);
    for (const bad of ["", "1e3", "0x10", "1.5", "-1", "abc", "99999999999999999999"]) {
      expect(() => integer(bad), bad).toThrow(CommanderError);
    }
  });

  it("chunks keeps order and the last, shorter run", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 100)).toEqual([]);
  });

  it("--json counts only before a --", () => {
    expect(wantsJson(["lock", "get", "x", "--json"])).toBe(true);
    expect(wantsJson(["queue", "send", "q", "--", "--json"])).toBe(false);
    expect(wantsJson(["--jsonx"])).toBe(false);
  });
});

describe("renderings", () => {
  it("fields aligns labels", () => {
    expect(
      fields([
        ["a", "1"],
        ["long", "2"],
        ["empty", ""],
      ]),
    ).toBe("a      1\nlong   2\nempty");
  });

  it("cell shows strings as they are, other JSON compact, cut at the width", () => {
    expect(cell("plain")).toBe("plain");
    expect(cell({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(cell(null)).toBe("null");
    expect(cell("abcdef", 4)).toBe("abc…");
  });

  it("when gives the time and its distance from now", () => {
    expect(when(61_000, 1_000)).toBe("1970-01-01T00:01:01.000Z (in 60.0s)");
    expect(when(1_000, 3_500)).toBe("1970-01-01T00:00:01.000Z (2.5s ago)");
  });
});

describe("problems", () => {
  it("a service error keeps its body's members", () => {
    const err = errorFromProblem(409, {
      type: "/problems/deadlock",
      title: "Deadlock",
      status: 409,
      detail: "a waits for b waits for a",
      cycle: ["a", "b"],
    });
    expect(problemOf(err)).toEqual({
      type: "/problems/deadlock",
      title: "Deadlock",
      status: 409,
      detail: "a waits for b waits for a",
      cycle: ["a", "b"],
    });
    expect(errorText(err)).toBe('syncctl: Deadlock (409 deadlock): a waits for b waits for a\n  cycle: ["a","b"]');
  });

  it("an answer without a problem body still names its status", () => {
    const err = errorFromProblem(502, undefined);
    expect(problemOf(err)).toMatchObject({ type: "http-502", status: 502 });
    expect(errorText(err)).toBe("syncctl: HTTP 502 (502 http-502)");
  });

  it("no answer, a usage error and a bug", () => {
    expect(problemOf(new NetworkError(new TypeError("fetch failed")))).toEqual({
      type: "network",
      title: "Network error",
      status: undefined,
      detail: "fetch failed",
    });
    expect(errorText(new NetworkError(new TypeError("fetch failed")))).toBe(
      "syncctl: Network error (network): fetch failed",
    );
    expect(errorText(new UsageError("nothing to send"))).toBe("syncctl: nothing to send\n(add --help for usage)");
    expect(problemOf(new RangeError("oops"))).toEqual({ type: "internal", title: "Unexpected error", detail: "oops" });
  });
});
