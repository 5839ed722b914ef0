#!/bin/bash
# First start on an empty data volume: initdb with POSTGRES_USER as the superuser and
# POSTGRES_PASSWORD (scram-sha-256 over TCP), create POSTGRES_DB and run the SQL files in
# /docker-entrypoint-initdb.d in it, in single-user mode (nothing listens yet). Then
# PostgreSQL runs in the foreground, listening on every interface of the container.
set -euo pipefail
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  for sql in /docker-entrypoint-initdb.d/*.sql; do
    [ -e "$sql" ] || continue
    echo "initdb: $sql"
    postgres --single -j -D "$PGDATA" "$POSTGRES_DB" <"$sql" >/dev/null
  done
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
