import type { GroupResult } from "../group/state.js";
import { encodeCommand } from "../replica/dedup.js";
import type { Replica } from "../replica/replica.js";
import { commandFor, type DirectoryTable } from "./directory.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type {
  CacheApplied,
  CacheCommand,
  DirectoryReply,
  DirectoryRequest,
  Order,
  OrderReply,
  Stamp,
} from "./types.js";

/** How the directory reaches cache nodes: Workers RPC to their Durable Objects, or a simulated network. */
export interface CacheNodes {
  /** Rejects (or never settles) when the node cannot be reached. */
  order(node: string, order: Order): Promise<OrderReply>;
}

export interface DirectoryServiceOptions {
  /** S leases granted by this group (ms). */
  leaseMs: number;
  /** How long an order may take before its node counts as unreachable. */
  orderTimeoutMs: number;
}

export const DEFAULT_CACHE_LEASE_MS = 10_000;
export const ORDER_TIMEOUT_MS = 1_000;
/** An op starts over when its key moved under it (only across leader changes): this many times at most. */
const MAX_ATTEMPTS = 8;

type Reached = { node: string; reply: OrderReply | undefined };

/**
 * The directory's side of the protocol, on the leader of the key's group: for each request it
 * sends the orders MESI needs to the other holders, then proposes what they answered; the
 * directory (directory.ts) applies it only if the key did not move meanwhile. Ops on one key run
 * one at a time here; across leader changes the stamps keep them apart.
 */
export class DirectoryService {
  private readonly perKey = new KeyedMutex();

  constructor(
    private readonly replica: Replica<GroupResult>,
    private readonly table: DirectoryTable,
    private readonly clock: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly nodes: CacheNodes,
    private readonly opts: DirectoryServiceOptions,
  ) {}

  /** Serves one request on the leader (throws NotLeaderError elsewhere). */
  handle(req: DirectoryRequest, requestId: string, signal?: AbortSignal): Promise<DirectoryReply> {
    return this.perKey.run(req.key, () => this.serve(req, requestId, signal));
  }

  private async serve(req: DirectoryRequest, requestId: string, signal?: AbortSignal): Promise<DirectoryReply> {
    if (req.op === "writeback") {
      const applied = await this.propose({ type: "cache-writeback", ...req, now: 0 }, requestId, signal);
      return applied.result as DirectoryReply;
    }
    if (req.op === "read" && (await this.absent(req.key))) return { type: "absent", key: req.key };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; ) {
      await this.replica.whenServing();
      signal?.throwIfAborted();
      const entry = this.table.entry(req.key);
      const basedOn: Stamp = entry?.stamp ?? 0;
      const owner = entry?.owner !== undefined && entry.owner !== req.node ? entry.owner : undefined;
      // A read recalls the owner to S; a write or a delete takes the line from every other holder.
      const { leaseMs } = this.opts;
      const targets: { node: string; order: Order }[] = [];
      if (owner !== undefined) {
        const order: Order =
          req.op === "read"
            ? { action: "share", key: req.key, stamp: basedOn, leaseMs }
            : { action: "invalidate", key: req.key, stamp: basedOn };
        targets.push({ node: owner, order });
      }
      if (req.op !== "read") {
        // The requester too, when the entry names it: the node that asked may have crashed since
        // and come back (a new life, no longer changing the key) holding a line granted after the
        // request began (an update push). The asking life dropped its line already; the order
        // only reaches whichever life is there now.
        const holders = [...(entry?.owner === req.node ? [req.node] : []), ...Object.keys(entry?.sharers ?? {})];
        for (const node of holders)
          targets.push({ node, order: { action: "invalidate", key: req.key, stamp: basedOn } });
      }
      const reached = await Promise.all(
        targets.map(async (t): Promise<Reached> => ({ node: t.node, reply: await this.order(t.node, t.order) })),
      );
      if (reached.some((r) => r.reply?.ok === false)) {
        attempt++; // a node holds a newer grant than this leader's state: look again
        continue;
      }
      const ownerReply = reached.find((r) => r.node === owner);
      if (owner !== undefined && ownerReply?.reply === undefined) {
        // The latest value may be there alone (written in M): no one may read or write past it.
        return { type: "unavailable", key: req.key, node: owner };
      }
      const silent = reached.filter((r) => r.reply === undefined).map((r) => r.node);
      const leaseEnd = Math.max(0, ...silent.map((n) => entry?.sharers[n] ?? 0));
      if (leaseEnd > this.now()) {
        // Sharers that do not answer may still serve their line until their lease ends.
        await this.sleep(Math.max(1, this.replica.wallTime(leaseEnd) - this.clock() + 1));
        continue;
      }
      const writeback = ownerReply?.reply?.ok ? ownerReply.reply.dirty : undefined;
      const acked = reached.filter((r) => r.reply?.ok === true).map((r) => r.node);
      const cmd = commandFor(req, { basedOn, acked, writeback, leaseMs });
      // Each attempt is its own command: a conflict recorded for one must not answer the next.
      const applied = await this.propose(cmd, requestId === "" ? "" : `${requestId}#${attempt}`, signal);
      attempt++;
      if (applied.result.type === "conflict") continue;
      if (applied.push !== undefined) await this.push(req, applied.push);
      return applied.result;
    }
    return { type: "unavailable", key: req.key, node: "(directory: the key kept changing)" };
  }

  /**
   * A read of a key the directory does not have is answered with a ReadIndex read, not a
   * commit: nothing would be recorded (no holder of nothing), and the read confirms this peer
   * still leads with every committed entry applied.
   */
  private async absent(key: string): Promise<boolean> {
    if (this.table.entry(key) !== undefined) return false;
    await this.replica.read();
    await this.replica.whenServing();
    return this.table.entry(key) === undefined;
  }

  /** Phase two of an update-mode write: the holders reached in phase one get the new value. */
  private async push(req: DirectoryRequest, push: NonNullable<CacheApplied["push"]>): Promise<void> {
    if (req.op !== "write") return;
    const { stamp, basedOn, leaseMs } = push;
    const order: Order = { action: "update", key: req.key, value: req.value, stamp, basedOn, leaseMs };
    await Promise.all(push.nodes.map((n) => this.order(n, order)));
  }

  /** The node's answer, or undefined when it did not come within the order timeout. */
  private async order(node: string, order: Order): Promise<OrderReply | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.opts.orderTimeoutMs);
    });
    try {
      return await Promise.race([this.nodes.order(node, order).catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private now(): number {
    return this.replica.groupNow(this.clock());
  }

  private async propose(cmd: CacheCommand, id: string, signal?: AbortSignal): Promise<CacheApplied> {
    await this.replica.whenServing();
    signal?.throwIfAborted();
    const stamped = { ...cmd, now: this.now() };
    const applied = await this.replica.propose(encodeCommand(id, stamped));
    if (applied?.kind !== "cache") throw new Error("cache command applied as something else");
    return applied;
  }
}
