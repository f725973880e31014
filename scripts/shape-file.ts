// The cluster shape `npm start` keeps next to the data: <DATA_DIR>/cluster.json holds the
// RAFT_GROUPS, RAFT_PEERS and QUEUE_SHARDS the data was created with, and a start under other
// settings is refused (see docs/operations.md). Kept apart from start.ts so tests can run it
// without starting Miniflare.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseStoredShape, type StoredShape, shapeMismatch } from "../shared/cluster.js";

export const SHAPE_FILE = "cluster.json";

/**
 * Checks `configured` against `<dataDir>/cluster.json`: when the file is absent, writes it (a new
 * cluster, or data from before shapes were stored, which takes the settings it runs with now) and
 * answers undefined; when present, answers `shapeMismatch`'s message, or one saying the file is
 * unreadable. A message means: do not serve.
 */
export function checkShapeFile(dataDir: string, configured: StoredShape): string | undefined {
  const path = join(dataDir, SHAPE_FILE);
  if (!existsSync(path)) {
    mkdirSync(dataDir, { recursive: true });
    // Whole or not at all: a crash mid-write must not leave a file that later refuses every start.
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(configured, null, 2)}\n`);
    renameSync(tmp, path);
    return undefined;
  }
  let stored: StoredShape;
  try {
    stored = parseStoredShape(JSON.parse(readFileSync(path, "utf8")));
  } catch (err) {
    return (
      `${path} is not a valid cluster shape (${err instanceof Error ? err.message : String(err)}). It records the ` +
      'RAFT_GROUPS, RAFT_PEERS and QUEUE_SHARDS this data was created with, as {"groups":3,"peers":3,"queueShards":8}: ' +
      "restore it with those values (see docs/operations.md)."
    );
  }
  const mismatch = shapeMismatch(stored, configured);
  return mismatch === undefined ? undefined : `${mismatch}\n(the stored shape is in ${path})`;
}
