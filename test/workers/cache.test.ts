// The cache routes end to end: Worker → cache node object → directory on the key's Raft group.
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, clusterGroups, get, post, ready } from "./client";

beforeAll(ready, 20_000);

const put = (key: string, value: unknown, node = "n1", query = "") =>
  call("PUT", `/v1/cache/${encodeURIComponent(key)}?node=${node}${query}`, { value });
const read = (key: string, node = "n1") => get(`/v1/cache/${encodeURIComponent(key)}?node=${node}`);
const del = (key: string, node = "n1") => call("DELETE", `/v1/cache/${encodeURIComponent(key)}?node=${node}`);

const commitIndexes = async () => (await clusterGroups()).map((g) => g.commitIndex);

describe("cache", () => {
  it("MESI: a read miss takes E, a write in E is silent M, a remote read shares, a write invalidates", async () => {
    expect((await read("k1")).status).toBe(404);
    expect((await put("k1", { v: 1 })).json).toEqual({ key: "k1", node: "n1", state: "M" });
    expect((await read("k1")).json).toEqual({ key: "k1", value: { v: 1 }, node: "n1", state: "M", hit: true });
    // n2 reads: n1 drops to S (writing back), n2 joins in S.
    expect((await read("k1", "n2")).json).toEqual({ key: "k1", value: { v: 1 }, node: "n2", state: "S", hit: false });
    expect((await read("k1", "n1")).json).toMatchObject({ state: "S", hit: true });
    // n3 writes: both sharers are invalidated.
    expect((await put("k1", "three", "n3")).json).toEqual({ key: "k1", node: "n3", state: "M" });
    expect((await read("k1", "n1")).json).toMatchObject({ value: "three", state: "S", hit: false });
    expect((await del("k1", "n2")).json).toEqual({ deleted: true });
    expect((await read("k1", "n3")).status).toBe(404);
    expect((await del("k1", "n2")).json).toEqual({ deleted: false });
  });

  it("E then a silent write, then a read on another node sees the written value", async () => {
    await put("k2", 1, "n1");
    // n2 reads (n1 → S), n1 is invalidated by n2's write, n1 reads again: E? no, n2 holds M.
    expect((await read("k2", "n2")).json).toMatchObject({ value: 1, state: "S" });
    await put("k2", 2, "n2");
    expect((await read("k2", "n1")).json).toMatchObject({ value: 2, state: "S", hit: false });
    await del("k2");
    // A fresh read miss with no other holder: E; a write there is silent (M, no directory).
    await put("k2", 3, "n4");
    await put("k2", 4, "n1");
    expect((await read("k2", "n1")).json).toMatchObject({ value: 4, state: "M", hit: true });
    expect((await read("k2", "n4")).json).toMatchObject({ value: 4, state: "S", hit: false });
  });

  it("a read miss with no other holder is E; a write in E is silent (nothing committed) and written back on a remote read", async () => {
    await put("k4", "first", "n2"); // n2 M (through the directory, which keeps the value)
    // n2 loses its line (a crash); the directory still names it the owner, so its next miss is E again.
    await post("/v1/admin/cache/n2/crash");
    await post("/v1/admin/cache/n2/restart");
    expect((await read("k4", "n2")).json).toMatchObject({ value: "first", state: "E", hit: false });
    const before = await commitIndexes();
    expect((await put("k4", "second", "n2")).json).toEqual({ key: "k4", node: "n2", state: "M" });
    expect((await read("k4", "n2")).json).toMatchObject({ value: "second", state: "M", hit: true });
    expect(await commitIndexes()).toEqual(before);
    // n3 reads: n2 writes back and drops to S.
    expect((await read("k4", "n3")).json).toMatchObject({ value: "second", state: "S", hit: false });
    const n2 = (await get("/v1/cache/nodes/n2")).json;
    expect(n2.lines).toContainEqual({ key: "k4", state: "S" });
    expect(n2.stats.writebacks).toBe(1);
  });

  it("a read of a key nobody wrote is 404, confirmed by a ReadIndex read with nothing committed", async () => {
    await read("never-written", "n1"); // wakes the group; then nothing may move
    const before = await commitIndexes();
    for (const node of ["n1", "n2", "n3"]) expect((await read("never-written", node)).status).toBe(404);
    expect(await commitIndexes()).toEqual(before);
  });

  it("update propagation gives sharers the new value", async () => {
    await put("k3", "a", "n1");
    await read("k3", "n2");
    expect((await put("k3", "b", "n1", "&propagation=update")).json).toEqual({ key: "k3", node: "n1", state: "S" });
    expect((await read("k3", "n2")).json).toMatchObject({ value: "b", state: "S", hit: true });
    const info = await get("/v1/cache/nodes/n2");
    expect(info.json.lines).toContainEqual({ key: "k3", state: "S" });
    expect(info.json.stats.updates).toBeGreaterThanOrEqual(1);
  });

  it("an unknown node is 404; a bad key or body is 400", async () => {
    expect((await read("k", "n99")).status).toBe(404);
    expect((await get("/v1/cache/nodes/n0")).status).toBe(404);
    expect((await read("bad key")).status).toBe(400);
    expect((await call("PUT", "/v1/cache/k?node=n1", { value: 1, extra: 2 })).status).toBe(400);
    expect((await call("PUT", "/v1/cache/k?node=n1", {})).status).toBe(400);
    expect((await call("PUT", "/v1/cache/k?node=n1&propagation=sideways", { value: 1 })).status).toBe(400);
  });
});

describe("cache operations", () => {
  it("/metrics exports every node's counters; /openapi.json documents the routes", async () => {
    await put("m1", 1, "n2");
    await read("m1", "n2");
    const res = await exports.default.fetch("http://example.com/metrics");
    const text = await res.text();
    expect(text).toMatch(/cache_hits_total\{node="n2"\} [1-9]/);
    expect(text).toMatch(/cache_node_up\{node="n4"\} 1/);
    const doc = (await get("/openapi.json")).json;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/cache/{key}", "/v1/cache/nodes/{node}"]));
  });
});
