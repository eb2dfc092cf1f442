#!/usr/bin/env bash
# Runs the README's ```sh blocks in order, as a newcomer following it top to bottom would, so
# that they cannot drift from what the binary does.
#
#   scripts/run-readme.sh               # every block but the PostgreSQL try (SQLite)
#   scripts/with-postgres.sh scripts/run-readme.sh --postgres
#                                       # the "Several nodes on one PostgreSQL database" block
#
# How it runs them:
# - In a fresh temporary directory that stands in for the clone: a git repository holding the
#   working tree's README.md and .gitignore, and `target/release/tessera`, a symlink to the
#   binary under test ($TESSERA_BIN; default target/release/tessera, else target/debug/tessera).
#   The README tells newcomers to `export PATH="$PWD/target/release:$PATH"`; that line runs
#   as written and finds the symlink. At the end every file the blocks left must be ignored by
#   .gitignore (nothing the README makes may show up in `git status`).
# - All blocks are sourced, one after another, by this one shell: a variable set in one block
#   is there for the next (as in a newcomer's terminal). `set -euo pipefail`: any failing
#   command fails the run, naming the README line of its block. `curl` is a function that adds
#   `--fail-with-body --show-error`, so an HTTP error answer fails the run (every curl line in
#   the README expects success; Digest's first 401 challenge is not a failure for curl).
# - An HTML comment on the line before a block's fence changes how it runs:
#     <!-- readme-run: skip (reason) -->      not run; the reason is printed
#     <!-- readme-run: serve (...) -->        the block's `cargo run --release -- serve` is
#         run as `$TESSERA_BIN serve` in the background (no second release build here;
#         scripts/check-readme-run.sh runs the line exactly as written), then /healthz is
#         awaited
#     <!-- readme-run: postgres (...) -->     run only with --postgres, inside
#         scripts/with-postgres.sh: PGHOST/PGPORT/PGUSER point at its throwaway server (trust
#         authentication, superuser `postgres`) and the README's `127.0.0.1:5432` is rewritten
#         to its port; the `export PATH=` line of the Quickstart runs first
#   Any other marker fails the run.
# - After a block that starts `tessera serve … &`, /healthz is awaited on each `--listen`.
# - The README's ports 8080..8082 are used as written when free; when one is taken (another
#   server on this machine) the three are rewritten to three free consecutive ports, and
#   `tessera serve` without --listen is given TESSERA_LISTEN. The run says so.
# - Checks after the blocks: SQLite: the server, restarted as the README says after
#   `tessera rotate-signing-key`, publishes one more signing key and exits 0 on SIGTERM.
#   PostgreSQL: exactly one node bootstrapped, its API key works on both nodes, both exit 0 on
#   SIGTERM.
# Every process started here is stopped on exit, however the run ends.
set -euo pipefail
set -E

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=sqlite
case "${1:-}" in
  "") ;;
  --postgres) MODE=postgres ;;
  *) echo "usage: $0 [--postgres]" >&2; exit 64 ;;
esac

if [ -z "${TESSERA_BIN:-}" ]; then
  if [ -x "$REPO/target/release/tessera" ]; then TESSERA_BIN=$REPO/target/release/tessera
  else TESSERA_BIN=$REPO/target/debug/tessera; fi
fi
if [ ! -x "$TESSERA_BIN" ]; then
  echo "run-readme: no tessera binary at $TESSERA_BIN (cargo build, or set TESSERA_BIN)" >&2
  exit 1
fi
TESSERA_BIN=$(cd "$(dirname "$TESSERA_BIN")" && pwd)/$(basename "$TESSERA_BIN")
for tool in jq curl git python3; do
  command -v "$tool" >/dev/null || { echo "run-readme: $tool is required" >&2; exit 1; }
done

PG_URL=${TESSERA_TEST_POSTGRES_URL:-}
if [ "$MODE" = postgres ] && [ -z "$PG_URL" ]; then
  echo "run-readme: --postgres runs under scripts/with-postgres.sh (TESSERA_TEST_POSTGRES_URL unset)" >&2
  exit 1
