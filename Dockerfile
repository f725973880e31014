# syntax=docker/dockerfile:1
# The node image: one cluster node (one Miniflare/workerd process) per container, configured from
# its environment (NODE_ID, PEERS or JOIN, CLUSTER_SECRET, ...: see docs/deployment_guide.md).
#
#   docker build -t raft-locks-node .
#   docker compose up -d                      # three nodes (docker-compose.yml)
#
# Base: Debian bookworm. workerd's binaries need glibc >= 2.35, so Alpine (musl) and bullseye fail.
ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: the Worker bundle and the compiled launcher, dist/node/ -------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV WRANGLER_SEND_METRICS=false CI=true
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build:node

# --- deps: only miniflare (and what it needs), at the lockfile's exact versions ----------------
# A package.json naming miniflare alone (with the project's `overrides`, which pin workerd and
# sharp), installed beside the project's lockfile: npm keeps every locked version that still
# applies (workerd, undici, ...) and drops the rest.
FROM ${NODE_IMAGE} AS deps
WORKDIR /deps
COPY package.json package-lock.json ./
RUN node -e ' \
      const fs = require("node:fs"); \
      const root = JSON.parse(fs.readFileSync("package.json", "utf8")); \
      const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8")); \
      const miniflare = lock.packages["node_modules/miniflare"]; \
      if (!miniflare) throw new Error("miniflare is not in package-lock.json"); \
      const pkg = { name: "raft-locks-node", private: true, type: "module", dependencies: { miniflare: miniflare.version }, overrides: root.overrides ?? {} }; \
      fs.writeFileSync("package.json", JSON.stringify(pkg, null, 2) + "\n");' \
 && npm install --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime ----------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# One container is one node: its data in $DATA_DIR/<NODE_ID>, so the scaled replicas can share one
# volume (each joiner's id comes from its hostname).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8787 \
    DATA_DIR=/data \
    WRANGLER_SEND_METRICS=false
WORKDIR /app
COPY --from=deps /deps/package.json ./package.json
COPY --from=deps /deps/node_modules ./node_modules
COPY --from=build /src/dist/node ./dist/node
# Mount a volume at /data: a new named volume takes this directory's owner, so `node` can write.
RUN mkdir -p /data && chown node:node /data
# The image's unprivileged `node` user (uid 1000).
USER node
EXPOSE 8787
# Slim images have no curl: Node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# A node started with JOIN asks to be removed from the cluster on SIGTERM before it exits: give it
# time (docker stop -t 60, compose stop_grace_period). Run with --init (compose: init: true) so
# PID 1 reaps workerd's children.
STOPSIGNAL SIGTERM
CMD ["node", "dist/node/node.mjs"]
