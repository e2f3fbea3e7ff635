#!/usr/bin/env bash
# Builds the diginfractl container image from the Dockerfile with podman, prints its size and what is
# in it, and pushes it when given a destination. docs/kubernetes.md ("The container image") says more.
#
#   scripts/image.sh [options] [DESTINATION]
#
#   DESTINATION          registry/repository[:tag] to push to, e.g. 127.0.0.1:5000/diginfractl:0.1.0
#   --tag NAME           local name of the image (default localhost/diginfractl:VERSION, from package.json)
#   --platform P[,P...]  target platforms (default: this machine's, linux/amd64 or linux/arm64); more than
#                        one builds a manifest list and needs --node-image and an emulator (qemu-user-static)
#   --node-image IMAGE   base image, e.g. docker.io/library/node:24-bookworm-slim; default: a base built
#                        here (Debian bookworm from the apt mirror + the Node binary of the `node`
#                        devDependency + npm from the npm registry), kept in podman's storage and reused
#   --refresh-base       rebuild that local base even if podman's storage has it
#   --tls-verify=false   push over plain HTTP or to a registry with an untrusted certificate
#   --digestfile FILE    write the pushed manifest's digest to FILE
#
# Podman reads its settings from scripts/podman/containers.conf unless CONTAINERS_CONF is set, and its
# storage driver from its storage.conf (STORAGE_DRIVER=vfs where overlay cannot work, e.g. inside a
# container). Credentials for the push: `podman login`, or REGISTRY_AUTH_FILE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Scratch directories, removed however the script ends.
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}"
command -v podman >/dev/null 2>&1 || die "podman is not installed (Debian: apt-get install podman runc debootstrap; scripts/bootstrap.sh does)"

version=$(node -p 'require("./package.json").version')
tag="localhost/diginfractl:$version"
platforms=""
node_image=""
refresh_base=false
tls_verify=true
digestfile=""
destination=""
while (($# > 0)); do
  case "$1" in
    --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
    --platform) platforms="${2:?--platform needs os/arch}"; shift 2 ;;
    --node-image) node_image="${2:?--node-image needs an image}"; shift 2 ;;
    --refresh-base) refresh_base=true; shift ;;
    --tls-verify=false) tls_verify=false; shift ;;
    --digestfile) digestfile="${2:?--digestfile needs a file}"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $destination ]] || die "one destination only"; destination="$1"; shift ;;
  esac
done

case "$(uname -m)" in
  x86_64) machine=linux/amd64 ;;
  aarch64 | arm64) machine=linux/arm64 ;;
  *) die "unsupported machine $(uname -m)" ;;
esac
platforms="${platforms:-$machine}"

# The base built here: Debian bookworm, slimmed as debian:bookworm-slim is, then Node and npm where the
# official node images put them. Its tag names its inputs, so a changed Node version builds a new one.
# NPM_VERSION: the npm that Node 24.21.0 bundles (its CHANGELOG: "upgrade npm to 11.19.0"), as the
# official image carries it; move it with the `node` devDependency (any npm 11 builds the image).
npm_version="${NPM_VERSION:-11.19.0}"
debian_image="localhost/diginfractl-debian:bookworm-slim"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/diginfractl-image"

