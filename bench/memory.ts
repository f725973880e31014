/**
 * npm run bench:memory [-- --messages 100000 --batch 1 --rate 1000]
 * The exactly-once memory under a queue's steady work: N 1-KB messages sent, received and acked
 * through one group's replicated state (createGroupMachine: the exact state every peer applies).
 * Prints the snapshot size and the heap right after, and again once the retry windows passed.
 */

import { intFlag } from "../scripts/args.js";
import { createGroupMachine } from "../shared/group/core.js";
import { encodeCommand } from "../shared/replica/dedup.js";

const num = (name: string, fallback: number): number => intFlag(name) ?? fallback;

const messages = num("messages", 100_000);
const batch = num("batch", 1);
/** Commands per second of group time; ~1,000 requests/s is what one Durable Object takes. */
const rate = num("rate", 1000);
const { machine } = createGroupMachine();
const body = "x".repeat(1024);
let index = 0;
let at = 1_700_000_000_000;
const apply = (id: string, cmd: object) =>
  machine.apply({
    term: 1,
    index: ++index,
    type: "normal",
    data: encodeCommand(id, { ...cmd, now: at }),
  });
const heapMb = () => {
  globalThis.gc?.();
  return (process.memoryUsage().heapUsed / 1e6).toFixed(1);
};

const started = Date.now();
for (let i = 0; i < messages; i += batch) {
  at += (3 * 1000) / rate; // three commands per batch
  const n = Math.min(batch, messages - i);
  const msgs = Array.from({ length: n }, (_, j) => ({ id: `m${i + j}`, body }));
  apply(`e${i}:0`, { type: "enqueue", queue: "q", shard: 0, messages: msgs });
  const got = apply(`r${i}:0`, { type: "receive", queue: "q", shard: 0, max: n });
  const receipts =
    got?.kind === "queue" && got.result.type === "received" ? got.result.messages.map((m) => m.receipt) : [];
  apply(`a${i}:0`, { type: "ack", queue: "q", shard: 0, receipts });
}
const ms = Date.now() - started;
const snap = machine.snapshot().length;
console.log(
  `${messages} messages of 1 KB in batches of ${batch}: ${((3 * messages) / batch / (ms / 1000)).toFixed(0)} applies/s`,
);
console.log(
  `  right after: snapshot ${(snap / 1e6).toFixed(1)} MB, ${machine.size} request records, heap ${heapMb()} MB`,
);
at += 6 * 60_000;
apply("later:0", { type: "ack", queue: "q", shard: 0, receipts: [] });
console.log(
  `  6 minutes later: snapshot ${(machine.snapshot().length / 1e3).toFixed(1)} KB, ${machine.size} request records, heap ${heapMb()} MB`,
);
