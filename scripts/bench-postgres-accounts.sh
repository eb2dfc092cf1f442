#!/usr/bin/env bash
# A million service accounts and a million events on PostgreSQL: loads 1,000,000 accounts
# (100,000 in the bootstrap org, 900,000 in another) with two unexpired secrets each, and
# 1,000,000 events in the bootstrap org's log, straight into a fresh database of a throwaway
# cluster (scripts/with-postgres.sh), then reports the release server's time from start to
# healthy, its RSS, pages 1 and 1000 of the event log (and page 1000 of one type) and of the
# org's accounts (p99, wrk, Bearer, one connection) and token issuance against the
# one-signature baseline. Unlike scripts/bench.sh it does not pin CPUs: PostgreSQL needs a
# core of its own.
#
#   scripts/bench-postgres-accounts.sh
#
# Benchmark data only: it makes its own cluster and removes it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TESSERA_TEST_POSTGRES_URL:-}" ]; then
  cargo build --release -q -p tessera
  exec scripts/with-postgres.sh "$0" "$@"
fi
BIN=${TESSERA:-target/release/tessera}
psql=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/psql
ADMIN=$TESSERA_TEST_POSTGRES_URL
"$psql" "$ADMIN" -q -c "CREATE DATABASE bench"
URL="${ADMIN%/*}/bench"
DATA=$(mktemp -d); chmod 700 "$DATA"
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$BIN" serve --data-dir "$DATA/d" --listen 127.0.0.1:$PORT --database-url "$URL" >"$DATA/out1" 2>&1 &
pid=$!
until curl -sf http://127.0.0.1:$PORT/healthz >/dev/null; do sleep 0.2; done
kill -TERM $pid; wait $pid || true
ORG=$(python3 -c "import json,sys; print(json.load(open('$DATA/d/bootstrap.json'))['orgId'])")
PUB=$(python3 -c "import json,sys; print(json.load(open('$DATA/d/bootstrap.json'))['publicKey'])")
PRIV=$(python3 -c "import json,sys; print(json.load(open('$DATA/d/bootstrap.json'))['privateKey'])")
t0=$(date +%s.%N)
"$psql" "$URL" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO orgs (id, name, skip_default_alerts, created_at) VALUES ('ffffffffffffffffffffffff', 'bench-other', false, 0);
-- Places in each org after the one account the server made (migration 0007).
INSERT INTO service_accounts (id, org_id, name, description, org_roles, created_at, org_pos)
  SELECT lpad(to_hex(i), 24, '0'), CASE WHEN i <= 100000 THEN '$ORG' ELSE 'ffffffffffffffffffffffff' END,
         'sa' || i, 'bench', 'ORG_MEMBER', 1700000000000,
         CASE WHEN i <= 100000 THEN i + (SELECT COALESCE(MAX(last_pos), 0) FROM sa_org_counts WHERE org_id = '$ORG')
              ELSE i - 100000 END
  FROM generate_series(1, 1000000) AS i;
INSERT INTO sa_secrets (id, account_id, secret_hash, masked, created_at, expires_at)
  SELECT 'a' || lpad(to_hex(i * 2 + k), 23, '0'), lpad(to_hex(i), 24, '0'), decode(md5(i::text || k::text) || md5(k::text || i::text), 'hex'),
         'mdb_sa_sk_****abcd', 1700000000000, 4102444800000
  FROM generate_series(1, 1000000) AS i, generate_series(0, 1) AS k;
INSERT INTO sa_org_counts (org_id, n, last_pos)
  SELECT org_id, COUNT(*), MAX(org_pos) FROM service_accounts GROUP BY org_id
  ON CONFLICT (org_id) DO UPDATE SET n = excluded.n, last_pos = excluded.last_pos;
DELETE FROM sa_org_blocks;
INSERT INTO sa_org_blocks (org_id, block, n)
  SELECT org_id, (org_pos - 1) / 1024, COUNT(*) FROM service_accounts GROUP BY 1, 2;
-- A million events in the org's log, numbered after what the server wrote (migration 0007).
INSERT INTO events (id, created_at, event_type, org_id, actor_kind, actor_api_key_id,
                    actor_public_key, remote_address, target, count, org_pos, org_type_pos)
  SELECT 'e' || lpad(to_hex(i), 23, '0'), 1600000000000 + i * 1000, t, '$ORG', 'api_key',
         repeat('0', 24), 'benchkey', '127.0.0.1', '{"targetPublicKey":"benchkey"}', 1,
         COALESCE((SELECT n FROM event_counts WHERE scope = 'org:$ORG'), 0) + i,
         COALESCE((SELECT n FROM event_counts WHERE scope = 'org:$ORG:' || t), 0)
           + ROW_NUMBER() OVER (PARTITION BY t ORDER BY i)
  FROM (SELECT i, (ARRAY['API_KEY_CREATED', 'API_KEY_ROLES_CHANGED', 'SERVICE_ACCOUNT_CREATED',
                         'SERVICE_ACCOUNT_SECRET_ADDED', 'SERVICE_ACCOUNT_TOKEN_REVOKED',
                         'GROUP_CREATED'])[1 + i % 6] AS t
        FROM generate_series(1, 1000000) AS i) AS g;
INSERT INTO event_counts (scope, n)
  SELECT 'org:$ORG', MAX(org_pos) FROM events WHERE org_id = '$ORG'
  UNION ALL
  SELECT 'org:$ORG:' || event_type, MAX(org_type_pos) FROM events WHERE org_id = '$ORG' GROUP BY event_type
  ON CONFLICT (scope) DO UPDATE SET n = excluded.n;
