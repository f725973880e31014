// `npm run bench -- locks`: acquire then release, each worker on resources of its own.
import type { Scenario } from "./load.js";

/**
 * Each worker cycles through this many resources of its own: no two workers contend (this measures
 * the replicated write path, not lock conflicts), and the resources still spread over the Raft groups.
 */
export const RESOURCES_PER_WORKER = 50;

export const locks: Scenario = {
  name: "locks",
  describe: `each worker: acquire bench-<worker>-<i % ${RESOURCES_PER_WORKER}> (exclusive, ttlMs 30000), then release it; each call is one op`,
  iteration: (client) => async (worker, i, timed) => {
    const owner = `w${worker}`;
    const path = `/v1/locks/${encodeURIComponent(`bench-${worker}-${i % RESOURCES_PER_WORKER}`)}`;
    const acquired = await timed("acquire", () => client.call("POST", `${path}/acquire`, { owner, ttlMs: 30_000 }));
    // Releasing a lock that was not granted would only add not-holder errors to the count.
    if (acquired?.status !== 200) return;
    await timed("release", () => client.call("POST", `${path}/release`, { owner }));
  },
};
