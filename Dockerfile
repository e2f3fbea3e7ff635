# syntax=docker/dockerfile:1
#
# diginfractl container image: the init container (`artifact install`) and the sidecar (`artifact follow`)
# of the Helm chart in charts/diginfractl. Build it with scripts/image.sh (podman; prints the image's
# size and contents, pushes it) or `docker buildx build .`. Multi-arch: nothing below depends on the CPU
# architecture (`--platform linux/amd64,linux/arm64`, with an emulator for the other one).
# NODE_IMAGE names the base: the public node:24-bookworm-slim, or any image with Node 24 and npm in
# /usr/local and Debian's useradd (scripts/image.sh builds one where no public registry is reachable).
# No HEALTHCHECK: the kubelet ignores it and probes /healthz and /readyz itself.
#
# Stages:
#   build   npm ci (with devDependencies) + tsc + bundle -> /src/dist. Runs on the build machine's own
#           platform: the compiled JavaScript is the same for every target.
#   deps    npm ci --omit=dev: production dependencies only (no typescript, vitest, nor the `node`
#           devDependency that carries a Node binary from npm).
#   runtime node 24 slim + /app/{dist,node_modules,package.json}; non-root UID 65532; writes only to the
#           mounted state dir and /tmp, so it runs with readOnlyRootFilesystem.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Behind a TLS-intercepting proxy, give its CA as the build secret npm-ca (scripts/image.sh passes the
# file NODE_EXTRA_CA_CERTS names): it is mounted for npm only, never stored in a layer.
RUN --mount=type=secret,id=npm-ca,required=false \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
 && npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: production dependencies are plain JavaScript; no install script needs to run.
RUN --mount=type=secret,id=npm-ca,required=false \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="diginfractl" \
      org.opencontainers.image.description="Install and follow Diginfra rules files and plugins from OCI registries" \
      org.opencontainers.image.source="https://github.com/diginfra/diginfractl" \
      org.opencontainers.image.documentation="https://github.com/diginfra/diginfractl/blob/main/docs/kubernetes.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Diginfra" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./

# `diginfractl` on PATH is the bundled bin (scripts/bundle.mjs; it starts with `#!/usr/bin/env -S ...`).
# Node resolves the symlink, so what it loads on demand (pino, cron-parser) comes from /app/node_modules.
# The state dir is owned by the runtime user so the image also works without a volume there
# (Kubernetes mounts a hostPath over it).
RUN groupadd --system --gid 65532 diginfractl \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin diginfractl \
 && chmod 0755 /app/dist/bin/diginfractl.cjs \
 && ln -s /app/dist/bin/diginfractl.cjs /usr/local/bin/diginfractl \
 && mkdir -p /etc/diginfractl /var/lib/diginfractl/cache /var/lib/diginfractl/config \
 && chown -R 65532:65532 /var/lib/diginfractl

ENV NODE_ENV=production \
    HOME=/tmp \
    XDG_CACHE_HOME=/var/lib/diginfractl/cache \
    XDG_CONFIG_HOME=/var/lib/diginfractl/config

USER 65532:65532
# 9376: `artifact follow --metrics-addr 0.0.0.0:9376` serves /metrics, /healthz and /readyz.
EXPOSE 9376
ENTRYPOINT ["diginfractl"]
CMD ["--help"]
