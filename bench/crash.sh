#!/usr/bin/env bash
# Crash safety, the long form: the test in crates/malipo/tests/it/crash.rs
# with 100 SIGKILLs of `malipo serve` under load instead of CI's 20, in a
# release build. Each kill lands 50–400 ms into a burst of 16 concurrent
# clients creating payments and payouts; the server is restarted on the same
# database each time. Afterwards the test checks that every acknowledged
# payment and payout exists, that no merchant reference has two objects,
# that `malipo ledger check` passes, that every event reached the webhook
# receiver, and that no job or delivery lease is left stuck.
#
#   bench/crash.sh                                          # SQLite
#   bench/crash.sh postgres://postgres@127.0.0.1:5432/test  # PostgreSQL
#
# With a URL, each test creates (and drops) a fresh database through it, as
# MALIPO_TEST_POSTGRES_URL does for the whole suite.
#
# The long form is the one that waits out the idempotency claims' 60 s lease:
# it is what found creates made twice when a kill fell between a create's
# commit and the storing of its response (fixed: payments, payouts and
# refunds now keep their Idempotency-Key under a unique constraint).
#
# Environment: KILLS (default 100); MALIPO_CRASH_SEED replays a run's kill
# timings (the test prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${1:-}" ]; then
  export MALIPO_TEST_POSTGRES_URL="$1"
fi
export MALIPO_CRASH_KILLS="${KILLS:-100}"
exec cargo test --release -p malipo --test it crash:: -- --nocapture
