// The syncctl command tree (commander) and `run`, which maps whatever happened to an exit status.
import { Command, CommanderError, Option } from "commander";
import { registerAdmin } from "./commands/admin.js";
import { registerBench } from "./commands/bench.js";
import { registerCache } from "./commands/cache.js";
import { registerCluster } from "./commands/cluster.js";
import { registerLock } from "./commands/lock.js";
import { registerQueue } from "./commands/queue.js";
import { Context, DEFAULT_URL, type GlobalOptions, type Io } from "./context.js";
import { EXIT, type ExitCode, exitCodeFor, exitCodesHelp } from "./exit-codes.js";
import { Output } from "./output.js";

export const VERSION = "0.0.0";

export function buildProgram(ctx: Context): Command {
  const program = new Command("syncctl")
    .description("Command-line client of the Raft-replicated lock, queue and cache service.")
    .version(VERSION)
    .addOption(new Option("--url <url>", `service URL (env SYNC_URL, default ${DEFAULT_URL})`))
    .addOption(
      new Option("--token <token>", "bearer token: API_TOKEN, or ADMIN_TOKEN for admin routes (env SYNC_TOKEN)"),
    )
    .option("--json", "print results as one line of JSON on stdout, errors as a problem JSON on stderr")
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => ctx.io.stdout(s),
      writeErr: (s) => ctx.io.stderr(s),
      // run() prints commander's errors itself, so that --json turns them into a problem JSON too.
      outputError: () => {},
    })
    .exitOverride()
    .addHelpText("afterAll", `\n${exitCodesHelp()}`)
    .hook("preAction", (_program, action) => ctx.configure(action.optsWithGlobals<GlobalOptions>()));
  // Subcommands copy the settings above (output, exitOverride) when they are created, so these come last.
  registerLock(program, ctx);
  registerQueue(program, ctx);
  registerCache(program, ctx);
  registerCluster(program, ctx);
  registerAdmin(program, ctx);
  registerBench(program, ctx);
  return program;
}

/** Runs one command line (without `node syncctl`) and answers its exit status; never throws. */
export async function run(argv: readonly string[], io: Io): Promise<ExitCode> {
  const ctx = new Context(io, VERSION);
  try {
    await buildProgram(ctx).parseAsync([...argv], { from: "user" });
    return EXIT.ok;
  } catch (err) {
    // Help and --version end through exitOverride with status 0; `syncctl` alone shows help, status 64.
    if (err instanceof CommanderError && (err.exitCode === 0 || err.code === "commander.help")) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    // A parse error comes before preAction: --json is then known only from the raw arguments.
    new Output(io, ctx.jsonRequested || wantsJson(argv)).error(err);
    return exitCodeFor(err);
  }
}

/** Whether `--json` appears among the options (before any `--`, after which everything is an argument). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).includes("--json");
}
