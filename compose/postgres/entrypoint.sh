#!/bin/sh
# A small stand-in for the official postgres image's entrypoint: on a new data volume,
# initdb (superuser password from POSTGRES_PASSWORD, password auth over TCP), then the
# init scripts with a socket-only server, then PostgreSQL itself as PID 1.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
export POSTGRES_USER PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

  # Init scripts run against a server no client can reach yet (no TCP listener).
  pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait --silent start
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "init: $f"; sh "$f" ;;
      *.sql) echo "init: $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" \
               --dbname postgres --file "$f" ;;
      *) ;;
    esac
  done
  pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
