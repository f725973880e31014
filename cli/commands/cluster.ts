// syncctl cluster status|add-peer|remove-peer
import type { Command } from "commander";
import type { Context } from "../context.js";
import { example } from "../help.js";
import { table } from "../output.js";

export function registerCluster(program: Command, ctx: Context): void {
  const cluster = program.command("cluster").description("the Raft groups and their membership");

  cluster
    .command("status")
    .description("every group's leader, term and commit index, and each peer's role and progress")
    .addHelpText("after", example("syncctl cluster status"))
    .action(async () => {
      const status = await ctx.client.cluster.status();
      ctx.out.result(status, () =>
        table(
          ["GROUP", "LEADER", "TERM", "COMMIT", "PEER", "ROLE", "MATCH", "CONTACT-MS"],
          // One row per peer; the group's own columns only on its first row, so each group reads as a block.
          status.groups.flatMap((g) =>
            g.peers.map((p, i) => [
              i === 0 ? g.group : "",
              i === 0 ? (g.leader ?? "none") : "",
              i === 0 ? String(g.term) : "",
              i === 0 ? String(g.commitIndex) : "",
              p.id,
              p.role,
              String(p.matchIndex),
              p.lastContactMs === null || p.lastContactMs === undefined ? "-" : String(p.lastContactMs),
            ]),
          ),
        ),
      );
    });

  cluster
    .command("add-peer <id>")
    .description("add a peer (p1, p2, ...) to every group: a learner, then a voter once caught up (admin)")
    .option("--peer-url <url>", "where the new node listens (multi-process clusters, when it did not JOIN itself)")
    .addHelpText(
      "after",
      example("syncctl cluster add-peer p4", "syncctl cluster add-peer p4 --peer-url http://10.0.0.4:8787"),
    )
    .action(async (id: string, o: { peerUrl?: string }) => {
      const reply = await ctx.client.cluster.addPeer(id, { url: o.peerUrl });
      ctx.out.result(reply, () => `adding ${id} to every group (a learner until it catches up)`);
    });

  cluster
    .command("remove-peer <id>")
    .description("remove a peer from every group (admin)")
    .addHelpText("after", example("syncctl cluster remove-peer p4"))
    .action(async (id: string) => {
      const reply = await ctx.client.cluster.removePeer(id);
      ctx.out.result(reply, () => `removed ${id} from every group`);
    });
}
