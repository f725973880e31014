/** Shard placement, group keys and receipts: the pure helpers the Worker shares with the state machine. */
import { describe, expect, it } from "vitest";
import { hash32 } from "../../shared/hashing/hash.js";
import {
  DEFAULT_SHARDS,
  dlqName,
  formatReceipt,
  groupKey,
  parseReceipt,
  placeMessages,
  planEnqueue,
  receiptShard,
} from "../../shared/queue/index.js";
import { Rand } from "../../shared/raft/rand.js";

describe("placeMessages", () => {
  it("a key always goes to hash32(key) % shards", () => {
    const keys = Array.from({ length: 50 }, (_, i) => ({ key: `user-${i}`, id: `id-${i}` }));
    const a = placeMessages("q", keys, DEFAULT_SHARDS, 0);
    const b = placeMessages("q", keys, DEFAULT_SHARDS, 5);
    expect(a).toEqual(b);
    expect(a).toEqual(keys.map((m) => hash32(m.key) % DEFAULT_SHARDS));
    expect(new Set(a).size).toBeGreaterThan(4); // really spread
  });

  it("without a key, a client-given id decides, so a retry lands on the same shard", () => {
    const msgs = [{ id: "x" }, { id: "y" }];
    expect(placeMessages("q", msgs, 8, 0)).toEqual(placeMessages("q", msgs, 8, 3));
    expect(placeMessages("q", msgs, 8, 0)).toEqual([hash32("x") % 8, hash32("y") % 8]);
  });

  it("without key or id, a batch stays together on the batch's shard (one command, all or nothing)", () => {
    const msgs = Array.from({ length: 10 }, () => ({}));
    expect(placeMessages("q", msgs, 4, 2)).toEqual(Array(10).fill(2));
    expect(placeMessages("q", [{}, { key: "k" }, {}], 4, 7)).toEqual([3, hash32("k") % 4, 3]);
  });
});

describe("planEnqueue", () => {
  it("places a resend with the ids of the first answer exactly where the first send went (property)", () => {
    const rand = new Rand(20261203);
    let uuid = 0;
    const newId = () => `00000000-0000-4000-8000-${(++uuid).toString(16).padStart(12, "0")}`;
    for (let round = 0; round < 500; round++) {
      const shards = rand.range(1, 64);
      const batch = Array.from({ length: rand.range(1, 20) }, (_, i) => {
        const kind = rand.int(3);
        if (kind === 0) return { body: i, key: `k${rand.int(50)}` };
        if (kind === 1) return { body: i, id: `client-${rand.int(1000)}` };
        return { body: i };
      });
      const first = planEnqueue("q", batch, shards, rand.int(shards), newId);
      // What a client does after a 503: the same batch, each message with the id it was given.
      const resend = batch.map((m, i) => ({ ...m, id: first[i]?.id as string }));
      const second = planEnqueue("q", resend, shards, rand.int(shards), newId);
      expect(second.map((m) => m.shard)).toEqual(first.map((m) => m.shard));
      expect(second.map((m) => m.id)).toEqual(first.map((m) => m.id));
    }
  });

  it("still keeps a batch without keys or ids together on one shard, with valid names as ids", () => {
    let n = 0;
    const planned = planEnqueue("q", Array(30).fill({ body: 1 }), 8, 5, () => `base-${++n}`);
    expect(new Set(planned.map((m) => m.shard))).toEqual(new Set([5]));
    for (const m of planned) expect(m.id).toMatch(/^[A-Za-z0-9._:@/-]{1,200}$/);
    expect(new Set(planned.map((m) => m.id)).size).toBe(30);
  });
});

describe("names and receipts", () => {
  it("a queue and its dead-letter queues share a group per shard", () => {
    expect(dlqName("orders")).toBe("orders.dlq");
    expect(groupKey("orders", 3)).toBe("orders/3");
    expect(groupKey("orders.dlq", 3)).toBe("orders/3");
    expect(groupKey("orders.dlq.dlq", 3)).toBe("orders/3");
    expect(groupKey(".dlq", 1)).toBe(".dlq/1");
  });

  it("receipts round-trip; anything else parses to undefined", () => {
    const r = { shard: 7, seq: 123, delivery: 9 };
    expect(parseReceipt(formatReceipt(r))).toEqual(r);
    expect(receiptShard("7:1:1")).toBe(7);
    for (const bad of [
      "",
      "1:2",
      "1:2:3:4",
      "a:1:1",
      "1:-2:3",
      "1:2.5:3",
      " 1:2:3",
      "1::3",
      "1:2:",
      ":1:2",
      "1234567890123456:1:1",
    ]) {
      expect(parseReceipt(bad), bad).toBeUndefined();
    }
  });
});
