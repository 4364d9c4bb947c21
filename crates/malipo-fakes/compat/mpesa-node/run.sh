#!/usr/bin/env bash
# Runs Safaricom's published Node client (mpesa-node) against a running
# M-Pesa fake: `run.sh http://127.0.0.1:PORT`. Builds nothing: start the fake
# first (`malipo fake-rail mpesa --port PORT`, or from the crate:
# `MALIPO_MPESA_FAKE_ADDR=127.0.0.1:PORT cargo test -p malipo-fakes -- --ignored serve_for_compat`).
# Installs the locked npm packages when they are missing.
set -euo pipefail
base="${1:?usage: run.sh BASE_URL of the fake, e.g. http://127.0.0.1:18080}"
cd "$(dirname "$0")"
if [ ! -d node_modules/mpesa-node ]; then
  npm ci --no-audit --no-fund >/dev/null
fi
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "$base/__fake/tokens"; then break; fi
  sleep 0.2
done
exec node check.mjs "$base"
