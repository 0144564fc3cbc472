#!/usr/bin/env bash
# Builds the lossservice container image with podman, without a Docker engine
# or a registry:
#
#   1. the base images, once: `debootstrap --variant=minbase bookworm` from
#      the Debian mirror apt already uses (read from the apt sources), imported
#      with `podman import` as localhost/debian:bookworm, and the same tree
#      trimmed as Debian's -slim images are (no manuals, docs or locales) as
#      localhost/debian:bookworm-slim. Both are reused while they exist
#      (--rebase makes them anew);
#   2. docker/Dockerfile, with BASE_IMAGE and RUNTIME_IMAGE pointing at them
#      and the network of the host (apt inside the build reaches the mirror).
#
#   docker/build.sh [--rebase] [extra podman build arguments]
#
# IMAGE (default localhost/lossservice:latest) names the result. With a
# Docker engine and a registry, `docker build -f docker/Dockerfile .` builds
# the same image from Debian's official images.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/lossservice:latest}
BASE=localhost/debian:bookworm
SLIM=localhost/debian:bookworm-slim
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/docker/containers.conf}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

rebase=false
if [ "${1:-}" = --rebase ]; then rebase=true; shift; fi

# "URI SUITE" for every enabled deb source of apt, one-line (sources.list) and
# deb822 (*.sources) alike.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (deb && enabled) for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
        deb = 0; enabled = 1; nu = 0; ns = 0
      }
      BEGIN { enabled = 1 }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { for (i = 2; i <= NF; i++) u[++nu] = $i }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) s[++ns] = $i }
      tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
      END { flush() }' "$f"
  done
}

# The Debian 12 tree: minbase from apt's mirror, with apt inside pointed at
# the same mirrors (bookworm, -updates, -security) and given the host's apt
# settings that reaching them needs (a proxy; accepting a snapshot mirror's
# expired Release files).
make_tree() {
  local root=$1 sources mirror
  sources=$(apt_sources | awk '$2 ~ /^bookworm(-updates|-security)?$/' | sort -u)
  mirror=$(awk '$2 == "bookworm" { print $1; exit }' <<<"$sources")
  if [ -z "$mirror" ]; then
    echo "build.sh: no 'bookworm' deb source in /etc/apt/sources.list{,.d}" >&2
    exit 1
  fi
  log "debootstrap --variant=minbase bookworm from $mirror"
  local start=$SECONDS
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    exit 1
  }
  log "debootstrap: $((SECONDS - start)) s"
  rm -f "$root/etc/apt/sources.list"
  awk '{ suites[$1] = suites[$1] " " $2 } END {
         for (u in suites) printf "Types: deb\nURIs: %s\nSuites:%s\nComponents: main\n" \
           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n", u, suites[u] }' \
    <<<"$sources" >"$root/etc/apt/sources.list.d/debian.sources"
  apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy) ' \
    >"$root/etc/apt/apt.conf.d/90mirror" || true
  # No package caches or translations in image layers.
  cat >"$root/etc/apt/apt.conf.d/90container" <<'EOF'
APT::Install-Recommends "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
EOF
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
  # Regenerated per container; an empty machine-id as in Debian's images.
  : >"$root/etc/machine-id"
}

# What Debian's bookworm-slim leaves out, now and in every later install.
slim_tree() {
  local root=$1
  cat >"$root/etc/dpkg/dpkg.cfg.d/90slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
}

import_tree() {
  local root=$1 name=$2
  tar --numeric-owner --xattrs -C "$root" -c . |
    podman import --change 'CMD ["bash"]' - "$name" >/dev/null
  log "$name: $(podman image inspect --format '{{.Size}}' "$name" | numfmt --to=iec) ($(date -u +%F))"
}

if $rebase || ! podman image exists "$BASE" || ! podman image exists "$SLIM"; then
  command -v debootstrap >/dev/null || { echo "build.sh: needs debootstrap (./dev deps container)" >&2; exit 1; }
  work=$(mktemp -d /var/tmp/lossservice-rootfs.XXXXXX)
  trap 'rm -rf "$work" "$work.log"' EXIT
  make_tree "$work"
  import_tree "$work" "$BASE"
  slim_tree "$work"
  import_tree "$work" "$SLIM"
else
  log "reusing $BASE and $SLIM (--rebase makes them anew)"
fi

log "building $IMAGE"
start=$(date +%s)
podman build --network=host --format docker \
  --build-arg BASE_IMAGE="$BASE" --build-arg RUNTIME_IMAGE="$SLIM" \
  --ignorefile docker/Dockerfile.dockerignore \
  -f docker/Dockerfile -t "$IMAGE" "$@" .
log "$IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec) \
in $(($(date +%s) - start)) s"
