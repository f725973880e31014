// Log compaction with a large state: the snapshot is stored in chunks and survives restarts.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { groupKey } from "../../shared/queue/placement";
import { groupOf } from "../../workers/groups";
import { clusterGroups, get, post, ready, waitFor } from "./client";

beforeAll(ready, 20_000);

describe("snapshots", () => {
  it("a state larger than one snapshot row is compacted, and every peer recovers it after a crash", async () => {
    // 150 entries of 10 messages × 600 chars: ~1 MB of live state, compacted every 100 entries.
    const body = "x".repeat(600);
    for (let i = 0; i < 150; i++) {
      const r = await post("/v1/queues/big/messages", {
        messages: Array.from({ length: 10 }, (_, j) => ({ body, key: "one-shard", id: `m-${i}-${j}` })),
      });
      expect(r.status).toBe(200);
    }
    const shard = (await post("/v1/queues/big/messages", { messages: [{ body: 0, key: "one-shard" }] })).json
      .messages[0].shard as number;
    const group = `g${groupOf(env, groupKey("big", shard))}`;
    for (const peer of ["p1", "p2", "p3"]) {
      expect((await post(`/v1/admin/peers/${peer}/crash`)).status).toBe(200);
      expect((await post(`/v1/admin/peers/${peer}/restart`)).status).toBe(200);
      await waitFor(async () => ((await clusterGroups()).find((g) => g.group === group)?.leader ? true : undefined));
    }
    const stats = await get("/v1/queues/big");
    expect(stats.status).toBe(200);
    expect(stats.json.visible).toBe(1501);
  }, 60_000);
});