VACUUM ANALYZE;
-- Write the load's dirty pages out now, not while the rows below are measured.
CHECKPOINT;
SQL
t1=$(date +%s.%N)
echo "loaded 1,000,000 accounts and 2,000,000 secrets in $(echo "$t1 - $t0" | bc) s"
s0=$(date +%s.%N)
"$BIN" serve --data-dir "$DATA/d" --listen 127.0.0.1:$PORT --database-url "$URL" --oauth-rate-limit-per-minute 0 >"$DATA/out2" 2>&1 &
pid=$!
until curl -sf http://127.0.0.1:$PORT/healthz >/dev/null; do sleep 0.05; done
s1=$(date +%s.%N)
echo "start to healthy: $(echo "$s1 - $s0" | bc) s; RSS $(( $(awk '/VmRSS/{print $2}' /proc/$pid/status) / 1024 )) MB"
# The same rows as scripts/bench.sh's million-account section: pages 1 and 1000 of the org's
# 100,000 accounts with a Bearer token on one connection (p99 is a request's own latency), and
# token issuance against the one-signature baseline in the same run (64 connections).
command -v wrk >/dev/null || { echo "missing wrk (apt-get install -y wrk)"; exit 1; }
cargo build --release -q -p tessera-bench
BASE_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
target/release/sign-baseline "127.0.0.1:$BASE_PORT" >/dev/null 2>&1 &
basepid=$!
until curl -sf "http://127.0.0.1:$BASE_PORT/trivial" >/dev/null; do sleep 0.05; done
SA=$(curl -sf --digest -u "$PUB:$PRIV" -H "Accept: application/vnd.atlas.2024-08-05+json" \
  -H "Content-Type: application/json" -X POST "http://127.0.0.1:$PORT/api/atlas/v2/orgs/$ORG/serviceAccounts" \
  -d '{"name":"bench","description":"benchmark","roles":["ORG_OWNER"],"secretExpiresAfterHours":24}')
CID=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['clientId'])" "$SA")
SECRET=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['secrets'][0]['secret'])" "$SA")
BASIC=$(printf '%s:%s' "$CID" "$SECRET" | base64 -w0)
TOKEN=$(curl -sf -u "$CID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/api/oauth/token" \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])")
cat >"$DATA/sa.lua" <<LUA
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.atlas.2024-08-05+json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
cat >"$DATA/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
row() { # name connections script url
  wrk -t1 -c"$2" -d5s --latency -s "$3" "$4" >"$DATA/$1.txt"
  printf '%-16s %10s req/s  p50 %8s  p99 %8s\n' "$1" "$(awk '/Requests\/sec/ {print $2}' "$DATA/$1.txt")" \
    "$(awk '$1=="50%" {print $2}' "$DATA/$1.txt")" "$(awk '$1=="99%" {print $2}' "$DATA/$1.txt")"
  grep -E "Non-2xx|Socket errors" "$DATA/$1.txt" || true
}
cat >"$DATA/events.lua" <<LUA
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.atlas.2023-01-01+json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
EV="http://127.0.0.1:$PORT/api/atlas/v2/orgs/$ORG/events?itemsPerPage=100"
curl -sf -H "Accept: application/vnd.atlas.2023-01-01+json" -H "Authorization: Bearer $TOKEN" \
  "$EV&pageNum=1000&eventType=API_KEY_CREATED" | jq -e '.results | length == 100' >/dev/null \
  || { echo "page 1000 of the org's API_KEY_CREATED events is not full"; exit 1; }
row events_page1 1 "$DATA/events.lua" "$EV"
row events_page1000 1 "$DATA/events.lua" "$EV&pageNum=1000"
row events_type_page1000 1 "$DATA/events.lua" "$EV&pageNum=1000&eventType=API_KEY_CREATED"
row sa_page1 1 "$DATA/sa.lua" "http://127.0.0.1:$PORT/api/atlas/v2/orgs/$ORG/serviceAccounts?itemsPerPage=100"
row sa_page1000 1 "$DATA/sa.lua" "http://127.0.0.1:$PORT/api/atlas/v2/orgs/$ORG/serviceAccounts?itemsPerPage=100&pageNum=1000"
# Token issuance does no database I/O: measured as scripts/bench.sh does, the server and the
# baseline pinned to CPU 0 and wrk to CPU 1.
taskset -a -p -c 0 "$pid" >/dev/null
taskset -a -p -c 0 "$basepid" >/dev/null
row() { # name connections script url
  taskset -c 1 wrk -t1 -c"$2" -d5s --latency -s "$3" "$4" >"$DATA/$1.txt"
  printf '%-16s %10s req/s  p50 %8s  p99 %8s\n' "$1" "$(awk '/Requests\/sec/ {print $2}' "$DATA/$1.txt")" \
    "$(awk '$1=="50%" {print $2}' "$DATA/$1.txt")" "$(awk '$1=="99%" {print $2}' "$DATA/$1.txt")"
  grep -E "Non-2xx|Socket errors" "$DATA/$1.txt" || true
}
row baseline_sign 64 "$DATA/token.lua" "http://127.0.0.1:$BASE_PORT/sign"
row token 64 "$DATA/token.lua" "http://127.0.0.1:$PORT/api/oauth/token"
python3 -c "
a=float(open('$DATA/token.txt').read().split('Requests/sec:')[1].split()[0])
b=float(open('$DATA/baseline_sign.txt').read().split('Requests/sec:')[1].split()[0])
print(f'token / one-signature baseline: {a/b*100:.0f}%')"
echo "RSS after the runs: $(( $(awk '/VmRSS/{print $2}' /proc/$pid/status) / 1024 )) MB, peak $(( $(awk '/VmHWM/{print $2}' /proc/$pid/status) / 1024 )) MB"
kill "$basepid" 2>/dev/null || true
kill -TERM $pid; wait $pid || true
rm -rf "$DATA"
