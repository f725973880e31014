/**
 * npm run bench:peer-memory [-- --messages 100000 --concurrency 8 --idle 0]
 * A real server (`npm start` on Miniflare, fresh DATA_DIR) takes N 1-KB messages through send,
 * receive and ack (batches of 10); then it reports the workerd process's resident memory (every
 * peer of every group lives in it), the size of the Durable Objects' storage, and the queue left.
 */
import { execFileSync } from "node:child_process";
import { intFlag } from "../scripts/args.js";
import { Client } from "./http.js";
import { startServer, waitReady } from "./server.js";

const num = (name: string, fallback: number): number => intFlag(name) ?? fallback;

const messages = num("messages", 100_000);
const concurrency = num("concurrency", 8);
/** Seconds to wait afterwards (past the retry and dedup windows), then measure again. */
const idle = num("idle", 0);
const BATCH = 10;
const body = "x".repeat(1000); // 1,002 bytes of JSON

/** Resident memory of every workerd process on this machine, in MB. */
function workerdRssMb(): number {
  const out = execFileSync("ps", ["-C", "workerd", "-o", "rss="], { encoding: "utf8" });
  return out.split("\n").reduce((sum, line) => sum + (Number(line.trim()) || 0), 0) / 1024;
}

function duMb(dir: string): number {
  return Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]) / 1024;
}

const server = await startServer();
try {
  await waitReady(server.origin, server);
  const client = new Client(server.origin, concurrency);
  console.log(`workerd before: ${workerdRssMb().toFixed(0)} MB resident`);
  let next = 0;
  let acked = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages) {
        const first = next;
        next += BATCH;
        const batch = Array.from({ length: Math.min(BATCH, messages - first) }, (_, j) => ({
          body,
          id: `m${first + j}`,
        }));
        const sent = await client.call("POST", "/v1/queues/mem/messages", { messages: batch });
        if (sent.status !== 200) throw new Error(`send: ${sent.outcome}`);
        const got = await client.call("POST", "/v1/queues/mem/receive", { max: BATCH, visibilityMs: 60_000 }, true);
        const receipts = ((got.json as { messages?: { receipt: string }[] })?.messages ?? []).map((m) => m.receipt);
        if (receipts.length === 0) continue;
        const ack = await client.call("POST", "/v1/queues/mem/ack", { receipts }, true);
        acked += (ack.json as { acked: number }).acked;
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  // Whatever a receive missed (another worker's batch) is taken now.
  for (;;) {
    const got = await client.call("POST", "/v1/queues/mem/receive", { max: 100 }, true);
    const receipts = ((got.json as { messages?: { receipt: string }[] })?.messages ?? []).map((m) => m.receipt);
    if (receipts.length === 0) break;
    const ack = await client.call("POST", "/v1/queues/mem/ack", { receipts }, true);
    acked += (ack.json as { acked: number }).acked;
  }
  const left = await client.call("GET", "/v1/queues/mem", undefined, true);
  console.log(`${messages} messages of 1 KB sent, received and acked in ${seconds.toFixed(1)} s (${acked} acks)`);
  console.log(`queue now: ${JSON.stringify(left.json)}`);
  console.log(
    `workerd after: ${workerdRssMb().toFixed(0)} MB resident; storage ${duMb(server.dataDir).toFixed(1)} MB on disk`,
  );
  if (idle > 0) {
    await new Promise((r) => setTimeout(r, idle * 1000));
    // One command per group moves group time on, so each forgets what its windows let go.
    for (let i = 0; i < 24; i++) {
      await client.call("POST", "/v1/queues/mem/messages", { messages: [{ body: 0, key: `k${i}` }] });
    }
    console.log(
      `after ${idle} s idle: ${workerdRssMb().toFixed(0)} MB resident; storage ${duMb(server.dataDir).toFixed(1)} MB`,
    );
  }
  await client.close();
} finally {
  await server.stop();
}
