// Races between a cache node's own requests: replies that arrive late must not undo local writes.
import { describe, expect, it } from "vitest";
import { commandFor, DirectoryTable } from "../../shared/cache/directory";
import { CacheNodeCore, type DirectoryLink, type DirtyValue } from "../../shared/cache/node";
import type { CacheCommand, DirectoryReply, DirectoryRequest } from "../../shared/cache/types";

/**
 * A directory with no other nodes: requests apply to a real DirectoryTable at once, in arrival
 * order, but each reply is held until the test releases it.
 */
function heldDirectory() {
  const table = new DirectoryTable();
  let index = 0;
  const held: (() => void)[] = [];
  const link: DirectoryLink = {
    call: async (req: DirectoryRequest): Promise<DirectoryReply> => {
      const basedOn = table.stamp(req.key);
      const cmd: CacheCommand =
        req.op === "writeback"
          ? { type: "cache-writeback", key: req.key, node: req.node, value: req.value, stamp: req.stamp, now: 0 }
          : commandFor(req, { basedOn, acked: [], leaseMs: 10_000 });
      const { result } = table.apply(cmd, ++index);
      await new Promise<void>((resolve) => held.push(resolve));
      return result as DirectoryReply;
    },
  };
  /** Lets the oldest held reply go and lets the node run until it waits again. */
  const release = async () => {
    await new Promise((resolve) => setTimeout(resolve, 0));
    held.shift()?.();
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { table, link, held, release };
}

function node(link: DirectoryLink) {
  const store = new Map<string, DirtyValue>();
  return new CacheNodeCore({
    name: "n1",
    capacity: 8,
    maxDriftPpm: 200,
    clock: () => 1_000,
    directory: link,
    store: { put: (k, d) => store.set(k, d), delete: (k) => store.delete(k), all: () => [...store] },
    newId: () => crypto.randomUUID(),
  });
}

describe("a cache node's own concurrent requests", () => {
  it("a second read miss answered after a silent write does not bring the old value back", async () => {
    const d = heldDirectory();
    d.table.apply(
      {
        type: "cache-write",
        key: "k",
        node: "n9",
        basedOn: 0,
        now: 0,
        value: '"v1"',
        propagation: "invalidate",
        acked: [],
        leaseMs: 1,
      },
      1,
    );
    d.table.apply({ type: "cache-writeback", key: "k", node: "n9", value: '"v1"', stamp: 1, now: 0 }, 2);
    const n = node(d.link);
    const first = n.get("k");
    const second = n.get("k");
    await d.release(); // the first read: E
    expect(await first).toMatchObject({ value: '"v1"', state: "E" });
    const put = n.put("k", '"v2"', "invalidate", "w1");
    await d.release(); // a second reply, if the second read went to the directory
    await second;
    expect(await put).toMatchObject({ state: "M" });
    await d.release();
    expect(await n.get("k")).toMatchObject({ value: '"v2"', hit: true });
  });

  it("a read miss answered after a write and a silent write does not undo the silent write", async () => {
    const d = heldDirectory();
    const n = node(d.link);
    const viaDirectory = n.put("k", '"a"', "invalidate", "w1"); // no line: through the directory
    const read = n.get("k");
    await d.release();
    expect(await viaDirectory).toMatchObject({ state: "M" });
    const silent = n.put("k", '"b"', "invalidate", "w2");
    await d.release(); // the read, if it went to the directory: a grant newer than the write's
    await read;
    expect(await silent).toMatchObject({ state: "M" });
    expect(await n.get("k")).toMatchObject({ value: '"b"', hit: true });
  });
});
