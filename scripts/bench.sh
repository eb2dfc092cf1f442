#!/usr/bin/env bash
# Tessera benchmark: release build, server pinned to one core, wrk pinned to the other, over
# loopback, 64 connections. Prints requests/s and p50/p99 for token issuance, a Bearer GET of
# one service account, a Digest-authenticated GET, and revocation, next to the same run's
# baselines: Tessera's own /healthz and a bare axum endpoint that signs one ES256 token.
# Then it loads 1,000,000 events into the organization (scripts/load-events.py) and lists
# page 1 and page 1000 of its event log (itemsPerPage=100, Bearer) on one connection, so p99
# is a request's own latency rather than time spent queued behind 63 others (target < 10 ms).
# Last, it stops the server, loads 1,000,000 service accounts with 2 secrets each
# (scripts/load-service-accounts.py), times the restart to a healthy /healthz, reads the RSS,
# lists pages 1 and 1000 of an org's 100,000 accounts and measures token issuance again.
#
# Usage: scripts/bench.sh [seconds-per-run]   (needs wrk, curl, jq, python3, taskset)
# Runs past the precomputed tokens (25,000 per second of run) or Digest headers (150,000) reuse
# them: revocations then hit the already-revoked path and Digest requests are refused as
# replays (wrk counts non-2xx, and the script prints that count).
# This is a measurement, not a test: it asserts nothing and is not run by CI.
set -euo pipefail
DURATION="${1:-10}"
CONNS=64
SERVER_CPU=0
LOAD_CPU=1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

for tool in wrk curl jq python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk curl jq util-linux)"; exit 1; }
done

cargo build --release -q -p tessera -p tessera-bench
# The database lives on disk, as it would in service (its fsyncs are part of what is measured).
# Everything else (the precomputed tokens and Digest headers, wrk's scripts and output, the
# server's logs) goes to memory when /dev/shm exists: on disk, the kernel's writeback of those
# files (about 100 MB) landed in the middle of later rows and stalled the server's fsyncs for
# up to 300 ms, which showed as revocation's latency tail (docs/performance.md).
DATA="$(mktemp -d)"
WORK="$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK" "$DATA"; }
trap cleanup EXIT

PORT=18480
BASE_PORT=18481
taskset -c "$SERVER_CPU" target/release/tessera serve \
  --data-dir "$DATA/data" --listen "127.0.0.1:$PORT" --oauth-rate-limit-per-minute 0 \
  >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=($!)
taskset -c "$SERVER_CPU" target/release/sign-baseline "127.0.0.1:$BASE_PORT" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && curl -sf "http://127.0.0.1:$BASE_PORT/trivial" >/dev/null && break
  sleep 0.1
done

B="$DATA/data/bootstrap.json"
PUB=$(jq -r .publicKey "$B"); PRIV=$(jq -r .privateKey "$B"); ORG=$(jq -r .orgId "$B")
URL="http://127.0.0.1:$PORT"
SA=$(curl -sf --digest -u "$PUB:$PRIV" -H "Accept: application/vnd.atlas.2024-08-05+json" \
  -H "Content-Type: application/json" -X POST "$URL/api/atlas/v2/orgs/$ORG/serviceAccounts" \
  -d '{"name":"bench","description":"benchmark","roles":["ORG_OWNER"],"secretExpiresAfterHours":24}')
CID=$(jq -r .clientId <<<"$SA"); SECRET=$(jq -r '.secrets[0].secret' <<<"$SA")
BASIC=$(printf '%s:%s' "$CID" "$SECRET" | base64 -w0)
TOKEN=$(curl -sf -u "$CID:$SECRET" -d grant_type=client_credentials "$URL/api/oauth/token" | jq -r .access_token)

cat >"$WORK/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
cat >"$WORK/bearer.lua" <<LUA
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.atlas.2024-08-05+json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

