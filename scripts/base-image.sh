#!/usr/bin/env bash
# Build the local base image that stands in for the registry's python:3.11-slim-bookworm
# where no image registry is reachable: a minimal Debian bookworm with its python3.11,
# made with debootstrap from the Debian mirror apt already uses, imported into Docker.
#
#   scripts/base-image.sh            build (or reuse) the image, print its name
#
# Reuse, fastest first: the image already in the engine; the root filesystem tarball cached
# under .data/docker-base/ (git-ignored); else debootstrap (a few minutes).
# Settings: BASE_IMAGE_LOCAL (image name), DEBIAN_MIRROR (default: apt's own), DOCKER.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
: "${DOCKER:=docker}"
: "${BASE_IMAGE_LOCAL:=auth-platform/base:bookworm-python3.11}"
suite=bookworm
cache_dir="$root/.data/docker-base"
# The recipe's version is part of the tarball's name: change the recipe, bump it.
tarball="$cache_dir/rootfs-$suite-python3.11-v2.tar"

log() { printf 'base-image: %s\n' "$*" >&2; }

if "$DOCKER" image inspect "$BASE_IMAGE_LOCAL" >/dev/null 2>&1; then
  log "$BASE_IMAGE_LOCAL already in the engine"
  echo "$BASE_IMAGE_LOCAL"
  exit 0
fi

apt_mirror() {
  # The first Debian URI apt is configured with (deb822 .sources or one-line .list).
  local uri
  uri=$(grep -hsE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

build_rootfs() {
  local mirror rootfs
  mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
  fi
  mkdir -p "$cache_dir"
  rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the folder is this call's
  trap "rm -rf '$rootfs'" RETURN
  log "debootstrap $suite from $mirror (a few minutes)"
  # minbase: dpkg, apt and the essential set, nothing else. The standard library keeps the
  # bytecode Debian compiles on install: containers run read-only and could not write it.
  # python3-venv brings ensurepip,
  # which the builder stage uses to get uv from PyPI, as on the official image.
  debootstrap --variant=minbase \
    --include=python3.11,python3-venv,ca-certificates,tzdata \
    "$suite" "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache_dir/debootstrap.log" >&2; return 1; }

  # Security and point-release updates, as the official images carry them.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  chroot "$rootfs" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade' >>"$cache_dir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache_dir/debootstrap.log" >&2; return 1; }

  # As debian:bookworm-slim does: no docs, man pages or translations, now or later.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/* "$rootfs"/tmp/* \
    "$rootfs/etc/resolv.conf" "$rootfs/etc/machine-id" "$rootfs/etc/hostname"
  : >"$rootfs/etc/machine-id"

  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  log "cached $tarball ($(du -h "$tarball" | cut -f1))"
}

[ -f "$tarball" ] || build_rootfs

log "importing $tarball as $BASE_IMAGE_LOCAL"
"$DOCKER" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  "$tarball" "$BASE_IMAGE_LOCAL" >/dev/null
echo "$BASE_IMAGE_LOCAL"
