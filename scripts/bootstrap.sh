#!/usr/bin/env bash
# Make a Debian machine ready to build and test diginfractl: system packages the tests need, the npm
# dependencies (Node 24 itself comes from the `node` devDependency), and a build. Idempotent: each
# step is skipped when it is already done, so a second run takes only the build's few seconds.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'bootstrap: %s\n' "$*"; }

# System packages: docker-registry (the real registry the tests start), openssl (test certificates),
# npm (to install everything else), prometheus (its promtool unit-tests the chart's alerts; a test scrapes
# the agent with it), and for the container image test (test/k8s/image-e2e.test.ts, scripts/image.sh):
# podman with runc, and debootstrap for the image's local Debian base.
missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)

if ((${#missing[@]} > 0)); then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  log "Debian packages present (docker-registry, openssl, prometheus, npm, podman, runc, debootstrap)"
fi

# npm ci when node_modules is missing or older than the lockfile (npm writes node_modules/.package-lock.json
# on every install, so it is the date of the installed tree).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing npm dependencies (npm ci)"
  npm ci
else
  log "npm dependencies up to date"
fi

log "building (npm run build)"
npm run build
log "ready"
