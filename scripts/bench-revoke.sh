#!/usr/bin/env bash
# Revocation alone, as scripts/bench.sh's revoke row (release build, server pinned to CPU 0 and
# wrk to CPU 1, 64 connections over loopback, a different live token per request), repeated
# RUNS times against one server, so the latency tail can be compared across runs and builds.
# Prints requests/s, p50, p90, p99 and max per run, and the WAL file's size after it.
#
# Usage: scripts/bench-revoke.sh [runs] [seconds-per-run]
#   TESSERA_BIN=path   measure another build of the server (e.g. an older commit's)
# Like bench.sh, it keeps its inputs and the server's logs in /dev/shm and the database on disk.
# This is a measurement, not a test: it asserts nothing and is not run by CI.
set -euo pipefail
RUNS="${1:-5}"
SECS="${2:-10}"
PER_SEC=20000   # tokens minted per second of run (more than the server revokes per second)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
for tool in wrk curl jq python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk curl jq util-linux)"; exit 1; }
done
if [ -z "${TESSERA_BIN:-}" ]; then
  cargo build --release -q -p tessera
  TESSERA_BIN=target/release/tessera
fi

DATA="$(mktemp -d)"
WORK="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
PORT=18490
URL="http://127.0.0.1:$PORT"
taskset -c 0 "$TESSERA_BIN" serve --data-dir "$DATA/data" --listen "127.0.0.1:$PORT" \
  --oauth-rate-limit-per-minute 0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK" "$DATA"' EXIT
until curl -sf "$URL/healthz" >/dev/null; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.err"; exit 1; }
  sleep 0.1
done

B="$DATA/data/bootstrap.json"
SA=$(curl -sf --digest -u "$(jq -r .publicKey "$B"):$(jq -r .privateKey "$B")" \
  -H "Accept: application/vnd.atlas.2024-08-05+json" -H "Content-Type: application/json" \
  -X POST "$URL/api/atlas/v2/orgs/$(jq -r .orgId "$B")/serviceAccounts" \
  -d '{"name":"bench","description":"benchmark","roles":["ORG_OWNER"],"secretExpiresAfterHours":24}')
BASIC=$(printf '%s:%s' "$(jq -r .clientId <<<"$SA")" "$(jq -r '.secrets[0].secret' <<<"$SA")" | base64 -w0)
PER_RUN=$(( SECS * PER_SEC ))
echo "Minting $(( RUNS * PER_RUN )) tokens ..."
python3 scripts/bench_pipe.py tokens "$URL" "$BASIC" "$WORK/tokens.txt" "$(( RUNS * PER_RUN ))"
sync

printf '%-4s %10s %9s %9s %9s %9s  %s\n' run "req/s" p50 p90 p99 max "WAL bytes"
for r in $(seq 1 "$RUNS"); do
  # Run r revokes its own slice of the tokens, in the order they were minted.
  cat >"$WORK/revoke.lua" <<LUA
local tokens = {}
local first, last = $(( (r - 1) * PER_RUN + 1 )), $(( r * PER_RUN ))
local n = 0
for line in io.lines("$WORK/tokens.txt") do
  n = n + 1
  if n >= first and n <= last then tokens[#tokens + 1] = line end
end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/api/oauth/revoke",
    {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $BASIC"},
    "token=" .. tokens[((i - 1) % #tokens) + 1] .. "&token_type_hint=access_token")
end
LUA
  taskset -c 1 wrk -t1 -c64 -d"${SECS}s" --latency -s "$WORK/revoke.lua" "$URL/api/oauth/revoke" >"$WORK/wrk.txt"
  grep -E "Non-2xx|Socket errors" "$WORK/wrk.txt" || true
  printf '%-4s %10s %9s %9s %9s %9s  %s\n' "$r" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")" \
    "$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")" "$(awk '$1=="90%" {print $2}' "$WORK/wrk.txt")" \
    "$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")" "$(awk '/Latency/ && !/Distribution/ {print $4}' "$WORK/wrk.txt")" \
    "$(stat -c %s "$DATA/data/tessera.db-wal" 2>/dev/null || echo -)"
done
