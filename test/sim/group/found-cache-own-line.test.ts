/**
 * Found by the group simulator with the cache in it: a node went on serving its own line of a key
 * while its own DELETE or update-mode PUT of that key was on its way, after the directory had
 * committed it and told the other nodes. The directory's entry no longer names the node as a
 * holder of that line (a delete removes the entry; a write records the writer's new line), so no
 * order would ever take the old line back: only the answer did, when it arrived (a slow network,
 * a paused node, a retry through another peer). Meanwhile another node served the new state: a
 * GET there and then a GET on the first node returned the new value, then the old one.
 *
 * - delete: seeds 5, 19 and 49 of 1..60 ("cache coherence: ck0 served in M/E by n2 (M), n3 (M)":
 *   the deleter kept its M line while another node, finding no entry, wrote the key in M);
 *   fixed by 58de402 (the line is dropped before the delete is sent);
 * - update-mode write: seed 850 ("cache linearizability": the writer's old S line was served after
 *   another node, given the new value by the push, had served it);
 * - an update push landing on a node whose own delete is on its way: seeds 714 and 1963 of
 *   1..2000 ("cache coherence: ck0 served in M/E by n2 (M) and in S by n3"): after 58de402 the
 *   pushed line was installed after the drop and outlived the delete's answer.
 *   The last two fixed by 874146d (nothing of the key is served or installed while the node's own
 *   write or delete of it is on its way). All three tests failed before their fix.
 * - a delete whose node crashed while it was on its way: seed 576 of 501..1000 with quiescence
 *   ("cache coherence": n1 in M, n3 in S). The node's new life took the key in S from an update
 *   push; the delete, still running, skipped its requester when invalidating. Fixed by ordering
 *   the requester too when the entry names it; the fourth test failed before the fix.
 *
 * The real DirectoryService and DirectoryTable (over a one-peer stand-in for the Replica that
 * applies each command at once) and two real CacheNodeCores; only n1's messages are held.
 */
import { describe, expect, it } from "vitest";
import { DirectoryService } from "../../../shared/cache/directory-service.js";
import { CacheNodeCore, type DirtyValue } from "../../../shared/cache/node.js";
import type { DirectoryReply, DirectoryRequest } from "../../../shared/cache/types.js";
import { type GroupResult, GroupState } from "../../../shared/group/state.js";
import { decodeEnvelope } from "../../../shared/replica/dedup.js";
import type { Replica } from "../../../shared/replica/replica.js";

const NOW = 1_700_000_000_000;

/**
 * A directory and nodes n1, n2; n1's answers to the ops in `holdOps` are held until released
 * (its requests too, for the ops in `holdRequests`).
 */
