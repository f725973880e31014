// The directory service on real group cores (test/replica/harness.ts): retries apply once.
import { describe, expect, it } from "vitest";
import type { Order } from "../../shared/cache/types.js";
import { TestCluster } from "../replica/harness.js";

describe("cache directory retries", () => {
  it("a retried write whose key moved since is answered as it was, not applied again", async () => {
    const orders: [string, Order][] = [];
    const c = new TestCluster(3, {
      cacheNodes: {
        order: async (node, order) => {
          orders.push([node, order]);
          return { ok: true };
        },
      },
    });
    const leader = await c.elect();
    const cache = c.core(leader).cache;
    const write = (node: string, value: string, id: string) =>
      c.run(cache.handle({ op: "write", key: "k", node, value, propagation: "invalidate" }, id));
    const first = await write("n1", '"one"', "w1");
    expect(first).toMatchObject({ done: true, value: { type: "written", state: "M" } });
    expect(await write("n2", '"two"', "w2")).toMatchObject({ done: true, value: { type: "written", state: "M" } });
    expect(orders).toEqual([["n1", { action: "invalidate", key: "k", stamp: expect.any(Number) }]]);
    // The first write again (its reply was lost, say): same answer, and "two" stays.
    const retry = await write("n1", '"one"', "w1");
    expect(retry).toEqual(first);
    await c.advance(200);
    for (const id of [1, 2, 3])
      expect(c.core(id).state.cache.entry("k")).toMatchObject({ value: '"two"', owner: "n2" });
  });
});