fi
# A newcomer's shell has no TESSERA_* settings of ours (CI's would change what runs).
while IFS= read -r var; do
  [ "$var" = TESSERA_BIN ] || unset "$var"
done < <(compgen -e | grep '^TESSERA_' || true)
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# $TMP_ROOT/clone stands in for the clone; the extracted blocks and the server's log live
# beside it, not in it (the .gitignore check below must see only what the README made).
TMP_ROOT=$(mktemp -d /tmp/tessera-readme.XXXXXX)
chmod 0700 "$TMP_ROOT"
WORK=$TMP_ROOT/clone
BLOCKS=$TMP_ROOT/blocks
mkdir "$WORK" "$BLOCKS"

# ---- ports ---------------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
BASE=8080
if port_in_use 8080 || port_in_use 8081 || port_in_use 8082; then
  BASE=18080
  while port_in_use "$BASE" || port_in_use $((BASE + 1)) || port_in_use $((BASE + 2)); do
    BASE=$((BASE + 3))
  done
  echo "run-readme: a port of 8080..8082 is taken on this machine; the README's ports become $BASE..$((BASE + 2))"
fi
PGPORT_RUN=
if [ "$MODE" = postgres ]; then
  PGPORT_RUN=$(printf '%s' "$PG_URL" | sed -E 's#^[a-z]+://[^@]*@[^:/]+:([0-9]+)/.*#\1#')
fi

# ---- extract the blocks ----------------------------------------------------------------------
# One file per block (NNN.sh, its text with the ports rewritten) and a manifest line per
# block: index, README line, marker, reason.
python3 - "$REPO/README.md" "$BLOCKS" "$BASE" "$PGPORT_RUN" <<'PY'
import re, sys
readme, out, base, pgport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(readme, encoding="utf-8").read().split("\n")
marker_re = re.compile(r"^<!-- readme-run: ([a-z]+)(?: \((.*)\))? -->$")
blocks, i, prev = [], 0, ""
while i < len(lines):
    line = lines[i]
    if line.strip() == "```sh":
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            sys.exit(f"run-readme: README.md line {start}: unclosed ```sh block")
        m = marker_re.match(prev.strip())
        if prev.strip().startswith("<!-- readme-run") and not m:
            sys.exit(f"run-readme: README.md line {start - 1}: malformed marker {prev!r}")
        blocks.append((start + 1, m.group(1) if m else "run", (m.group(2) or "") if m else "", body))
    if line.strip():
        prev = line
    i += 1
with open(f"{out}/manifest", "w") as manifest:
    for n, (lineno, marker, reason, body) in enumerate(blocks):
        text = "\n".join(body) + "\n"
        for k in range(3):
            text = text.replace(f"127.0.0.1:{8080 + k}", f"127.0.0.1:{base + k}")
            text = text.replace(f"localhost:{8080 + k}", f"localhost:{base + k}")
        if pgport:
            text = text.replace("127.0.0.1:5432", f"127.0.0.1:{pgport}")
        with open(f"{out}/{n:03d}.sh", "w") as f:
            f.write(text)
        manifest.write(f"{n:03d}\t{lineno}\t{marker}\t{reason}\n")
print(f"run-readme: {len(blocks)} sh blocks in README.md")
PY

# ---- the stand-in clone ---------------------------------------------------------------------
cp "$REPO/README.md" "$REPO/.gitignore" "$WORK/"
mkdir -p "$WORK/target/release"
ln -s "$TESSERA_BIN" "$WORK/target/release/tessera"
git -C "$WORK" init -q
git -C "$WORK" add README.md .gitignore
echo "run-readme: working copy $WORK; tessera = $TESSERA_BIN; mode $MODE"

