import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// One `vitest run` runs every project; pick one with `--project unit|cluster|browser|workers`.
export default defineConfig({
  test: {
    // `npm run coverage`: the unit project (Raft core, models, both simulators' seeds) over the pure logic in shared/.
    // v8 coverage cannot see inside workerd, so the workers project is not measured.
    coverage: {
      provider: "v8",
      include: ["shared/**/*.ts"],
      reporter: ["text", "text-summary"],
      // A failing test still gets its report (the figures are about what ran).
      reportOnFailure: true,
    },
    projects: [
      {
        // Pure TypeScript (Raft core, simulator, state machines) in plain Node: fast and deterministic.
        test: {
          name: "unit",
          environment: "node",
          include: ["test/**/*.test.ts"],
          exclude: ["test/workers/**", "test/cluster/**", "test/browser/**", "**/node_modules/**"],
        },
      },
      {
        // Real processes: `npm start` servers killed and restarted (slower, seconds per test).
        test: {
          name: "cluster",
          environment: "node",
          include: ["test/cluster/**/*.test.ts"],
          testTimeout: 120_000,
        },
      },
      {
        // The dashboard in Debian's Chromium (playwright-core) against a real `npm start` server.
        test: {
          name: "browser",
          environment: "node",
          include: ["test/browser/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // The Worker itself inside workerd, configured from wrangler.toml.
        // Fault injection is on so the partition and crash tests can use the admin routes.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // Compacting often makes every test exercise snapshots, chunked storage and InstallSnapshot.
            // Short cache leases keep the tests that cut a cache node off from waiting long.
            // INSECURE_LOCAL: the admin routes are open without ADMIN_TOKEN, as under `npm start` on loopback.
            miniflare: {
              bindings: {
                FAULT_INJECTION: "true",
                RAFT_COMPACT_EVERY: "100",
                CACHE_LEASE_MS: "2000",
                INSECURE_LOCAL: "true",
              },
            },
          }),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
        },
      },
    ],
  },
});