function setup(holdOps: DirectoryRequest["op"][], holdRequests: DirectoryRequest["op"][] = []) {
  const state = new GroupState();
  let index = 0;
  const replica = {
    whenServing: () => Promise.resolve(),
    read: () => Promise.resolve(),
    groupNow: (local: number) => local,
    wallTime: (group: number) => group,
    propose: async (data: string) =>
      state.apply({ index: ++index, term: 1, type: "normal", data: decodeEnvelope(data).body }),
  } as unknown as Replica<GroupResult>;
  const cores = new Map<string, CacheNodeCore>();
  const directory = new DirectoryService(
    replica,
    state.cache,
    () => NOW,
    () => Promise.resolve(),
    { order: async (node, order) => (cores.get(node) as CacheNodeCore).order(order) },
    { leaseMs: 10_000, orderTimeoutMs: 1000 },
  );
  const held: (() => void)[] = [];
  let ids = 0;
  const stores = new Map<string, Map<string, DirtyValue>>();
  const start = (name: string) => {
    const dirty = stores.get(name) ?? new Map<string, DirtyValue>();
    stores.set(name, dirty);
    const hold = name === "n1" ? holdOps : [];
    const holdRequest = name === "n1" ? holdRequests : [];
    cores.set(
      name,
      new CacheNodeCore({
        name,
        capacity: 8,
        maxDriftPpm: 0,
        clock: () => NOW,
        directory: {
          call: async (req, requestId) => {
            if (holdRequest.includes(req.op)) await new Promise<void>((resolve) => held.push(resolve));
            const reply = await directory.handle(req, requestId);
            if (hold.includes(req.op)) await new Promise<void>((resolve) => held.push(resolve));
            return reply as DirectoryReply;
          },
        },
        store: { put: (k, d) => dirty.set(k, d), delete: (k) => dirty.delete(k), all: () => [...dirty] },
        newId: () => `id-${++ids}`,
      }),
    );
    return cores.get(name) as CacheNodeCore;
  };
  start("n1");
  start("n2");
  return {
    state,
    n1: cores.get("n1") as CacheNodeCore,
    n2: cores.get("n2") as CacheNodeCore,
    release: () => {
      for (const r of held.splice(0)) r();
    },
    /** A crash and restart: the old life stops (its requests in flight go on without it); a new life starts with no lines. */
    restart: (name: string) => {
      cores.get(name)?.stop();
      return start(name);
    },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("a node's own write or delete in flight (found by the group simulator)", () => {
  it("delete: the deleter stops serving its line before another node's write can answer", async () => {
    const { state, n1, n2, release } = setup(["delete"]);
    expect(await n1.put("k", '"v1"', "invalidate", "put-1")).toEqual({ type: "stored", key: "k", state: "M" });
    const deleting = n1.delete("k", "delete-1"); // committed at once; its answer is held
    await settle();
    expect(state.cache.entry("k")).toBeUndefined();
    // n2 writes: no entry, so no holder to order; it answers.
    expect(await n2.put("k", '"v2"', "invalidate", "put-2")).toEqual({ type: "stored", key: "k", state: "M" });
    // The PUT of v2 has answered: no GET anywhere may return v1 any more (before the fix n1 still
    // held its M line, beside n2's, and it was a hit).
    expect(n1.info().lines).not.toContainEqual({ key: "k", state: "M" });
    const reading = n1.get("k");
    release();
    expect(await deleting).toEqual({ type: "deleted", existed: true });
    const read = await reading;
    expect(read.type === "value" ? read.value : read.type).toBe('"v2"');
  });

  it("update-mode write: the writer stops serving its old line once others are given the new value", async () => {
    const { n1, n2, release } = setup(["write"]);
    await n2.put("k", '"v1"', "invalidate", "put-1");
    expect(await n1.get("k")).toMatchObject({ value: '"v1"', state: "S" }); // n1 and n2 share v1
    const writing = n1.put("k", '"v2"', "update", "put-2"); // committed, pushed to n2; answer held
    await settle();
    expect(await n2.get("k")).toMatchObject({ value: '"v2"', hit: true });
    // A GET on n2 returned v2: a later GET on n1 must not return v1 (before the fix n1 served its
    // old S line until its own answer arrived).
    const reading = n1.get("k");
    release();
    expect(await writing).toEqual({ type: "stored", key: "k", state: "S" });
    const read = await reading;
    expect(read.type === "value" ? read.value : read.type).toBe('"v2"');
  });

  it("delete: an update pushed while the node's own delete is on its way is not served after the delete answered", async () => {
    const { n1, n2, release } = setup([], ["delete"]);
    await n2.put("k", '"v1"', "invalidate", "put-1");
    expect(await n1.get("k")).toMatchObject({ value: '"v1"', state: "S" }); // n1 and n2 share v1
    const deleting = n1.delete("k", "delete-1"); // n1 drops its line; the request is on its way
    await settle();
    // n2's update-mode write gets there first: n1 acknowledges the invalidation, then takes the push.
    expect(await n2.put("k", '"v2"', "update", "put-2")).toEqual({ type: "stored", key: "k", state: "S" });
    release();
    expect(await deleting).toEqual({ type: "deleted", existed: true });
    // The DELETE has answered: the key has no value (before the fix n1 served the pushed v2 line
    // until its lease ended, beside an M line of any node that wrote the key meanwhile).
    expect(n1.info().lines).toEqual([]);
    expect(await n1.get("k")).toEqual({ type: "absent" });
  });

  it("delete: a node that crashed with its delete on its way, and took the key again in a new life, loses that line", async () => {
    // Seed 576 of the group simulator with quiescence (a 2.8 s pause kept the delete in flight):
    // the directory skipped the requester when invalidating, as if its line were the asking
    // life's, which had dropped it. The new life's line, pushed after the request began, stayed.
    const { n2, release, restart } = setup([], ["delete"]);
    const first = restart("n1"); // n1's first life here (a fresh core, so the test holds it by name)
    await n2.put("k", '"v1"', "invalidate", "put-1");
    expect(await first.get("k")).toMatchObject({ value: '"v1"', state: "S" });
    const deleting = first.delete("k", "delete-1"); // its request is held on the way
    await settle();
    const second = restart("n1"); // crash: the held request goes on without its node
    expect(await second.get("k")).toMatchObject({ value: '"v1"', state: "S" }); // the new life shares v1
    expect(await n2.put("k", '"v2"', "update", "put-2")).toEqual({ type: "stored", key: "k", state: "S" });
    expect(await second.get("k")).toMatchObject({ value: '"v2"', hit: true }); // pushed to the new life
    release();
    await deleting.catch(() => undefined); // answered to a stopped life: nobody hears it
    await settle();
    // The delete committed: no node may serve v2 any more (before the fix the new life did, until its lease ended).
    expect(second.info().lines).toEqual([]);
    expect(await second.get("k")).toEqual({ type: "absent" });
  });
});
