#!/bin/sh
# Start Traefik with the project's static configuration: `traefik.sh` serves,
# `traefik.sh healthcheck` probes a running gateway (containers have no curl).
#
# Traefik reads its static configuration from one source only (file, flags or environment),
# so the settings that vary per deployment come in as environment variables and are turned
# into flags here. The routes and middlewares live in dynamic.yml, the one source of truth
# that `make run`, compose and the cloud configurations all load.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

: "${GATEWAY_HOST:=127.0.0.1}"
: "${GATEWAY_PORT:=8000}"
# Ping, Prometheus metrics and the dashboard: loopback only, never the public entrypoint.
: "${GATEWAY_INTERNAL_HOST:=127.0.0.1}"
: "${GATEWAY_INTERNAL_PORT:=8080}"
# Slow clients: the whole request must arrive within this time.
: "${GATEWAY_READ_TIMEOUT:=30s}"
: "${AUTH_PORT:=8001}"
: "${USERS_PORT:=8002}"
: "${GATEWAY_LOG_LEVEL:=INFO}"
# Every request is logged once, by the service that answered it, with its request id; by
# default Traefik logs only the answers no service saw or could have given (its own 429s and
# refusals, an upstream it could not reach). `true` logs every request twice, `false` none.
: "${GATEWAY_ACCESS_LOG:=gateway-errors}"
# Proxies in front of the gateway (CIDRs, comma-separated) whose X-Forwarded-For is kept;
# from anyone else it is replaced by the connection's address.
: "${GATEWAY_TRUSTED_IPS:=}"
# The public base URL clients use. An https one turns HSTS on even though the gateway itself
# speaks plain HTTP, as it does behind a load balancer that terminates TLS (ECS).
: "${GATEWAY_PUBLIC_URL:=}"
# Optional TLS: with both files set, HTTPS on GATEWAY_TLS_PORT and plain HTTP redirecting to it.
: "${GATEWAY_TLS_CERT_FILE:=}"
: "${GATEWAY_TLS_KEY_FILE:=}"
: "${GATEWAY_TLS_HOST:=${GATEWAY_HOST}}"
: "${GATEWAY_TLS_PORT:=8443}"
# Read by dynamic.yml (a template): each is documented in the README's settings table.
: "${AUTH_UPSTREAMS:=http://127.0.0.1:${AUTH_PORT}}"
: "${USERS_UPSTREAMS:=http://127.0.0.1:${USERS_PORT}}"
: "${GATEWAY_RATE_AVERAGE:=20}"
: "${GATEWAY_RATE_BURST:=50}"
: "${GATEWAY_CLIENT_IP_DEPTH:=0}"
: "${GATEWAY_CORS_ORIGINS:=}"
: "${GATEWAY_MAX_BODY_BYTES:=1048576}"
: "${GATEWAY_HEALTHCHECK_INTERVAL:=2s}"
# Rate-limit counts in Redis, shared by every gateway replica: redis://[user:password@]host[:port][/db]
# (rediss:// for TLS). Empty: each gateway counts in its own memory.
: "${GATEWAY_REDIS_URL:=}"
: "${GATEWAY_REDIS_TIMEOUT:=500ms}"
# The Go runtime's own knobs, for Traefik only (docs/benchmarks.md has the measurements).
# GOGC 50: Traefik's live heap is small (~8 MB), so collecting at 50 % growth instead of
# 100 % costs no measurable CPU and keeps ~10 MB less resident under load. GOMEMLIMIT: a
# soft ceiling on the Go-managed memory (not the binary's ~80 MB of mapped pages) below the
# container's limit, so a burst makes the collector work harder before the OOM killer acts.
# GOMAXPROCS: empty leaves Go's default (the cores, or the container's CPU limit); `make run`
# sets 1, as Traefik shares two cores with the services there.
: "${GATEWAY_GOGC:=50}"
: "${GATEWAY_GOMEMLIMIT:=256MiB}"
: "${GATEWAY_GOMAXPROCS:=}"
GOGC=${GATEWAY_GOGC}
GOMEMLIMIT=${GATEWAY_GOMEMLIMIT}
export GOGC GOMEMLIMIT
if [ -n "${GATEWAY_GOMAXPROCS}" ]; then
  GOMAXPROCS=${GATEWAY_GOMAXPROCS}
  export GOMAXPROCS