# Tokens to revoke: one per revocation request, minted up front (enough for 25,000/s).
NTOKENS=$(( DURATION * 25000 > 30000 ? DURATION * 25000 : 30000 ))
python3 scripts/bench_pipe.py tokens "$URL" "$BASIC" "$WORK/tokens.txt" "$NTOKENS"
# Digest: each request needs a fresh (nonce, nc) pair, so fetch challenges up front and
# precompute one Authorization header per request (MD5, as Atlas clients use).
# The same resource as the Bearer GET, so the ratio compares the two authentications.
python3 - "$URL" "$PUB" "$PRIV" "/api/atlas/v2/orgs/$ORG/serviceAccounts/$CID" "$WORK/digest.txt" 150000 <<'PY'
import hashlib, re, sys
sys.path.insert(0, "scripts")
from bench_pipe import pipelined
url, user, pw, path, out, n = sys.argv[1:5] + [sys.argv[5], int(sys.argv[6])]
md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
ha1, ha2 = md5(f"{user}:MMS Public API:{pw}"), md5(f"GET:{path}")
req = (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/vnd.atlas.2024-08-05+json\r\n\r\n").encode()
with open(out, "w") as f:
    for i, (headers, _) in enumerate(pipelined(url, [req] * n)):
        challenge = next(h for h in headers if h.lower().startswith("www-authenticate:"))
        nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
        resp = md5(f"{ha1}:{nonce}:00000001:bench{i}:auth:{ha2}")
        f.write(f'Digest username="{user}", realm="MMS Public API", nonce="{nonce}", uri="{path}", '
                f'algorithm=MD5, qop=auth, nc=00000001, cnonce="bench{i}", response="{resp}"\n')
PY
cat >"$WORK/digest.lua" <<LUA
local headers = {}
for line in io.lines("$WORK/digest.txt") do headers[#headers + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", nil, {["Accept"] = "application/vnd.atlas.2024-08-05+json",
    ["Authorization"] = headers[((i - 1) % #headers) + 1]})
end
LUA

cat >"$WORK/revoke.lua" <<LUA
local tokens = {}
for line in io.lines("$WORK/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
function setup(thread) thread:set("offset", 0) end
request = function()
  i = i + 1
  local t = tokens[((i - 1) % #tokens) + 1]
  return wrk.format("POST", "/api/oauth/revoke",
    {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "Basic $BASIC"},
    "token=" .. t .. "&token_type_hint=access_token")
end
LUA

# Whatever preparing the inputs left dirty is written out now, not during a measured row.
sync

declare -A RPS P50 P99
run() { # name script url [seconds] [connections]
  local name=$1 script=$2 url=$3 secs=${4:-$DURATION} conns=${5:-$CONNS} out="$WORK/$1.txt"
  if [ -n "$script" ]; then
    taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$script" "$url" >"$out"
  else
    taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" >"$out"
  fi
  local errs; errs=$(grep -E "Non-2xx|Socket errors" "$out" || true)
  [ -n "$errs" ] && echo "  ($name: $errs)"
  RPS[$name]=$(awk '/Requests\/sec/ {print $2}' "$out")
  P50[$name]=$(awk '$1=="50%" {print $2}' "$out")
  P99[$name]=$(awk '$1=="99%" {print $2}' "$out")
}

echo "Running $DURATION s per endpoint, $CONNS connections, server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU ..."
run baseline_trivial "" "http://127.0.0.1:$BASE_PORT/trivial"
# The baseline gets the very same request bytes as the token endpoint (headers and form
# body), so the ratio isolates what Tessera does beyond the one signature.
run baseline_sign "$WORK/token.lua" "http://127.0.0.1:$BASE_PORT/sign"
run healthz "" "$URL/healthz"
run token "$WORK/token.lua" "$URL/api/oauth/token"
run bearer_get "$WORK/bearer.lua" "$URL/api/atlas/v2/orgs/$ORG/serviceAccounts/$CID"
# Short on purpose: every request needs one of the 150,000 precomputed (nonce, nc) headers.
run digest_get "$WORK/digest.lua" "$URL/api/atlas/v2/orgs/$ORG/serviceAccounts/$CID" 2
run revoke "$WORK/revoke.lua" "$URL/api/oauth/revoke"

# The console's pages, rendered for a signed-in owner (a session cookie): the service-account
# list (one account) and the event log's first page (50 events). Sizes are what a first visit
# downloads (page, stylesheet, script; no compression).
COOKIE=$(python3 scripts/console-session.py "$URL" "$B")
cat >"$WORK/console.lua" <<LUA
wrk.method = "GET"
wrk.headers["Cookie"] = "$COOKIE"
LUA
# The trivial endpoint at the same concurrency, for the console rows' ratio.
run healthz_1c "" "$URL/healthz" "$DURATION" 1
run console_sa_page "$WORK/console.lua" "$URL/orgs/$ORG/serviceAccounts" "$DURATION" 1
run console_events_page "$WORK/console.lua" "$URL/orgs/$ORG/events" "$DURATION" 1
size() { curl -s -o /dev/null -w '%{size_download}' -H "Cookie: $COOKIE" "$1"; }
SIZE_SA=$(size "$URL/orgs/$ORG/serviceAccounts"); SIZE_EV=$(size "$URL/orgs/$ORG/events")
SIZE_CSS=$(size "$URL/static/console.css"); SIZE_JS=$(size "$URL/static/console.js")

ratio() { python3 -c "print(f'{$1/$2*100:.0f}%')"; }

# The token/baseline ratio is the headline figure, and this machine's speed drifts between
# consecutive runs; so also measure it as three alternating (baseline, token) pairs of
# DURATION/2 seconds each and report every pair's ratio and their median.
PAIR_SECS=$(( DURATION / 2 > 2 ? DURATION / 2 : 2 ))
PAIRS=()
for i in 1 2 3; do
  run "pair_base_$i" "$WORK/token.lua" "http://127.0.0.1:$BASE_PORT/sign" "$PAIR_SECS"
  run "pair_token_$i" "$WORK/token.lua" "$URL/api/oauth/token" "$PAIR_SECS"
  PAIRS+=("$(python3 -c "print(round(${RPS[pair_token_$i]}/${RPS[pair_base_$i]}*100))")")
done
# The event log with a million events (loaded now, so the rows above ran on a small database).
echo "Loading 1,000,000 events into org $ORG ..."
PROJ=$(jq -r .projectId "$B")
python3 scripts/load-events.py "$DATA/data/tessera.db" "$ORG" 1000000 "$PROJ"
sync
cat >"$WORK/events.lua" <<LUA
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.atlas.2023-01-01+json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
curl -sf -H "Accept: application/vnd.atlas.2023-01-01+json" -H "Authorization: Bearer $TOKEN" \
  "$URL/api/atlas/v2/orgs/$ORG/events?itemsPerPage=1" | jq -e '.totalCount >= 1000000' >/dev/null \
  || { echo "the event log does not show the loaded events"; exit 1; }
run events_page1 "$WORK/events.lua" "$URL/api/atlas/v2/orgs/$ORG/events?itemsPerPage=100" "$DURATION" 1
run events_page1000 "$WORK/events.lua" "$URL/api/atlas/v2/orgs/$ORG/events?itemsPerPage=100&pageNum=1000" "$DURATION" 1
run events_type_page1000 "$WORK/events.lua" "$URL/api/atlas/v2/orgs/$ORG/events?itemsPerPage=100&pageNum=1000&eventType=API_KEY_CREATED" "$DURATION" 1

# A million service accounts: stop the server, load them (100,000 in this org, 900 more orgs
# of 1,000), start again and time the start (registry load included) to a healthy /healthz.
echo "Stopping the server to load 1,000,000 service accounts ..."
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
python3 scripts/load-service-accounts.py "$DATA/data/tessera.db" "$ORG" 100000 900 1000
sync
T_START=$(date +%s.%N)
taskset -c "$SERVER_CPU" target/release/tessera serve \
  --data-dir "$DATA/data" --listen "127.0.0.1:$PORT" --oauth-rate-limit-per-minute 0 \
  >"$WORK/server2.out" 2>"$WORK/server2.err" &
SERVER2=$!
PIDS+=("$SERVER2")
until curl -sf "$URL/healthz" >/dev/null; do
  kill -0 "$SERVER2" 2>/dev/null || { echo "the server died on start:"; cat "$WORK/server2.err"; exit 1; }
  sleep 0.02
done
START_SECS=$(python3 -c "print(f'{$(date +%s.%N) - $T_START:.2f}')")
RSS_START=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$SERVER2/status")
cat >"$WORK/sa.lua" <<LUA
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.atlas.2024-08-05+json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
curl -sf -H "Accept: application/vnd.atlas.2024-08-05+json" -H "Authorization: Bearer $TOKEN" \
  "$URL/api/atlas/v2/orgs/$ORG/serviceAccounts?itemsPerPage=100&pageNum=1000" | jq -e '.results | length == 100' >/dev/null \
  || { echo "page 1000 of the org's service accounts is not full"; exit 1; }
run sa_page1 "$WORK/sa.lua" "$URL/api/atlas/v2/orgs/$ORG/serviceAccounts?itemsPerPage=100" "$DURATION" 1
run sa_page1000 "$WORK/sa.lua" "$URL/api/atlas/v2/orgs/$ORG/serviceAccounts?itemsPerPage=100&pageNum=1000" "$DURATION" 1
run baseline_sign_1m "$WORK/token.lua" "http://127.0.0.1:$BASE_PORT/sign"
run token_1m "$WORK/token.lua" "$URL/api/oauth/token"
RSS_PEAK=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$SERVER2/status")

printf '\n%-22s %12s %10s %10s  %s\n' endpoint "req/s" p50 p99 "ratio"
for n in baseline_trivial baseline_sign healthz token bearer_get digest_get revoke healthz_1c console_sa_page console_events_page events_page1 events_page1000 events_type_page1000 sa_page1 sa_page1000 baseline_sign_1m token_1m; do
  case $n in
    token) r="$(ratio "${RPS[token]}" "${RPS[baseline_sign]}") of one-signature baseline";;
    digest_get) r="$(ratio "${RPS[$n]}" "${RPS[bearer_get]}") of bearer_get";;
    bearer_get|revoke) r="$(ratio "${RPS[$n]}" "${RPS[healthz]}") of Tessera /healthz";;
    events_*) r="1 connection, 1,000,000 events (target p99 < 10 ms)";;
    healthz_1c) r="1 connection";;
    console_*) r="1 connection, HTML for a signed-in owner, $(ratio "${RPS[$n]}" "${RPS[healthz_1c]}") of healthz_1c";;
    sa_page*) r="1 connection, 100 per page, 100,000 in the org, 1,000,000 in all (target p99 < 10 ms)";;
    token_1m) r="$(ratio "${RPS[token_1m]}" "${RPS[baseline_sign_1m]}") of one-signature baseline, 1,000,000 accounts loaded";;
    healthz) r="$(ratio "${RPS[healthz]}" "${RPS[baseline_trivial]}") of bare axum trivial";;
    *) r="";;
  esac
  printf '%-22s %12s %10s %10s  %s\n' "$n" "${RPS[$n]}" "${P50[$n]}" "${P99[$n]}" "$r"
done
MEDIAN=$(printf '%s\n' "${PAIRS[@]}" | sort -n | sed -n 2p)
printf '\ntoken / one-signature baseline, alternating pairs of %ss: %s%% %s%% %s%% (median %s%%)\n' \
  "$PAIR_SECS" "${PAIRS[0]}" "${PAIRS[1]}" "${PAIRS[2]}" "$MEDIAN"
printf 'with 1,000,000 service accounts: start to healthy /healthz %s s (target < 10 s); RSS %s MiB after start, peak %s MiB (target < 1024)\n' \
  "$START_SECS" "$RSS_START" "$RSS_PEAK"
printf 'console bytes on a first visit: service accounts page %s, events page %s (50 events), console.css %s, console.js %s\n' \
  "$SIZE_SA" "$SIZE_EV" "$SIZE_CSS" "$SIZE_JS"
