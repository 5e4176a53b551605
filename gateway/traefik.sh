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
: "${GATEWAY_ACCESS_LOG:=true}"
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
export AUTH_UPSTREAMS USERS_UPSTREAMS GATEWAY_RATE_AVERAGE GATEWAY_RATE_BURST \
  GATEWAY_CLIENT_IP_DEPTH GATEWAY_CORS_ORIGINS GATEWAY_MAX_BODY_BYTES \
  GATEWAY_HEALTHCHECK_INTERVAL GATEWAY_TLS_CERT_FILE GATEWAY_TLS_KEY_FILE GATEWAY_PUBLIC_URL

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
  --log.format=json \
  --accessLog="${GATEWAY_ACCESS_LOG}" \
  --accessLog.format=json \
  --accessLog.bufferingSize=100 \
  --accessLog.fields.headers.defaultMode=drop \
  --accessLog.fields.headers.names.X-Request-Id=keep

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
