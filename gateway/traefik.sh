#!/bin/sh
# Start Traefik with the project's static configuration: `traefik.sh` serves,
# `traefik.sh healthcheck` probes a running gateway (containers have no curl).
#
# Traefik reads its static configuration from one source only (file, flags or environment),
# so the settings that vary per deployment (ports, upstreams) come in as environment
# variables and are turned into flags here. The routes live in dynamic.yml, the one
# source of truth that `make run`, compose and the cloud configurations all load.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

: "${GATEWAY_HOST:=127.0.0.1}"
: "${GATEWAY_PORT:=8000}"
# Ping (and, later, metrics and the dashboard): loopback only, never the public entrypoint.
: "${GATEWAY_INTERNAL_HOST:=127.0.0.1}"
: "${GATEWAY_INTERNAL_PORT:=8080}"
: "${AUTH_PORT:=8001}"
: "${USERS_PORT:=8002}"
: "${GATEWAY_LOG_LEVEL:=INFO}"
# Comma-separated base URLs of each service's replicas; read by dynamic.yml.
: "${AUTH_UPSTREAMS:=http://127.0.0.1:${AUTH_PORT}}"
: "${USERS_UPSTREAMS:=http://127.0.0.1:${USERS_PORT}}"
export AUTH_UPSTREAMS USERS_UPSTREAMS

command=""
if [ "${1:-}" = "healthcheck" ]; then
  command=healthcheck
  shift
fi

# shellcheck disable=SC2086 # $command is empty or one word on purpose
exec "${TRAEFIK_BIN:-traefik}" $command \
  --global.checkNewVersion=false \
  --global.sendAnonymousUsage=false \
  --entryPoints.web.address="${GATEWAY_HOST}:${GATEWAY_PORT}" \
  --entryPoints.internal.address="${GATEWAY_INTERNAL_HOST}:${GATEWAY_INTERNAL_PORT}" \
  --ping=true \
  --ping.entryPoint=internal \
  --providers.file.filename="${here}/dynamic.yml" \
  --providers.file.watch=false \
  --log.level="${GATEWAY_LOG_LEVEL}" \
  --log.format=json \
  --accessLog=true \
  --accessLog.format=json \
  --accessLog.fields.headers.defaultMode=drop \
  --accessLog.fields.headers.names.X-Request-Id=keep \
  "$@"
