#!/usr/bin/env bash
# Payment creation over HTTP: a release build of malipo on a scratch
# database, driven by wrk (installed from Debian if missing) with a test key.
#
#   bench/payments.sh                                  # SQLite (WAL, synchronous=FULL)
#   bench/payments.sh postgres://postgres@127.0.0.1:5432/malipo_bench
#
# Environment: DURATION (default 10s), CONNECTIONS (default "32 64 128"), PORT (default 8199).
set -euo pipefail
cd "$(dirname "$0")/.."
database_url="${1:-}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32 64 128}"
port="${PORT:-8199}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
scratch="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT

if [ -n "$database_url" ]; then
  psql "$database_url" -qc "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" >/dev/null
  export DATABASE_URL="$database_url"
fi
(cd "$scratch" && MALIPO_RATE_LIMIT_PER_SECOND=0 exec "$OLDPWD/target/release/malipo" serve --listen "127.0.0.1:$port" --log-format json \
  >"$scratch/out.txt" 2>"$scratch/err.txt") &
server=$!
for _ in $(seq 1 100); do grep -q '^sk_test_' "$scratch/out.txt" 2>/dev/null && break; sleep 0.1; done
key="$(grep '^sk_test_' "$scratch/out.txt")"

cat >"$scratch/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
-- 0003: the simulated customer never answers, so the bench measures
-- creation (and the worker's push), not callbacks.
wrk.body = '{"amount":1000,"currency":"KES","customer":{"phone":"+254712340003"}}'
LUA

backend="SQLite"
[ -n "$database_url" ] && backend="PostgreSQL"
echo "malipo payment creation, $backend, $(nproc) cores, commit $(git rev-parse --short HEAD)"
printf '%12s %12s %10s %10s %10s\n' connections payments/s p50 p99 errors
for c in $connections; do
  out="$(wrk -t2 -c"$c" -d"$duration" --latency -s "$scratch/post.lua" "http://127.0.0.1:$port/v1/payments")"
  rate="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  errors="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
  printf '%12s %12s %10s %10s %10s\n' "$c" "$rate" "$p50" "$p99" "${errors:-0}"
done
