// syncctl admin partition|isolate|heal|crash|restart|clock: the fault-injection routes, for watching
// a failover from a shell (the service needs FAULT_INJECTION=true and the admin token).
import type { Command } from "commander";
import { parsePeerId } from "../../shared/cluster.js";
import type { Context } from "../context.js";
import { example } from "../help.js";
import { UsageError } from "../values.js";

/** `p1,p2` → ["p1", "p2"]: one side of a partition. */
function side(text: string): string[] {
  const peers = text.split(",").map((p) => p.trim());
  if (peers.some((p) => parsePeerId(p) === undefined)) throw new UsageError(`${text}: expected peers like p1,p2`);
  return peers;
}

/** A clock offset in ms: an integer, negative for behind. */
function offset(text: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${text}: expected an integer number of ms`);
  return Number(text);
}

export function registerAdmin(program: Command, ctx: Context): void {
  const admin = program
    .command("admin")
    .description("fault injection: partitions, crashes and clock offsets (FAULT_INJECTION=true, admin token)");

  admin
    .command("partition <side...>")
    .description("cut the peers into sides that stop hearing each other, in every group")
    .addHelpText("after", example("syncctl admin partition p1 p2,p3"))
    .action(async (sides: string[]) => {
      const parsed = sides.map(side);
      if (parsed.length < 2) throw new UsageError("a partition needs at least two sides");
      const reply = await ctx.client.admin.partition(parsed);
      ctx.out.result(reply, () => `partitioned: ${reply.partitioned.map((s) => s.join(",")).join(" | ")}`);
    });

  admin
    .command("isolate <peer>")
    .description("cut one peer off from every other member (read from the cluster's status)")
    .addHelpText("after", example("syncctl admin isolate p1"))
    .action(async (peer: string) => {
      side(peer);
      const { groups } = await ctx.client.cluster.status();
      const others = [...new Set(groups.flatMap((g) => g.peers.map((p) => p.id)))].filter((p) => p !== peer).sort();
      const reply = await ctx.client.admin.partition([[peer], others]);
      ctx.out.result(reply, () => `isolated ${peer} from ${others.join(",")}`);
    });

  admin
    .command("heal")
    .description("restore every link")
    .addHelpText("after", example("syncctl admin heal"))
    .action(async () => {
      const reply = await ctx.client.admin.heal();
      ctx.out.result(reply, () => "healed");
    });

  admin
    .command("crash <peer>")
    .description("the peer loses its memory and stops answering, in every group")
    .addHelpText("after", example("syncctl admin crash p2"))
    .action(async (peer: string) => {
      const reply = await ctx.client.admin.crash(peer);
      ctx.out.result(reply, () => `crashed ${reply.crashed}`);
    });

  admin
    .command("restart <peer>")
    .description("a crashed peer recovers from its storage")
    .addHelpText("after", example("syncctl admin restart p2"))
    .action(async (peer: string) => {
      const reply = await ctx.client.admin.restart(peer);
      ctx.out.result(reply, () => `restarted ${reply.restarted}`);
    });

  admin
    .command("clock <peer> <offsetMs>")
    .description("run the peer's clock that far ahead (negative: behind) of real time; 0 restores it")
    .addHelpText("after", example("syncctl admin clock p3 5000", "syncctl admin clock p3 -- -5000"))
    .action(async (peer: string, ms: string) => {
      const reply = await ctx.client.admin.clock(peer, offset(ms));
      ctx.out.result(reply, () => `${reply.peer}'s clock runs ${reply.offsetMs} ms off real time`);
    });
}