# The apt mirror this machine uses for bookworm (deb822 .sources or one-line sources.list).
debian_mirror() {
  local uri
  uri=$(awk '
    /^[Uu][Rr][Ii][Ss]:/ { uris = $2 }
    /^[Ss]uites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") hit = 1 }
    /^$/ { if (hit && uris != "") { print uris; found = 1; exit } hit = 0; uris = "" }
    END { if (!found && hit && uris != "") print uris }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [[ -n $uri ]] || uri=$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
  printf '%s\n' "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

build_debian_image() {
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap), or give --node-image"
  local mirror root
  mirror=$(debian_mirror)
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/diginfractl-debian.XXXXXX")
  scratch+=("$root" "$root.log")
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; die "debootstrap failed"; }
  # debian:bookworm-slim's trimming (debuerreotype-slimify): no docs but copyrights, man pages, info,
  # locales; dpkg keeps them out of later installs too. Then no apt lists, package cache or logs.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* "$root"/usr/share/lintian/overrides/*
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/tmp/*
  find "$root/var/log" -type f -delete
  # The runtime provides these; debootstrap copied the build machine's.
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"
  tar -C "$root" --numeric-owner -c . |
    podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' - "$debian_image" >/dev/null
}

build_node_image() {
  local context tgz="$cache_dir/npm-$npm_version.tgz"
  mkdir -p "$cache_dir"
  if [[ ! -s $tgz ]]; then
    log "npm pack npm@$npm_version"
    (cd "$cache_dir" && npm pack --silent "npm@$npm_version" >/dev/null)
  fi
  context=$(mktemp -d "${TMPDIR:-/var/tmp}/diginfractl-node.XXXXXX")
  scratch+=("$context")
  cp "$(realpath node_modules/node/bin/node)" "$context/node"
  mkdir "$context/npm"
  tar -xzf "$tgz" -C "$context/npm" --strip-components=1 --no-same-owner
  cat >"$context/Containerfile" <<EOF
FROM $debian_image
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version && rm -rf /tmp/* /root/.npm
ENV NODE_VERSION=$node_version
CMD ["node"]
EOF
  podman build --quiet --network none --tag "$local_base" "$context" >/dev/null
}

if [[ -z $node_image ]]; then
  node_version=$(node -p 'require("./node_modules/node/package.json").version' 2>/dev/null) ||
    die "node_modules/node is missing: run npm ci (the local base takes Node from the \`node\` devDependency)"
  local_base="localhost/diginfractl-node:$node_version-npm$npm_version-bookworm-slim"
  [[ $platforms == "$machine" ]] ||
    die "the local base is built for this machine ($machine) only; for $platforms give --node-image (e.g. docker.io/library/node:24-bookworm-slim)"
  # Untagged, not removed: images built on the old base keep their layers.
  if $refresh_base; then podman untag "$local_base" >/dev/null 2>&1 || true; podman untag "$debian_image" >/dev/null 2>&1 || true; fi
  if ! podman image exists "$local_base"; then
    podman image exists "$debian_image" || build_debian_image
    log "building the base $local_base"
    build_node_image
  fi
  node_image="$local_base"
fi

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time, not now: an unchanged tree rebuilds from podman's layer cache.
created=$(git log -1 --format=%cI 2>/dev/null || echo unknown)
build=(podman build --network host --build-arg "NODE_IMAGE=$node_image" --build-arg "VERSION=$version"
  --build-arg "REVISION=$revision" --build-arg "CREATED=$created" --file Dockerfile)
# The CA bundle this machine's Node trusts (a TLS-intercepting proxy's), for npm in the build only.
[[ -z ${NODE_EXTRA_CA_CERTS:-} ]] || build+=(--secret "id=npm-ca,src=$NODE_EXTRA_CA_CERTS")
previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
start=$SECONDS
if [[ $platforms == *,* ]]; then
  # One image per platform, gathered in a manifest list named $tag.
  podman manifest exists "$tag" && podman manifest rm "$tag" >/dev/null
  log "building $tag for $platforms on $node_image (manifest list)"
  "${build[@]}" --platform "$platforms" --manifest "$tag" . >&2
else
  log "building $tag for $platforms on $node_image"
  "${build[@]}" --platform "$platforms" --tag "$tag" . >&2
  id=$(podman image inspect --format '{{.Id}}' "$tag")
  # The image this tag named before, if nothing else names it now.
  if [[ -n $previous && $previous != "$id" && -z $(podman image inspect --format '{{.RepoTags}}' "$previous" 2>/dev/null | tr -d '[]') ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
fi
log "built in $((SECONDS - start)) s"

if [[ $platforms != *,* ]]; then
  size=$(podman image inspect --format '{{.Size}}' "$tag")
  base_size=$(podman image inspect --format '{{.Size}}' "$node_image")
  printf 'image %s (%s): %s MiB, %s MiB over the base %s\n' "$tag" "$platforms" \
    "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" \
    "$(awk -v s="$size" -v b="$base_size" 'BEGIN { printf "%.1f", (s - b) / 1048576 }')" "$node_image"
  podman history --format '{{.Size}}\t{{.CreatedBy}}' "$tag" | awk -F'\t' '{ printf "  layer %8s  %.110s\n", $1, $2 }'
  # What it holds, seen as the image's own user with nothing writable, as in a pod.
  podman run --rm --network none --read-only --read-only-tmpfs=false --cap-drop ALL --entrypoint /bin/sh "$tag" -c '
    echo "  user      $(id -u):$(id -g)"
    echo "  node      $(node --version) $(du -sh "$(command -v node)" | cut -f1)"
    echo "  npm       $(npm --version 2>/dev/null || echo none) (base image)"
    echo "  diginfractl $(diginfractl --version)"
    echo "  /app      $(du -sh /app | cut -f1): dist $(du -sh /app/dist | cut -f1), node_modules $(du -sh /app/node_modules | cut -f1)"
    echo "  packages  $(ls /app/node_modules | grep -v "^\." | tr "\n" " ")"
    for c in cc gcc g++ c++ clang make; do command -v "$c" >/dev/null && echo "  compiler  $c present"; done; true'
fi

if [[ -n $destination ]]; then
  push=(--tls-verify="$tls_verify")
  [[ -z $digestfile ]] || push+=(--digestfile "$digestfile")
  log "pushing to $destination"
  if [[ $platforms == *,* ]]; then
    podman manifest push --all "${push[@]}" "$tag" "docker://$destination" >&2
  else
    podman push --quiet "${push[@]}" "$tag" "docker://$destination" >&2
  fi
  [[ -z $digestfile ]] || log "pushed $destination@$(cat "$digestfile")"
fi
