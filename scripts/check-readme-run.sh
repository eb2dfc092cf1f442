#!/usr/bin/env bash
# Runs the README's "run the server" command exactly as written (the first line of the
# ```sh block after "Run the server"), waits for /healthz, stops the server with SIGTERM and
# fails unless it exits 0. A newcomer's first command must never break unnoticed (it once
# did: a second binary made `cargo run` ambiguous).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cmd=$(awk '/^Run the server/ {found=1} found && /^```sh/ {getline; print; exit}' README.md)
if [ -z "$cmd" ]; then
  echo "check-readme-run: no run command found in README.md" >&2
  exit 1
fi
# The address the README says it listens on.
addr=$(grep -o 'listening on `[^`]*`' README.md | head -n 1 | sed 's/.*`\(.*\)`/\1/')
addr=${addr:-127.0.0.1:8080}
echo "README run command: $cmd"
echo "README address:     $addr"

log=$(mktemp)
# Its own session, so the whole tree (cargo and the server it starts) can be found.
setsid bash -c "$cmd" >"$log" 2>&1 &
leader=$!
cleanup() { kill -KILL -- "-$leader" 2>/dev/null || true; }
trap cleanup EXIT

deadline=$((SECONDS + 1500)) # a cold release build on two cores
until curl -fsS "http://$addr/healthz" >/dev/null 2>&1; do
  if ! kill -0 "$leader" 2>/dev/null; then
    echo "check-readme-run: the command exited before /healthz answered:" >&2
    cat "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "check-readme-run: /healthz did not answer in time:" >&2
    tail -n 50 "$log" >&2
    exit 1
  fi
  sleep 1
done
echo "/healthz answered"

server=$(pgrep -s "$leader" -x tessera | head -n 1 || true)
if [ -z "$server" ]; then
  echo "check-readme-run: no tessera process under the command" >&2
  exit 1
fi
kill -TERM "$server"
status=0
wait "$leader" || status=$?
trap - EXIT
if [ "$status" -ne 0 ]; then
  echo "check-readme-run: exit status $status after SIGTERM (want 0):" >&2
  tail -n 50 "$log" >&2
  exit 1
fi
if curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then
  echo "check-readme-run: something still answers on $addr after the stop" >&2
  exit 1
fi
echo "README run command: started, answered /healthz, stopped cleanly on SIGTERM"
