#!/usr/bin/env bash
# The end-to-end benchmark: one command, one table.
#
#   bench/e2e.sh                                                 # SQLite (WAL, synchronous=FULL)
#   bench/e2e.sh postgres://postgres@127.0.0.1:5432/malipo_bench  # PostgreSQL (the database is emptied)
#
# It builds a release binary, measures start-up, starts `malipo serve` on a
# scratch database, and runs `malipo bench http` against it: payment creation
# at fixed rates (latency from when each request was due: no coordinated
# omission) and at saturation, the sandbox round trip (create → simulator
# approves → webhook received), memory with 100,000 payments pending and
# 1,000 connections open, and a check that every acknowledged payment is in
# the database. Then `malipo bench webhooks` and `malipo bench ledger` on
# their own scratch databases.
#
# Environment: SECONDS_PER_PHASE (default 10), RATES (default 1000,2500,5000),
# PENDING (default 100000), CONNECTIONS (default 256), PORT (default 8199).
set -euo pipefail
cd "$(dirname "$0")/.."
database_url="${1:-}"
seconds="${SECONDS_PER_PHASE:-10}"
rates="${RATES:-1000,2500,5000}"
pending="${PENDING:-100000}"
connections="${CONNECTIONS:-256}"
port="${PORT:-8199}"

cargo build --release --quiet
binary="$PWD/target/release/malipo"
scratch="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

reset_postgres() {
  local admin="${database_url%/*}/postgres" name="${database_url##*/}"
  psql "$admin" -qc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
}

if [ -n "$database_url" ]; then
  reset_postgres
  export DATABASE_URL="$database_url"
  backend="PostgreSQL"
else
  export DATABASE_URL="sqlite:$scratch/malipo.db"
  backend="SQLite"
fi
export MALIPO_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
# One key drives thousands of requests a second: no per-key limit here.
export MALIPO_RATE_LIMIT_PER_SECOND=0

echo "malipo end-to-end benchmark, $backend, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), commit $(git rev-parse --short HEAD)"

# Start-up: from exec to the first answer of /healthz, on an empty database.
started_ns=$(date +%s%N)
(cd "$scratch" && exec "$binary" serve --listen "127.0.0.1:$port" --log-format json \
  >"$scratch/out.txt" 2>"$scratch/err.txt") &
server=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.005; done
ready_ns=$(date +%s%N)
echo "start-up (migrations on an empty database, to the first /healthz answer): $(( (ready_ns - started_ns) / 1000000 )) ms"
for _ in $(seq 1 100); do grep -q '^sk_test_' "$scratch/out.txt" 2>/dev/null && break; sleep 0.05; done
key="$(grep '^sk_test_' "$scratch/out.txt")"

echo
"$binary" bench http --url "http://127.0.0.1:$port" --key "$key" --pid "$server" \
  --rates "$rates" --seconds "$seconds" --connections "$connections" --pending "$pending" \
  --database-url "$DATABASE_URL"

kill "$server"; wait "$server" 2>/dev/null || true; server=""

echo
if [ -n "$database_url" ]; then reset_postgres; fi
if [ -n "$database_url" ]; then
  "$binary" bench webhooks --database-url "$database_url" | tail -2
  reset_postgres
  "$binary" bench ledger --transfers 100000 --database-url "$database_url" | tail -3
else
  "$binary" bench webhooks | tail -2
  "$binary" bench ledger | tail -3
fi
