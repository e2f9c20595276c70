# The winnow daemon (`winnow run`), as a container. Not built here (no Docker engine on our machines); the
# same steps run in test/integration/pack.test.ts without Docker (build, then a production install without
# optional dependencies).
#
#   docker build -t winnow .
#   docker run --rm -p 8080:8080 -v "$PWD/winnow.yaml:/etc/winnow/winnow.yaml:ro" winnow
#   docker run --rm -v "$PWD/winnow.yaml:/etc/winnow/winnow.yaml:ro" winnow migrate up --config /etc/winnow/winnow.yaml
#
# The image holds the compiled CLI and its production dependencies only: no TypeScript, no tsx, and not the
# embedded ClickHouse (@chdb/lib-*, ffi-rs: optional dependencies, for `winnow dev` on a workstation).
ARG NODE_IMAGE=node:20-bookworm-slim

# Build: every dependency but the optional ones, then tsc to dist/ (npm run build).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; no dependency needs its script for tsc.
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY src src
COPY dev dev
RUN npm run build

# Runtime: production dependencies from the lock file, the compiled CLI, a non-root user.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /opt/winnow
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin/winnow.mjs bin/winnow.mjs
COPY --from=build /src/dist dist
RUN chmod 755 bin/winnow.mjs && ln -s /opt/winnow/bin/winnow.mjs /usr/local/bin/winnow
# `node` (uid 1000) comes with the Node image; winnow writes nothing to disk.
USER node
EXPOSE 8080
# Ready: every pipeline migrated, ClickHouse and Kafka answering, each pipeline processing or standing by
# (README, HTTP API). Node's fetch: the slim image has no curl or wget. Assumes server.port 8080.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM (docker stop) finishes the slice in flight and releases the lease: give it time (--stop-timeout 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["winnow"]
# --host 0.0.0.0: the API listens on 127.0.0.1 by default, which a published port cannot reach in a container.
CMD ["run", "--config", "/etc/winnow/winnow.yaml", "--host", "0.0.0.0"]
