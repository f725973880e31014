// S leases on a cache node: never longer than the directory that recorded them waits.
import { describe, expect, it } from "vitest";
import { CacheNodeCore, type DirectoryLink, type DirtyValue } from "../../shared/cache/node";
import type { DirectoryReply } from "../../shared/cache/types";

const DRIFT_PPM = 200;
const worth = (ms: number) => Math.floor(ms * (1 - DRIFT_PPM / 1e6));

function setup(reply: (req: { op: string; key: string }) => DirectoryReply) {
  const clock = { now: 1_000_000 };
  const store = new Map<string, DirtyValue>();
  const link: DirectoryLink = { call: async (req) => reply(req) };
  const node = new CacheNodeCore({
    name: "n1",
    capacity: 4,
    maxDriftPpm: DRIFT_PPM,
    clock: () => clock.now,
    directory: link,
    store: { put: (k, d) => store.set(k, d), delete: (k) => store.delete(k), all: () => [...store] },
    newId: () => "id",
  });
  return { node, clock };
}

describe("cache node leases", () => {
  it("an S grant is served for the grant's lease, shortened by the drift bound, counted from before the request", async () => {
    const { node, clock } = setup(() => {
      clock.now += 300; // the request takes 300 ms
      return { type: "granted", key: "k", state: "S", stamp: 5, value: "1", leaseMs: 4000 };
    });
    const sentAt = clock.now;
    expect(await node.get("k")).toMatchObject({ hit: false, state: "S" });
    clock.now = sentAt + worth(4000) - 1;
    expect(await node.get("k")).toMatchObject({ hit: true });
    clock.now = sentAt + worth(4000);
    expect(node.info().lines).toEqual([]);
  });

  it("repeated share orders keep the earliest lease end", async () => {
    const { node, clock } = setup(() => ({
      type: "granted",
      key: "k",
      state: "E",
      stamp: 5,
      value: "1",
      leaseMs: 4000,
    }));
    await node.get("k"); // E
    const first = clock.now;
    expect(node.order({ action: "share", key: "k", stamp: 5, leaseMs: 4000 })).toEqual({ ok: true });
    clock.now += 1500; // the same op again, from a new leader
    node.order({ action: "share", key: "k", stamp: 5, leaseMs: 4000 });
    clock.now = first + worth(4000) - 1;
    expect(await node.get("k")).toMatchObject({ hit: true, state: "S" });
    clock.now = first + worth(4000);
    expect(node.info().lines).toEqual([]);
  });

  it("an update push leases from the first order of its stamp, not a late duplicate", async () => {
    const { node, clock } = setup(() => ({
      type: "granted",
      key: "k",
      state: "S",
      stamp: 5,
      value: "1",
      leaseMs: 4000,
    }));
    await node.get("k");
    const phaseOne = clock.now;
    node.order({ action: "invalidate", key: "k", stamp: 5 });
    clock.now += 2000; // a stale leader's order for the same state arrives late
    node.order({ action: "invalidate", key: "k", stamp: 5 });
    node.order({ action: "update", key: "k", stamp: 9, value: "2", basedOn: 5, leaseMs: 4000 });
    expect(node.info().lines).toEqual([{ key: "k", state: "S" }]);
    clock.now = phaseOne + worth(4000);
    expect(node.info().lines).toEqual([]);
  });

  it("an update push after a newer order is not installed", async () => {
    const { node } = setup(() => ({ type: "granted", key: "k", state: "S", stamp: 5, value: "1", leaseMs: 4000 }));
    await node.get("k");
    node.order({ action: "invalidate", key: "k", stamp: 5 });
    node.order({ action: "invalidate", key: "k", stamp: 9 }); // a later write already took it away
    node.order({ action: "update", key: "k", stamp: 9, value: "2", basedOn: 5, leaseMs: 4000 });
    expect(node.info().lines).toEqual([]);
  });
});
