// syncctl lock acquire|release|renew|get|list
import { type Command, Option } from "commander";
import type { Context } from "../context.js";
import { example } from "../help.js";
import { cell, fields, table, when } from "../output.js";
import { integer } from "../values.js";

type Holder = { owner: string; mode: string; expiresAt: number };
type Waiter = { owner: string; mode: string };

export function registerLock(program: Command, ctx: Context): void {
  const lock = program.command("lock").description("acquire, release, renew and inspect locks");
  const owner = () => new Option("--owner <owner>", "who holds the lock (1-200 chars of [A-Za-z0-9._:@/-])");
  const ttl = () => new Option("--ttl-ms <ms>", "lease length in ms, 100..3600000 (service default 30000)");

  lock
    .command("acquire <resource>")
    .description("acquire a lock (exit 2 when it is held by others after --wait-ms)")
    .addOption(owner().makeOptionMandatory())
    .addOption(new Option("--mode <mode>", "lock mode").choices(["exclusive", "shared"]).default("exclusive"))
    .addOption(ttl().argParser(integer))
    .addOption(new Option("--wait-ms <ms>", "how long to wait for a conflicting holder, 0..60000").argParser(integer))
    .addHelpText("after", example("syncctl lock acquire deploy/prod --owner ci-42 --ttl-ms 60000 --wait-ms 5000"))
    .action(
      async (resource: string, o: { owner: string; mode: "exclusive" | "shared"; ttlMs?: number; waitMs?: number }) => {
        const grant = await ctx.client.locks.acquire(resource, o);
        ctx.out.result(grant, () =>
          fields([
            ["resource", grant.resource],
            ["owner", grant.owner],
            ["mode", grant.mode],
            ["fencingToken", String(grant.fencingToken)],
            ["expiresAt", when(grant.expiresAt, ctx.io.now())],
          ]),
        );
      },
    );

  lock
    .command("release <resource>")
    .description("release a lock, or withdraw the owner's wait for it (exit 2 when the owner holds nothing)")
    .addOption(owner().makeOptionMandatory())
    .addHelpText("after", example("syncctl lock release deploy/prod --owner ci-42"))
    .action(async (resource: string, o: { owner: string }) => {
      const reply = await ctx.client.locks.release(resource, o);
      ctx.out.result(reply, () =>
        reply.withdrawn ? `withdrew ${o.owner}'s wait for ${resource}` : `released ${resource} (${o.owner})`,
      );
    });

  lock
    .command("renew <resource>")
    .description("extend the owner's lease (exit 2 when it no longer holds the lock)")
    .addOption(owner().makeOptionMandatory())
    .addOption(ttl().argParser(integer))
    .addHelpText("after", example("syncctl lock renew deploy/prod --owner ci-42 --ttl-ms 60000"))
    .action(async (resource: string, o: { owner: string; ttlMs?: number }) => {
      const reply = await ctx.client.locks.renew(resource, o);
      ctx.out.result(reply, () => `renewed ${resource} (${o.owner}) until ${when(reply.expiresAt, ctx.io.now())}`);
    });

  lock
    .command("get <resource>")
    .description("show a lock's holders and waiters (a linearizable read)")
    .addHelpText("after", example("syncctl lock get deploy/prod"))
    .action(async (resource: string) => {
      const view = await ctx.client.locks.get(resource);
      ctx.out.result(view, () => {
        const head = fields([
          ["resource", view.resource],
          ["mode", view.mode ?? "free"],
        ]);
        return [head, holdersTable(view.holders, ctx.io.now()), waitersTable(view.waiters)]
          .filter(Boolean)
          .join("\n\n");
      });
    });

  lock
    .command("list")
    .description("list the locks held or waited for (at most 1000, sorted by resource)")
    .option("--prefix <prefix>", "only resources that start with this")
    .addHelpText("after", example("syncctl lock list --prefix deploy/"))
    .action(async (o: { prefix?: string }) => {
      const reply = await ctx.client.locks.list(o);
      ctx.out.result(reply, () => {
        if (reply.locks.length === 0) return "no locks";
        const rows = reply.locks.map((l) => [
          l.resource,
          l.mode ?? "-",
          l.holders.map((h) => h.owner).join(",") || "-",
          l.waiters.map((w) => w.owner).join(",") || "-",
        ]);
        const listed = table(["RESOURCE", "MODE", "HOLDERS", "WAITERS"], rows);
        return reply.truncated ? `${listed}\n(truncated: narrow it with --prefix)` : listed;
      });
    });
}

function holdersTable(holders: readonly Holder[], now: number): string {
  if (holders.length === 0) return "";
  return table(
    ["HOLDER", "MODE", "EXPIRES"],
    holders.map((h) => [cell(h.owner), h.mode, when(h.expiresAt, now)]),
  );
}

function waitersTable(waiters: readonly Waiter[]): string {
  if (waiters.length === 0) return "";
  return table(
    ["WAITER", "MODE"],
    waiters.map((w) => [cell(w.owner), w.mode]),
  );
}
