#!/usr/bin/env bash
# A million service accounts on PostgreSQL: loads 1,000,000 accounts (100,000 in the
# bootstrap org, 900,000 in another) with two unexpired secrets each straight into a fresh
# database of a throwaway cluster (scripts/with-postgres.sh), then reports the release
# server's time from start to healthy, its RSS, and the org listing's pages 1 and 1000.
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
INSERT INTO service_accounts (id, org_id, name, description, org_roles, created_at)
  SELECT lpad(to_hex(i), 24, '0'), CASE WHEN i <= 100000 THEN '$ORG' ELSE 'ffffffffffffffffffffffff' END,
         'sa' || i, 'bench', 'ORG_MEMBER', 1700000000000
  FROM generate_series(1, 1000000) AS i;
INSERT INTO sa_secrets (id, account_id, secret_hash, masked, created_at, expires_at)
  SELECT 'a' || lpad(to_hex(i * 2 + k), 23, '0'), lpad(to_hex(i), 24, '0'), decode(md5(i::text || k::text) || md5(k::text || i::text), 'hex'),
         'mdb_sa_sk_****abcd', 1700000000000, 4102444800000
  FROM generate_series(1, 1000000) AS i, generate_series(0, 1) AS k;
VACUUM ANALYZE;
SQL
t1=$(date +%s.%N)
echo "loaded 1,000,000 accounts and 2,000,000 secrets in $(echo "$t1 - $t0" | bc) s"
s0=$(date +%s.%N)
"$BIN" serve --data-dir "$DATA/d" --listen 127.0.0.1:$PORT --database-url "$URL" >"$DATA/out2" 2>&1 &
pid=$!
until curl -sf http://127.0.0.1:$PORT/healthz >/dev/null; do sleep 0.05; done
s1=$(date +%s.%N)
echo "start to healthy: $(echo "$s1 - $s0" | bc) s; RSS $(( $(awk '/VmRSS/{print $2}' /proc/$pid/status) / 1024 )) MB"
for page in 1 1000; do
  a=$(date +%s.%N)
  n=$(curl -s --digest -u "$PUB:$PRIV" -H 'Accept: application/vnd.atlas.2024-08-05+json' \
      "http://127.0.0.1:$PORT/api/atlas/v2/orgs/$ORG/serviceAccounts?pageNum=$page&itemsPerPage=100" \
      | python3 -c "import json,sys; d=json.load(sys.stdin); print(len(d['results']), d.get('totalCount'))")
  b=$(date +%s.%N)
  echo "org listing page $page: $n (results, totalCount) in $(echo "($b - $a)*1000" | bc) ms (two requests: Digest challenge + answer)"
done
kill -TERM $pid; wait $pid || true
rm -rf "$DATA"
