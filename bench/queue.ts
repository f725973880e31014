// `npm run bench -- queue`: batches enqueued; producers and consumers (receive + ack) at once; single messages.
import type { Client, Reply } from "./http.js";
import type { Iteration, Messages, Phase, Scenario, Timed } from "./load.js";

const BATCH = 100;
/** The issue's single-message latency target is at this concurrency, whatever --concurrency says. */
const SINGLE_CONCURRENCY = 8;
/** Long poll 1 s; a visibility far longer than a phase, so no message is delivered twice. */
const RECEIVE = { waitMs: 1000, visibilityMs: 30_000 };

/** Small JSON bodies, no keys (round-robin over the shards) and no ids (the server makes them). */
const messages = (n: number) => ({ messages: Array.from({ length: n }, (_, i) => ({ body: { bench: i } })) });

/** A queue of its own per phase, and per run (a --url server keeps the leftovers of earlier runs). */
const RUN = Date.now().toString(36);
const queuePath = (phase: string, concurrency: number) =>
  `/v1/queues/${encodeURIComponent(`bench-${RUN}-${phase}-c${concurrency}`)}`;

function enqueue(client: Client, path: string, body: ReturnType<typeof messages>, timed: Timed) {
  return timed(
    "enqueue",
    () => client.call("POST", `${path}/messages`, body),
    () => body.messages.length,
  );
}

/** The receipts of a receive's answer; undefined when it has none (not even an empty list). */
function receiptsOf(reply: Reply): string[] | undefined {
  const list = (reply.json as { messages?: { receipt?: unknown }[] } | undefined)?.messages;
  if (!Array.isArray(list) || !list.every((m) => typeof m.receipt === "string")) return undefined;
  return list.map((m) => m.receipt as string);
}

/** Receives up to `max` messages, then acks them all in one request. */
async function consume(client: Client, path: string, max: number, timed: Timed): Promise<void> {
  const received: Messages = (reply) => receiptsOf(reply)?.length ?? "200 no receipts";
  const reply = await timed(
    "receive",
    () => client.call("POST", `${path}/receive`, { max, ...RECEIVE }, true),
    received,
  );
  // Read here, not in `received` (which runs only inside the measured window): warm-up receives are acked too.
  const receipts = reply?.status === 200 ? (receiptsOf(reply) ?? []) : [];
  if (receipts.length === 0) return;
  // Every receipt is live (received just now, 30 s visibility): fewer acked is a server bug.
  const acked: Messages = (ack) => {
    const n = (ack.json as { acked?: unknown } | undefined)?.acked;
    return n === receipts.length ? n : "200 acked fewer than sent";
  };
  await timed("ack", () => client.call("POST", `${path}/ack`, { receipts }, true), acked);
}

function enqueueBatches(concurrency: number): Phase {
  const name = "enqueue-batch";
  const path = queuePath(name, concurrency);
  const body = messages(BATCH);
  return {
    name,
    concurrency,
    describe: `each worker: enqueue ${BATCH} messages per request (nobody receives)`,
    messagesOf: "enqueue",
    targets: [{ op: "enqueue", metric: "messages/s", min: 10_000, label: `enqueued, batches of ${BATCH}` }],
    iteration:
      (client): Iteration =>
      (_worker, _i, timed) =>
        enqueue(client, path, body, timed).then(() => undefined),
  };
}

function endToEnd(concurrency: number): Phase {
  const name = "end-to-end";
  // Half the workers produce, the other half consume; at least one of each.
  const producers = Math.max(1, Math.floor(concurrency / 2));
  const total = Math.max(concurrency, producers + 1);
  const path = queuePath(name, total);
  const body = messages(BATCH);
  return {
    name,
    concurrency: total,
    describe:
      `${producers} producers enqueue ${BATCH} per request while ${total - producers} consumers receive ` +
      `(max ${BATCH}, waitMs ${RECEIVE.waitMs}) and ack all receipts in one request; messages/s = acked`,
    messagesOf: "ack",
    targets: [{ op: "ack", metric: "messages/s", min: 5_000, label: `acked end to end, batches of ${BATCH}` }],
    iteration:
      (client): Iteration =>
      async (worker, _i, timed) => {
        if (worker < producers) await enqueue(client, path, body, timed);
        else await consume(client, path, BATCH, timed);
      },
  };
}

function single(): Phase {
  const name = "single";
  const path = queuePath(name, SINGLE_CONCURRENCY);
  const body = messages(1);
  return {
    name,
    concurrency: SINGLE_CONCURRENCY,
    describe: `each worker: enqueue 1 message, receive max 1 (waitMs ${RECEIVE.waitMs}), ack it; messages/s = acked`,
    messagesOf: "ack",
    targets: [
      { op: "enqueue", metric: "p95", max: 5, label: "single-message enqueue" },
      { op: "receive", metric: "p95", max: 5, label: "single-message receive" },
    ],
    iteration:
      (client): Iteration =>
      async (_worker, _i, timed) => {
        await enqueue(client, path, body, timed);
        await consume(client, path, 1, timed);
      },
  };
}

export const queue: Scenario = {
  name: "queue",
  describe: `a fresh queue per phase; a row's ops/s counts requests, msgs/s the messages they carried`,
  defaultConcurrency: [SINGLE_CONCURRENCY],
  phases: (concurrency) => [...concurrency.map(enqueueBatches), ...concurrency.map(endToEnd), single()],
};