# ---- processes ------------------------------------------------------------------------------
SERVE_LOG=$TMP_ROOT/serve.log
SERVER_PID=
READMELINE=0
cleanup() {
  local status=$?
  trap - ERR
  set +e
  # Every background job this shell started: the server and the README's `tessera serve … &`.
  local pids
  pids=$(jobs -p)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 1 100); do
      # shellcheck disable=SC2086
      kill -0 $pids 2>/dev/null || break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    wait 2>/dev/null
  fi
  if [ "$status" -ne 0 ] && [ -f "$SERVE_LOG" ]; then
    echo "run-readme: the server's log (last 40 lines):" >&2
    tail -n 40 "$SERVE_LOG" >&2
  fi
  rm -rf "$TMP_ROOT"
  exit "$status"
}
trap cleanup EXIT
trap 'rr_status=$?; echo; echo "run-readme: FAILED in the README block at line $READMELINE (status $rr_status): $BASH_COMMAND" >&2' ERR

wait_healthy() { # ADDR [PID]
  local addr=$1 pid=${2:-}
  for _ in $(seq 1 600); do
    if command curl -fsS --max-time 2 "http://$addr/healthz" >/dev/null 2>&1; then
      echo "run-readme: $addr/healthz answered"
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "run-readme: the server for $addr exited before /healthz answered" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "run-readme: no /healthz on $addr within 60 s" >&2
  return 1
}

stop_and_expect_zero() { # PID NAME
  local status=0
  kill -TERM "$1"
  wait "$1" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "run-readme: $2 exited $status after SIGTERM (want 0)" >&2
    return 1
  fi
}

start_server() { # the README's `cargo run --release -- serve`, as the built binary
  local cmd=$1 listen_env=()
  case "$cmd" in
    "cargo run --release -- serve"*) ;;
    *) echo "run-readme: a serve block must be \`cargo run --release -- serve …\`, got: $cmd" >&2; return 1 ;;
  esac
  if [ "$BASE" -ne 8080 ]; then listen_env=(TESSERA_LISTEN="127.0.0.1:$BASE"); fi
  # shellcheck disable=SC2086
  (cd "$WORK" && exec env "${listen_env[@]}" "$TESSERA_BIN" ${cmd#cargo run --release -- }) \
    >"$SERVE_LOG" 2>&1 &
  SERVER_PID=$!
  wait_healthy "127.0.0.1:$BASE" "$SERVER_PID"
}

# The README's curl lines expect success: an HTTP error answer fails the run. No progress
# meter: curl draws it here only because stdout is not a terminal, as it is for a newcomer.
curl() { command curl --fail-with-body --show-error --no-progress-meter "$@"; }

run_block() { # FILE LINE
  READMELINE=$2
  echo
  echo "---- README.md line $2 ----"
  sed 's/^/| /' "$1"
  echo "----"
  cd "$WORK"
  # shellcheck disable=SC1090
  source "$1"
  cd "$WORK"
  echo # curl prints JSON without a final newline
  # A block that started servers in the background: wait until each answers.
  local addr
  while read -r addr; do
    [ -n "$addr" ] && wait_healthy "$addr"
  done < <({ grep -E '^[[:space:]]*tessera serve .*&[[:space:]]*$' "$1" || true; } |
    sed -nE 's/.*--listen[ =]([^ ]+).*/\1/p')
}

ran=0
skipped=()
# The manifest on fd 3: a block's command that reads stdin cannot eat it.
while IFS=$'\t' read -r -u 3 n line marker reason; do
  file=$BLOCKS/$n.sh
  case "$MODE:$marker" in
    sqlite:run)
      run_block "$file" "$line"; ran=$((ran + 1)) ;;
    sqlite:serve)
      READMELINE=$line
      echo
      echo "---- README.md line $line (the server, in the background: $reason) ----"
      start_server "$(head -n 1 "$file")"; ran=$((ran + 1)) ;;
    sqlite:postgres)
      skipped+=("line $line: PostgreSQL (scripts/run-readme.sh --postgres runs it)") ;;
    postgres:postgres)
      # The Quickstart's PATH line first: the block calls `tessera`.
      path_line=$(grep -h -m1 -E '^export PATH=' "$BLOCKS"/[0-9]*.sh || true)
      if [ -z "$path_line" ]; then
        echo "run-readme: no \`export PATH=\` line in the README's blocks" >&2
        exit 1
      fi
      cd "$WORK" && eval "$path_line"
      PG_BIN_DIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
      if [ -n "$PG_BIN_DIR" ]; then PATH=$PG_BIN_DIR:$PATH; fi
      export PGHOST=127.0.0.1 PGPORT=$PGPORT_RUN PGUSER=postgres
      run_block "$file" "$line"; ran=$((ran + 1)) ;;
    postgres:*) ;;
    *:skip)
      if [ -z "$reason" ]; then
        echo "run-readme: README.md line $line: a skip needs a reason" >&2
        exit 1
      fi
      skipped+=("line $line: $reason") ;;
    *)
      echo "run-readme: README.md line $line: unknown marker '$marker'" >&2
      exit 1 ;;
  esac
