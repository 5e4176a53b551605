#!/usr/bin/env bash
# Build the local base image that stands in for the registry's python:3.11-slim-bookworm
# where no image registry is reachable: a minimal Debian bookworm with its python3.11,
# made with debootstrap from the Debian mirror apt already uses, imported into Docker.
#
#   scripts/containers/base-image.sh   build (or reuse) the image, print its name
#
# Reuse, fastest first: the image already in the engine; the root filesystem tarball cached
# under .data/docker-base/ (git-ignored); else debootstrap (a few minutes).
# The Debian mirror is the one the host's apt already uses for bookworm (an operator's proxy
# or local mirror is there), else DEBIAN_MIRROR. `--mirror` prints it and exits.
# Settings: BASE_IMAGE_LOCAL (image name), DEBIAN_MIRROR (when apt names none), DOCKER,
# APT_ETC (apt's configuration folder, /etc/apt).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
: "${DOCKER:=docker}"
: "${BASE_IMAGE_LOCAL:=auth-platform/base:bookworm-python3.11}"
suite=bookworm
apt_etc=${APT_ETC:-/etc/apt}
: "${DEBIAN_MIRROR:=}"
cache_dir="$root/.data/docker-base"
# The recipe's version is part of the tarball's name: change the recipe, bump it.
tarball="$cache_dir/rootfs-$suite-python3.11-v2.tar"

log() { printf 'base-image: %s\n' "$*" >&2; }

apt_mirror() {
  # The URI of the first enabled `deb` source that serves $suite, in apt's own order:
  # sources.list, then sources.list.d/ by name, one-line `.list` files and deb822 `.sources`
  # alike. An operator's proxy or local mirror is named there; the public mirror is not.
  local file
  for file in "$apt_etc/sources.list" "$apt_etc"/sources.list.d/*; do
    [ -f "$file" ] || continue
    case $file in
      *.sources) awk -v suite="$suite" "$deb822_awk" "$file" ;;
      */sources.list | *.list) awk -v suite="$suite" "$one_line_awk" "$file" ;;
    esac
  done | grep -m1 -E '^(https?|file)://' || true
}

# `deb [options] URI SUITE COMPONENT...`, comments and options stripped.
one_line_awk='
  { sub(/#.*/, ""); gsub(/\[[^]]*\]/, "") }
  $1 == "deb" && $3 == suite { print $2 }
'
# Stanzas of `Field: value` lines (continuation lines indented); `Enabled: no` skips one.
deb822_awk='
  BEGIN { RS = ""; FS = "\n" }
  {
    types = uris = suites = ""; enabled = "yes"; field = ""
    for (i = 1; i <= NF; i++) {
      line = $i
      if (line ~ /^#/) continue
      if (match(line, /^[A-Za-z-]+:/)) {
        field = tolower(substr(line, 1, RLENGTH - 1)); line = substr(line, RLENGTH + 1)
      }
      if (field == "types") types = types " " line
      else if (field == "uris") uris = uris " " line
      else if (field == "suites") suites = suites " " line
      else if (field == "enabled") enabled = line
    }
    gsub(/[ \t]/, "", enabled)
    if (tolower(enabled) == "no" || (types " ") !~ /[ \t]deb[ \t]/) next
    if ((suites " ") !~ ("[ \t]" suite "[ \t]")) next
    split(uris, uri, /[ \t]+/)
    for (j = 1; j in uri; j++) if (uri[j] != "") { print uri[j]; break }
  }
'

build_rootfs() {
  local mirror rootfs
  mirror=$(apt_mirror)
  mirror=${mirror:-$DEBIAN_MIRROR}
  [ -n "$mirror" ] || {
    log "no apt source of this host serves $suite: set DEBIAN_MIRROR (a Debian mirror's URL)"
    return 1
  }
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

if [ "${1:-}" = --mirror ]; then
  mirror=$(apt_mirror)
  echo "${mirror:-$DEBIAN_MIRROR}"
  exit 0
fi

if "$DOCKER" image inspect "$BASE_IMAGE_LOCAL" >/dev/null 2>&1; then
  log "$BASE_IMAGE_LOCAL already in the engine"
  echo "$BASE_IMAGE_LOCAL"
  exit 0
fi

[ -f "$tarball" ] || build_rootfs

log "importing $tarball as $BASE_IMAGE_LOCAL"
"$DOCKER" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  "$tarball" "$BASE_IMAGE_LOCAL" >/dev/null
echo "$BASE_IMAGE_LOCAL"
