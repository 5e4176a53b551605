#!/bin/sh
# Run once, by the postgres image's entrypoint, when the data volume is new: one role and
# one database per service, each role owning its own database and nothing else.
# The passwords come from the environment (.env, see compose/env.example); psql quotes them.
set -eu

: "${AUTH_DB_PASSWORD:?AUTH_DB_PASSWORD is not set}"
: "${USERS_DB_PASSWORD:?USERS_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v auth_password="$AUTH_DB_PASSWORD" -v users_password="$USERS_DB_PASSWORD" <<'SQL'
CREATE ROLE auth_service LOGIN PASSWORD :'auth_password';
CREATE DATABASE auth OWNER auth_service;
REVOKE ALL ON DATABASE auth FROM PUBLIC;

CREATE ROLE users_service LOGIN PASSWORD :'users_password';
CREATE DATABASE users OWNER users_service;
REVOKE ALL ON DATABASE users FROM PUBLIC;
SQL