fi
export AUTH_UPSTREAMS USERS_UPSTREAMS GATEWAY_RATE_AVERAGE GATEWAY_RATE_BURST \
  GATEWAY_CLIENT_IP_DEPTH GATEWAY_CORS_ORIGINS GATEWAY_MAX_BODY_BYTES \
  GATEWAY_HEALTHCHECK_INTERVAL GATEWAY_TLS_CERT_FILE GATEWAY_TLS_KEY_FILE GATEWAY_PUBLIC_URL \
  GATEWAY_REDIS_URL GATEWAY_REDIS_TIMEOUT

set -- "$@" \
  --global.checkNewVersion=false \
  --global.sendAnonymousUsage=false \
  --entryPoints.web.address="${GATEWAY_HOST}:${GATEWAY_PORT}" \
  --entryPoints.traefik.address="${GATEWAY_INTERNAL_HOST}:${GATEWAY_INTERNAL_PORT}" \
  --ping=true \
  --ping.entryPoint=traefik \
  --api.dashboard=true \
  --api.insecure=true \
  --metrics.prometheus=true \
  --metrics.prometheus.entryPoint=traefik \
  --metrics.prometheus.addRoutersLabels=true \
  --metrics.prometheus.addServicesLabels=true \
  --providers.file.filename="${here}/dynamic.yml" \
  --providers.file.watch=false \
  --serversTransport.forwardingTimeouts.dialTimeout=5s \
  --serversTransport.forwardingTimeouts.responseHeaderTimeout=30s \
  --log.level="${GATEWAY_LOG_LEVEL}" \
  --log.format=json

case "${GATEWAY_ACCESS_LOG}" in
  true | gateway-errors)
    set -- "$@" \
      --accessLog=true \
      --accessLog.format=json \
      --accessLog.bufferingSize=100 \
      --accessLog.fields.headers.defaultMode=drop \
      --accessLog.fields.headers.names.X-Request-Id=keep
    if [ "${GATEWAY_ACCESS_LOG}" = gateway-errors ]; then
      # The statuses Traefik answers itself: 400 (a malformed request), 408, 413 (body limit),
      # 429 (rate limit), 431, 500-504 (no upstream answered). A service's own 400 (an OAuth
      # error) or 503 (not ready) is logged by both: an error, worth seeing from both sides.
      set -- "$@" --accessLog.filters.statusCodes=400,408,413,429,431,500-504
    fi
    ;;
  false) ;;
  *)
    echo "GATEWAY_ACCESS_LOG must be gateway-errors, true or false, not '${GATEWAY_ACCESS_LOG}'" >&2
    exit 2
    ;;
esac

public_entrypoints="web"
if [ -n "${GATEWAY_TLS_CERT_FILE}" ] && [ -n "${GATEWAY_TLS_KEY_FILE}" ]; then
  public_entrypoints="web websecure"
  set -- "$@" \
    --entryPoints.websecure.address="${GATEWAY_TLS_HOST}:${GATEWAY_TLS_PORT}" \
    --entryPoints.web.http.redirections.entryPoint.to=websecure \
    --entryPoints.web.http.redirections.entryPoint.scheme=https \
    --entryPoints.web.http.redirections.entryPoint.permanent=true
fi

for entrypoint in ${public_entrypoints}; do
  set -- "$@" \
    --entryPoints.${entrypoint}.http.maxHeaderBytes=65536 \
    --entryPoints.${entrypoint}.http.aliasHeadersStrategy=delete \
    --entryPoints.${entrypoint}.http.encodedCharacters.allowEncodedNullCharacter=false \
    --entryPoints.${entrypoint}.http.encodedCharacters.allowEncodedSlash=false \
    --entryPoints.${entrypoint}.http.encodedCharacters.allowEncodedBackSlash=false \
    --entryPoints.${entrypoint}.transport.respondingTimeouts.readTimeout="${GATEWAY_READ_TIMEOUT}" \
    --entryPoints.${entrypoint}.transport.respondingTimeouts.writeTimeout=60s \
    --entryPoints.${entrypoint}.transport.respondingTimeouts.idleTimeout=90s
  if [ -n "${GATEWAY_TRUSTED_IPS}" ]; then
    set -- "$@" --entryPoints.${entrypoint}.forwardedHeaders.trustedIPs="${GATEWAY_TRUSTED_IPS}"
  fi
done

# "$@" began with the caller's arguments: `healthcheck` stays Traefik's subcommand.
exec "${TRAEFIK_BIN:-traefik}" "$@"