done 3<"$BLOCKS/manifest"
READMELINE="(checks after the blocks)"

if [ "$ran" -eq 0 ]; then
  echo "run-readme: no block ran" >&2
  exit 1
fi

jwks_keys() { command curl -fsS "http://127.0.0.1:$BASE/.well-known/jwks.json" | jq '.keys | length'; }
digest_orgs() { # ADDR KEYFILE: GET /orgs with the bootstrap key
  local pub priv
  pub=$(jq -r .publicKey "$2") priv=$(jq -r .privateKey "$2")
  command curl -fsS --digest --user "$pub:$priv" \
    --header "Accept: application/vnd.atlas.2023-01-01+json" \
    "http://$1/api/atlas/v2/orgs" | jq -e '.totalCount == 1' >/dev/null
}

if [ "$MODE" = sqlite ]; then
  if [ -z "$SERVER_PID" ]; then
    echo "run-readme: no block started the server" >&2
    exit 1
  fi
  # `tessera rotate-signing-key` ran above: a restart signs with one more key.
  before=$(jwks_keys)
  stop_and_expect_zero "$SERVER_PID" "the server"
  start_server "cargo run --release -- serve"
  after=$(jwks_keys)
  if [ "$after" -ne $((before + 1)) ]; then
    echo "run-readme: JWKS has $after keys after rotate-signing-key and a restart, $before before (want one more)" >&2
    exit 1
  fi
  echo "run-readme: after rotate-signing-key and a restart the JWKS has $after keys (was $before)"
  stop_and_expect_zero "$SERVER_PID" "the restarted server"
else
  # Exactly one node bootstrapped, and its key works on both.
  boots=$(ls "$WORK"/node-a/bootstrap.json "$WORK"/node-b/bootstrap.json 2>/dev/null || true)
  if [ "$(printf '%s\n' "$boots" | grep -c .)" -ne 1 ]; then
    echo "run-readme: want exactly one node's bootstrap.json, found: ${boots:-none}" >&2
    exit 1
  fi
  digest_orgs "127.0.0.1:$((BASE + 1))" "$boots"
  digest_orgs "127.0.0.1:$((BASE + 2))" "$boots"
  echo "run-readme: one node bootstrapped ($boots); its API key works on both nodes"
  for pid in $(jobs -p); do stop_and_expect_zero "$pid" "a node (pid $pid)"; done
fi

# Nothing the README made may be untracked and unignored in a clone.
untracked=$(git -C "$WORK" status --porcelain --untracked-files=all | grep '^??' || true)
if [ -n "$untracked" ]; then
  echo "run-readme: the README's commands left files .gitignore does not cover:" >&2
  echo "$untracked" >&2
  exit 1
fi

echo
echo "run-readme ($MODE): $ran block(s) ran; skipped: ${#skipped[@]}"
for s in "${skipped[@]}"; do echo "  skipped $s"; done
echo "run-readme: OK"
