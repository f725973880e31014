// syncctl queue send|receive|ack|nack|stats|config|redrive|peek|purge|list|delete
import { Argument, type Command, Option } from "commander";
import type { Context } from "../context.js";
import { example } from "../help.js";
import { cell, fields, table, when } from "../output.js";
import { chunks, collect, integer, jsonOrString, nonEmptyLines, UsageError } from "../values.js";

/** The most messages the service takes in one send. */
const SEND_BATCH = 100;

interface SendOptions {
  body?: string[];
  key?: string;
  id?: string;
  delayMs?: number;
}

export function registerQueue(program: Command, ctx: Context): void {
  const queue = program.command("queue").description("send, receive and acknowledge messages; inspect queues");
  const stdinArg = () => new Argument("[stdin]", "- to read one body per line from standard input").choices(["-"]);

  queue
    .command("send <queue>")
    .description("send messages: each --body, or each line of stdin with -; a body is JSON, else a string")
    .addArgument(stdinArg())
    .option("--body <body>", "a message body (repeatable)", collect)
    .option("--key <key>", "ordering key: messages with one key go to one shard, in order")
    .option("--id <id>", "message id, for deduplication (only with a single message)")
    .addOption(new Option("--delay-ms <ms>", "deliver no sooner than this, 0..43200000").argParser(integer))
    .addHelpText(
      "after",
      example(
        `syncctl queue send jobs --body '{"task":"resize","id":7}'`,
        "tail -f events.log | syncctl queue send events -",
      ),
    )
    .action(async (name: string, stdin: string | undefined, o: SendOptions) => {
      const bodies = [...(o.body ?? []), ...(stdin === "-" ? await nonEmptyLines(ctx.io.stdinLines()) : [])];
      if (bodies.length === 0) throw new UsageError("nothing to send: give --body <body>, or - to read stdin");
      if (o.id !== undefined && bodies.length > 1) throw new UsageError("--id names one message; got several bodies");
      const messages = bodies.map((b) => ({ body: jsonOrString(b), key: o.key, id: o.id, delayMs: o.delayMs }));
      const sent: Array<{ id: string; shard: number }> = [];
      const show = () =>
        ctx.out.result({ messages: sent }, () =>
          table(
            ["ID", "SHARD"],
            sent.map((m) => [m.id, String(m.shard)]),
          ),
        );
      try {
        for (const batch of chunks(messages, SEND_BATCH))
          sent.push(...(await ctx.client.queues.send(name, batch)).messages);
      } catch (err) {
        // The batches before the failed one are enqueued: say which, then fail.
        if (sent.length > 0) show();
        throw err;
      }
      show();
    });

  queue
    .command("receive <queue>")
    .description("receive messages; each comes with the receipt that acks it")
    .addOption(new Option("--max <n>", "at most this many messages, 1..100 (default 1)").argParser(integer))
    .addOption(new Option("--visibility-ms <ms>", "hidden from others this long, 1000..43200000").argParser(integer))
    .addOption(new Option("--wait-ms <ms>", "long-poll up to this long for a message, 0..20000").argParser(integer))
    .option("--consumer <name>", "consumer name (the service keeps it for its logs)")
    .addHelpText(
      "after",
      example(
        "syncctl queue receive jobs --max 10 --wait-ms 5000",
        "syncctl --json queue receive jobs | jq -r '.messages[].receipt' | syncctl queue ack jobs -",
      ),
    )
    .action(async (name: string, o: { max?: number; visibilityMs?: number; waitMs?: number; consumer?: string }) => {
      const messages = await ctx.client.queues.receive(name, o);
      ctx.out.result({ messages }, () =>
        messages.length === 0
          ? "no messages"
          : table(
              ["RECEIPT", "ID", "ATTEMPTS", "KEY", "BODY"],
              messages.map((m) => [m.receipt, m.id, String(m.attempts), m.key ?? "-", cell(m.body)]),
            ),
      );
    });

  queue
    .command("ack <queue> <receipts...>")
    .description("acknowledge received messages (- reads receipts from stdin, one a line)")
    .addHelpText("after", example("syncctl queue ack jobs 3:1042:1 3:1043:1"))
    .action(async (name: string, given: string[]) => {
      const receipts = await receiptsFrom(ctx, given);
      const reply = await ctx.client.queues.ack(name, receipts);
      ctx.out.result(reply, () => `acked ${reply.acked} of ${receipts.length}${staleNote(reply.acked, receipts)}`);
    });

  queue
    .command("nack <queue> <receipts...>")
    .description("give received messages back for redelivery (- reads receipts from stdin)")
    .addOption(new Option("--delay-ms <ms>", "redeliver no sooner than this, 0..43200000").argParser(integer))
    .addHelpText("after", example("syncctl queue nack jobs 3:1042:1 --delay-ms 10000"))
    .action(async (name: string, given: string[], o: { delayMs?: number }) => {
      const receipts = await receiptsFrom(ctx, given);
      const reply = await ctx.client.queues.nack(name, receipts, o);
      ctx.out.result(
        reply,
        () => `released ${reply.released} of ${receipts.length}${staleNote(reply.released, receipts)}`,
      );
    });

  queue
    .command("stats <queue>")
    .description("message counts of a queue and of each shard")
    .addHelpText("after", example("syncctl queue stats jobs"))
    .action(async (name: string) => {
      const stats = await ctx.client.queues.stats(name);
      ctx.out.result(stats, () => {
        const head = fields([
          ["queue", stats.queue],
          ["visible", String(stats.visible)],
          ["inflight", String(stats.inflight)],
          ["delayed", String(stats.delayed)],
          ["dlq", String(stats.dlq)],
        ]);
        const shards = table(
          ["SHARD", "VISIBLE", "INFLIGHT"],
          stats.shards.map((s) => [String(s.shard), String(s.visible), String(s.inflight)]),
        );
        return `${head}\n\n${shards}`;
      });
    });

  queue
    .command("config <queue>")
    .description("set how many deliveries a message gets before the dead-letter queue, and the default visibility")
    .addOption(
      new Option("--max-attempts <n>", "deliveries before <queue>.dlq, 1..1000 (default 5)").argParser(integer),
    )
    .addOption(new Option("--visibility-ms <ms>", "default visibility timeout, 1000..43200000").argParser(integer))
    .addHelpText("after", example("syncctl queue config jobs --max-attempts 3 --visibility-ms 60000"))
    .action(async (name: string, o: { maxAttempts?: number; visibilityMs?: number }) => {
      const config = await ctx.client.queues.configure(name, o);
      ctx.out.result(config, () =>
        fields([
          ["queue", config.queue],
          ["maxAttempts", String(config.maxAttempts)],
          ["visibilityMs", String(config.visibilityMs)],
        ]),
      );
    });

  queue
    .command("redrive <queue>")
    .description("move dead letters from <queue>.dlq back to <queue>")
    .addOption(new Option("--max <n>", "at most this many").argParser(integer))
    .addHelpText("after", example("syncctl queue redrive jobs --max 100"))
    .action(async (name: string, o: { max?: number }) => {
      const reply = await ctx.client.queues.redrive(name, o);
      ctx.out.result(reply, () => `moved ${reply.moved} from ${name}.dlq to ${name}`);
    });

  queue
    .command("peek <queue>")
    .description("show visible messages without delivering them (no receipts)")
    .addOption(new Option("--max <n>", "at most this many, 1..100 (service default 10)").argParser(integer))
    .addHelpText("after", example("syncctl queue peek jobs.dlq --max 20"))
    .action(async (name: string, o: { max?: number }) => {
      const messages = await ctx.client.queues.peek(name, o);
      const now = ctx.io.now();
      ctx.out.result({ messages }, () =>
        messages.length === 0
          ? "no messages"
          : table(
              ["ID", "ATTEMPTS", "KEY", "ENQUEUED", "BODY"],
              messages.map((m) => [m.id, String(m.attempts), m.key ?? "-", when(m.enqueuedAt, now), cell(m.body)]),
            ),
      );
    });

  queue
    .command("purge <queue>")
    .description("drop the queue's visible and delayed messages (not those in flight)")
    .addHelpText("after", example("syncctl queue purge jobs"))
    .action(async (name: string) => {
      const reply = await ctx.client.queues.purge(name);
      ctx.out.result(reply, () => `purged ${reply.purged} from ${name}`);
    });

  queue
    .command("list")
    .description("every queue with its message counts")
    .addHelpText("after", example("syncctl queue list"))
    .action(async () => {
      const queues = await ctx.client.queues.list();
      ctx.out.result({ queues }, () =>
        queues.length === 0
          ? "no queues"
          : table(
              ["QUEUE", "VISIBLE", "INFLIGHT", "DELAYED", "DLQ"],
              queues.map((q) => [q.queue, String(q.visible), String(q.inflight), String(q.delayed), String(q.dlq)]),
            ),
      );
    });

  queue
    .command("delete <queue>")
    .description("delete a queue, its messages and config (its .dlq stays)")
    .addHelpText("after", example("syncctl queue delete scratch"))
    .action(async (name: string) => {
      const reply = await ctx.client.queues.delete(name);
      ctx.out.result(reply, () => `deleted ${name}`);
    });
}

/** The receipts named on the command line, a `-` among them standing for stdin's lines. */
async function receiptsFrom(ctx: Context, given: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of given)
    out.push(...(r === "-" ? (await nonEmptyLines(ctx.io.stdinLines())).map((l) => l.trim()) : [r]));
  if (out.length === 0) throw new UsageError("no receipts: stdin was empty");
  return out;
}

function staleNote(done: number, receipts: readonly string[]): string {
  return done < receipts.length ? " (the others were stale or unknown: redelivered, or already acked)" : "";
}
