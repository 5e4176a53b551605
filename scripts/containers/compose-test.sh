#!/usr/bin/env bash
# `make compose-test`: the compose stack, built here with no image registry, under the
# end-to-end suite. Starts a Docker engine if none runs (and stops it after), builds the local
# base image and the four images, `up --wait` with compose/local-images.yml, runs tests/e2e
# against the gateway on 127.0.0.1:8000, then `down -v`. Nothing is left running.
#
# Settings: CA_BUNDLE (the proxy CA handed to builds as a BuildKit secret, default the
# system bundle; empty for none), COMPOSE_TEST_TIMEOUT (seconds for the whole run, 1500),
# PYTEST (default .venv/bin/pytest), KEEP_IMAGES=0 to remove the images at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/containers/docker-engine.sh
source scripts/containers/docker-engine.sh

: "${CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt}"
: "${COMPOSE_TEST_TIMEOUT:=1500}"
: "${PYTEST:=$root/.venv/bin/pytest}"
: "${KEEP_IMAGES:=1}"
project=auth-platform-compose-test
gateway_port=8000
local_base=auth-platform/base:bookworm-python3.11
tag=compose-test
started=$SECONDS

say() { printf '\n== compose-test: %s (%ds)\n' "$*" "$((SECONDS - started))"; }
fail() { printf 'compose-test: FAILED: %s\n' "$*" >&2; exit 1; }
deadline() {  # seconds left of the whole run's budget, for the step about to start
  local left=$((COMPOSE_TEST_TIMEOUT - (SECONDS - started)))
  [ "$left" -gt 0 ] || fail "over the ${COMPOSE_TEST_TIMEOUT}s budget"
  echo "$left"
}

[ -x "$PYTEST" ] || fail "$PYTEST not found: run \`make sync\` first"
if (exec 3<>"/dev/tcp/127.0.0.1/$gateway_port") 2>/dev/null; then
  fail "127.0.0.1:$gateway_port is taken (a \`make run\` or another compose stack?): free it first"
fi

workdir=$(mktemp -d)
stack_up=0
cleanup() {
  local rc=$?
  set +e
  if [ "$stack_up" = 1 ]; then
    if [ "$rc" != 0 ]; then
      say "logs of the failed run"
      compose_project ps -a
      compose_project logs --no-color --tail=30
    fi
    say "down -v"
    timeout --foreground 120 "${compose_cmd[@]}" down --volumes --remove-orphans --timeout 20
  fi
  if [ "$KEEP_IMAGES" = 0 ] && engine_running; then
    docker image rm "auth-platform/auth:$tag" "auth-platform/users:$tag" \
      "auth-platform/gateway:$tag" >/dev/null 2>&1
  fi
  engine_down "$ENGINE_PID"
  rm -rf "$workdir"
  if [ "$rc" = 0 ]; then say "passed"; else say "failed (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
# Steps run in this process group (timeout --foreground), so a CI timeout's signal reaches
# them and this script, which then tears everything down.
trap 'exit 130' INT TERM

say "Docker engine"
engine_up

say "base image"
BASE_IMAGE_LOCAL=$local_base DOCKER=docker timeout --foreground "$(deadline)" scripts/containers/base-image.sh

# Throwaway secrets: the test never reads or writes a developer's .env.
python3 - >"$workdir/env" <<'EOF'
import secrets
for name in ("POSTGRES_PASSWORD", "AUTH_DB_PASSWORD", "USERS_DB_PASSWORD", "KEY_ENCRYPTION_KEY"):
    print(f"{name}={secrets.token_hex(32)}")
EOF
{
  echo "IMAGE_TAG=$tag"
  echo "LOCAL_BASE_IMAGE=$local_base"
  # The builds' CA secret: the given bundle, or an empty file (no extra CA) when none.
  if [ -n "$CA_BUNDLE" ] && [ -s "$CA_BUNDLE" ]; then echo "CA_BUNDLE=$CA_BUNDLE"
  else : >"$workdir/no-ca"; echo "CA_BUNDLE=$workdir/no-ca"; fi
} >>"$workdir/env"

_pick_compose
# shellcheck disable=SC2206 # "docker compose" is two words on purpose
compose_cmd=($_compose_bin --project-name "$project" --env-file "$workdir/env"
  -f docker-compose.yml -f compose/local-images.yml)
compose_project() { "${compose_cmd[@]}" "$@"; }

say "images"
for service in auth users gateway postgres redis; do
  t0=$SECONDS
  log="$workdir/build-$service.log"
  timeout --foreground "$(deadline)" "${compose_cmd[@]}" build --progress=plain "$service" >"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; fail "building $service"; }
  printf '  %-10s built in %3ds\n' "$service" "$((SECONDS - t0))"
done
docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' \
  | grep -E "auth-platform/[a-z]+:($tag|15-local|7.0-local|bookworm-python3.11)\b" || true

say "up --wait"
stack_up=1
# Whatever a killed earlier run left of this project (containers come back with the engine).
"${compose_cmd[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
t0=$SECONDS
wait_for=$(deadline)
[ "$wait_for" -lt 240 ] || wait_for=240
compose_project up --detach --no-build --wait --wait-timeout "$wait_for" --quiet-pull \
  || fail "the stack did not become healthy within ${wait_for}s"
echo "  healthy $((SECONDS - t0))s after up"
compose_project ps

say "end-to-end suite against http://127.0.0.1:$gateway_port"
E2E_GATEWAY_URL="http://127.0.0.1:$gateway_port" timeout --foreground "$(deadline)" \
  "$PYTEST" tests/e2e -q -p no:cacheprovider
