# credproxy container image. Build: docker build -t credproxy .
# Run:   docker run -p 127.0.0.1:8080:8080 -v credproxy-data:/app/data \
#          -v "$PWD/config:/app/config:ro" -e CREDPROXY_ADMIN_TOKEN=... -e CREDPROXY_SECRET_KEY=... credproxy
# See "Docker" in docs/operations.md for what a config served on 0.0.0.0 must contain.

# ---- build: compile TypeScript and better-sqlite3's native module -------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 is compiled here from source (no prebuilt download), against the headers
# that ship in the node image, so the runtime stage needs no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile src/ before it is copied; the one native
# dependency is then built explicitly.
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3 --build-from-source
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Then drop dev dependencies and better-sqlite3's build leftovers (objects, SQLite sources):
# only build/Release/better_sqlite3.node is loaded at run time.
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf node_modules/better-sqlite3/build/Release/obj* node_modules/better-sqlite3/build/Release/*.a \
           node_modules/better-sqlite3/build/Release/test_extension.node node_modules/better-sqlite3/deps

# ---- runtime: only what `credproxy start` needs, as a non-root user ---------------------------
FROM node:22-bookworm-slim
# glibc keeps freed native memory in per-thread arenas and above a moving trim threshold, so
# RSS drifts up and down by tens of MiB under steady load while the heap stays flat; fixed
# thresholds kept it within 5-8 MiB over 1,000,000 requests (docs/performance.md).
ENV NODE_ENV=production \
    CREDPROXY_CONFIG=/app/config \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY bin ./bin
COPY config ./config
# The image's own settings: clients must present CREDPROXY_CLIENT_KEY (a non-loopback listen
# address without client authentication is refused at start).
COPY docker/credproxy.yaml ./config/credproxy.yaml
# The embedded store (sqlite:./data/credproxy.db), the generated storage key and admin token
# live in /app/data, relative to the working directory: keep it on a volume.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Inside a container the port must be reachable from outside it, so listen on all interfaces.
CMD ["node", "bin/credproxy.js", "start", "--host", "0.0.0.0", "--port", "8080", "--log-format", "json"]
