/**
 * A reference model of the cache directory (shared/cache/directory.ts), written from its rules
 * rather than its code, for the reference replica of replicas.ts: per key, the value, the stamp,
 * and the holders, each with what it holds (the owner, in E or M, or a sharer until its lease).
 *
 * - A writeback lands only while the node is still the owner at the stamp it wrote under; the
 *   key then has the value and no holder.
 * - Any other command applies only to the stamp its op read (else: conflict, nothing changes).
 * - A read takes the owner's written-back value if there is one; with no value: absent. With no
 *   other holder (an owner, or a sharer whose lease runs) the reader becomes the owner (E);
 *   otherwise every such holder and the reader share (S), the reader and a former owner with a
 *   fresh lease.
 * - A write or delete needs every other holder's acknowledgement (a sharer's lease may have run
 *   out instead). A delete forgets the key (its stamp is 0 again); a write makes the writer the
 *   owner (M), or, in update mode with other holders that acknowledged, makes them and the
 *   writer sharers with fresh leases and has the new value pushed to them. Grants and pushes
 *   carry the lease they started.
 * - Every change stamps the key with the command's log index.
 */
import type { DirectoryEntry, StoredCacheResult } from "../../../shared/cache/directory.js";
import type { CacheApplied, CacheCommand, CacheResult } from "../../../shared/cache/types.js";

interface Holder {
  role: "owner" | "sharer";
  /** A sharer's lease end (group time). */
  until: number;
}

interface KeyModel {
  value: string | undefined;
  stamp: number;
  holders: Map<string, Holder>;
}

export class ReferenceDirectory {
  private readonly keys = new Map<string, KeyModel>();

  apply(cmd: CacheCommand, index: number): CacheApplied {
    const key = cmd.key;
    const k = this.keys.get(key) ?? { value: undefined, stamp: 0, holders: new Map<string, Holder>() };
    const conflict: CacheApplied = { result: { type: "conflict", key } };
    const ownerOf = () => [...k.holders].find(([, h]) => h.role === "owner")?.[0];

    if (cmd.type === "cache-writeback") {
      if (ownerOf() !== cmd.node || k.stamp !== cmd.stamp) {
        return { result: { type: "written-back", key, applied: false } };
      }
      this.keys.set(key, { value: cmd.value, stamp: index, holders: new Map() });
      return { result: { type: "written-back", key, applied: true } };
    }
    if (cmd.basedOn !== k.stamp) return conflict;
    const holding = (h: Holder) => h.role === "owner" || h.until > cmd.now;
    const others = [...k.holders].filter(([n, h]) => n !== cmd.node && holding(h)).map(([n]) => n);

    if (cmd.type === "cache-read") {
      const value = cmd.writeback ?? k.value;
      if (value === undefined) return { result: { type: "absent", key } };
      const lease = cmd.now + cmd.leaseMs;
      if (others.length === 0) {
        this.keys.set(key, { value, stamp: index, holders: new Map([[cmd.node, { role: "owner", until: 0 }]]) });
        return { result: { type: "granted", key, state: "E", stamp: index, value, leaseMs: cmd.leaseMs } };
      }
      const holders = new Map<string, Holder>();
      for (const n of others) {
        const h = k.holders.get(n) as Holder;
        holders.set(n, { role: "sharer", until: h.role === "owner" ? lease : h.until });
      }
      holders.set(cmd.node, { role: "sharer", until: lease });
      this.keys.set(key, { value, stamp: index, holders });
      return { result: { type: "granted", key, state: "S", stamp: index, value, leaseMs: cmd.leaseMs } };
    }

    const acked = new Set(cmd.acked);
    if (others.some((n) => !acked.has(n))) return conflict;
    if (cmd.type === "cache-delete") {
      const existed = (cmd.writeback ?? k.value) !== undefined;
      this.keys.delete(key);
      return { result: { type: "deleted", key, existed, stamp: index } };
    }
    // Holders (lease or not) that answered their invalidation.
    const answered = [...k.holders.keys()].filter((n) => n !== cmd.node && acked.has(n));
    if (cmd.propagation === "update" && answered.length > 0) {
      const lease = cmd.now + cmd.leaseMs;
      const holders = new Map<string, Holder>([[cmd.node, { role: "sharer", until: lease }]]);
      for (const n of answered) holders.set(n, { role: "sharer", until: lease });
      this.keys.set(key, { value: cmd.value, stamp: index, holders });
      return {
        result: { type: "written", key, state: "S", stamp: index, leaseMs: cmd.leaseMs },
        push: { nodes: answered, stamp: index, basedOn: cmd.basedOn, leaseMs: cmd.leaseMs },
      };
    }
    this.keys.set(key, {
      value: cmd.value,
      stamp: index,
      holders: new Map([[cmd.node, { role: "owner", until: 0 }]]),
    });
    return { result: { type: "written", key, state: "M", stamp: index, leaseMs: cmd.leaseMs } };
  }

  /**
   * A retry's answer. The exactly-once layer keeps a read's grant without its value: the value
   * now, if the key has not moved since, else a conflict (the read starts over). Any other answer
   * (a write's among them) is given again as it was: undefined here.
   */
  replay(stored: StoredCacheResult): CacheResult | undefined {
    if (stored.type !== "granted-stored") return undefined;
    const k = this.keys.get(stored.key);
    if (k === undefined || k.stamp !== stored.stamp || k.value === undefined)
      return { type: "conflict", key: stored.key };
    const { key, state, stamp, leaseMs } = stored;
    return { type: "granted", key, state, stamp, value: k.value, leaseMs };
  }

  /**
   * Where the real table's entry for `key` differs from the model (undefined: it does not). The
   * table keeps sharers whose lease ran out until the key next changes; so does the model.
   */
  differs(key: string, entry: DirectoryEntry | undefined): string | undefined {
    const k = this.keys.get(key);
    const image = (
      e: { value?: string; stamp: number; owner?: string; sharers: Record<string, number> } | undefined,
    ): string =>
      e === undefined
        ? "none"
        : JSON.stringify({
            value: e.value ?? null,
            stamp: e.stamp,
            owner: e.owner ?? null,
            sharers: Object.entries(e.sharers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
          });
    const mine =
      k === undefined
        ? undefined
        : {
            value: k.value,
            stamp: k.stamp,
            owner: [...k.holders].find(([, h]) => h.role === "owner")?.[0],
            sharers: Object.fromEntries(
              [...k.holders].filter(([, h]) => h.role === "sharer").map(([n, h]) => [n, h.until]),
            ),
          };
    const a = image(entry);
    const b = image(mine);
    return a === b ? undefined : `the table has ${a}, the model ${b}`;
  }
}
