#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback:
#
#   scripts/with-postgres.sh cargo test --workspace
#
# initdb in a temporary directory, the server on 127.0.0.1 (port $TESSERA_PG_PORT, default
# 54329, or the next free one) with fsync and synchronous_commit on, trust authentication
# (loopback only, throwaway data). The command runs with
# TESSERA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres in its environment;
# the server is stopped and its directory removed when the command ends, however it ends.
# The command's exit status is this script's.
#
# PostgreSQL's binaries are looked up in $PG_BIN, then /usr/lib/postgresql/<newest>/bin,
# then PATH. As root, the server runs as the `postgres` user (PostgreSQL refuses root).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 64
fi

find_bin_dir() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ]; then echo "$newest"; return; fi
  dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)"
}
BIN=$(find_bin_dir)
if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ]; then
  echo "with-postgres: PostgreSQL server binaries not found (install the postgresql package, or set PG_BIN)" >&2
  exit 69
fi

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

PORT=${TESSERA_PG_PORT:-54329}
while port_in_use "$PORT"; do PORT=$((PORT + 1)); done

DIR=$(mktemp -d /tmp/tessera-pg.XXXXXX)
chmod 0755 "$DIR"
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  chown postgres: "$DIR"
fi
DATA="$DIR/data"

cleanup() {
  local status=$?
  as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 || {
  cat "$DIR/initdb.log" >&2
  exit 1
}
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=on -c synchronous_commit=on -c max_connections=400" \
  start >/dev/null || {
  cat "$DIR/server.log" >&2
  exit 1
}
for _ in $(seq 1 60); do
  if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then break; fi
  sleep 0.5
done
"$BIN/pg_isready" -h 127.0.0.1 -p "$PORT"

export TESSERA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $DATA); TESSERA_TEST_POSTGRES_URL=$TESSERA_TEST_POSTGRES_URL" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
