// `npm start`: the whole service in one process, on Miniflare (scripts/serve.ts), with its data
// persisted under DATA_DIR. `npm run node` (scripts/node.ts) is the multi-process counterpart.
import { resolve } from "node:path";
import { configuredShape } from "../shared/cluster.js";
import {
  bindingsFrom,
  currentBundle,
  ensurePortFree,
  insecureLocal,
  loadSettings,
  portSetting,
  readBundle,
  serve,
} from "./serve.js";
import { checkShapeFile } from "./shape-file.js";

async function main(): Promise<void> {
  const settings = loadSettings();
  const port = portSetting(settings, 8787);
  // Loopback unless told otherwise (a container sets HOST=0.0.0.0).
  const host = settings.HOST ?? "127.0.0.1";
  const dataDir = resolve(settings.DATA_DIR ?? ".data");
  await ensurePortFree(host, port);

  const bindings = { ...bindingsFrom(settings), ...insecureLocal(settings, host, (line: string) => console.log(line)) };
  // The data was created under one RAFT_GROUPS, RAFT_PEERS and QUEUE_SHARDS; never serve it under others.
  const shape = configuredShape(bindings);
  const mismatch = checkShapeFile(dataDir, shape);
  if (mismatch !== undefined) {
    console.error(mismatch);
    process.exit(2);
  }

  const say = (line: string) => console.log(line);
  const bundle = (settings.BUNDLE_DIR && readBundle(settings.BUNDLE_DIR)) || (await currentBundle(say));
  say("starting workerd...");
  const url = await serve({
    bundle,
    bindings,
    host,
    port,
    dataDir,
    inspectorPort: settings.INSPECTOR_PORT ? Number(settings.INSPECTOR_PORT) : undefined,
  });
  say(`listening on ${url.origin} (data in ${dataDir})`);
  say(
    `cluster: ${shape.groups} Raft groups x ${shape.peers} peers, each peer a Durable Object (g<group>-p<peer>); ` +
      `${shape.queueShards} shards per queue`,
  );
  // Wake the peers now, so the groups elect leaders before the first request.
  fetch(new URL("/readyz", url)).catch(() => undefined);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
