// syncctl cache get|put|del|node
import { type Command, Option } from "commander";
import { errorFromProblem } from "../../client/index.js";
import type { Context } from "../context.js";
import { example } from "../help.js";
import { cell, fields, table } from "../output.js";
import { allText, jsonOrString } from "../values.js";

export function registerCache(program: Command, ctx: Context): void {
  const cache = program.command("cache").description("read and write the coherent cache; inspect cache nodes");
  const nodeOption = "--node <node>";
  const nodeHelp = "the cache node to go through, n1..nN (service default n1)";

  cache
    .command("get <key>")
    .description("read a key (exit 4 when it has no value)")
    .option(nodeOption, nodeHelp)
    .addHelpText("after", example("syncctl cache get user:42 --node n2"))
    .action(async (key: string, o: { node?: string }) => {
      const reply = await ctx.client.cache.get(key, o);
      if (reply === undefined) {
        // The client answers a 404 as undefined (a miss is not exceptional to a program); to a shell it is exit 4.
        throw errorFromProblem(404, {
          type: "/problems/not-found",
          title: "Not found",
          status: 404,
          detail: `${key} has no value${o.node === undefined ? "" : ` on ${o.node} (or there is no node ${o.node})`}`,
        });
      }
      ctx.out.result(reply, () =>
        fields([
          ["key", reply.key],
          ["node", reply.node],
          ["state", reply.state],
          ["hit", String(reply.hit)],
          ["value", cell(reply.value, Number.POSITIVE_INFINITY)],
        ]),
      );
    });

  cache
    .command("put <key> <value>")
    .description("write a value: JSON when it parses, else the string; - reads it from stdin")
    .option(nodeOption, nodeHelp)
    .addOption(
      new Option("--propagation <how>", "what other nodes' copies get: dropped, or the new value").choices([
        "invalidate",
        "update",
      ]),
    )
    .addHelpText("after", example(`syncctl cache put user:42 '{"name":"Ada"}'`, "syncctl cache put motd - < motd.txt"))
    .action(async (key: string, text: string, o: { node?: string; propagation?: "invalidate" | "update" }) => {
      const raw = text === "-" ? await allText(ctx.io.stdinLines()) : text;
      const reply = await ctx.client.cache.put(key, jsonOrString(raw), o);
      ctx.out.result(reply, () => `stored ${reply.key} on ${reply.node} (${reply.state})`);
    });

  cache
    .command("del <key>")
    .alias("delete")
    .description("delete a key (exit 0 also when it had no value: the reply says deleted false)")
    .option(nodeOption, nodeHelp)
    .addHelpText("after", example("syncctl cache del user:42"))
    .action(async (key: string, o: { node?: string }) => {
      const reply = await ctx.client.cache.delete(key, o);
      ctx.out.result(reply, () => (reply.deleted ? `deleted ${key}` : `${key} had no value`));
    });

  cache
    .command("node <node>")
    .description("a cache node's capacity, counters and lines")
    .addHelpText("after", example("syncctl cache node n1"))
    .action(async (name: string) => {
      const reply = await ctx.client.cache.node(name);
      ctx.out.result(reply, () => {
        const s = reply.stats;
        const head = fields([
          ["node", reply.node],
          ["capacity", String(reply.capacity)],
          ["lines", String(reply.lines.length)],
          ["hitRate", `${(s.hitRate * 100).toFixed(1)}%`],
          ["hits", String(s.hits)],
          ["misses", String(s.misses)],
          ["evictions", String(s.evictions)],
          ["invalidations", String(s.invalidations)],
          ["writebacks", String(s.writebacks)],
          ["updates", String(s.updates)],
        ]);
        if (reply.lines.length === 0) return head;
        const lines = table(
          ["KEY", "STATE"],
          reply.lines.map((l) => [l.key, l.state]),
        );
        return `${head}\n\n${lines}`;
      });
    });
}
