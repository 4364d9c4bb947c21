#!/usr/bin/env bash
# The dashboard's browser tests: starts `malipo serve` on a free 127.0.0.1
# port with a scratch SQLite database (as the schemathesis step of .ci/run
# does), then runs the stories of e2e/stories/ in headless Chromium
# (playwright-core driving Debian's /usr/bin/chromium). Screenshots of every
# page visited, at desktop and phone widths, go to target/e2e/.
#
#   e2e/run.sh [BINARY] [node --test options…]
#
# BINARY defaults to target/debug/malipo. Needs /usr/bin/chromium
# (apt-get install chromium) and e2e/node_modules (npm ci in e2e/).
# MALIPO_E2E_STORIES=sign-in,viewer runs only the stories whose file name
# contains one of the words; MALIPO_E2E_CONCURRENCY=N runs N at a time (default 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# A relative BINARY is taken from where the script was called.
bin="${1:-$root/target/debug/malipo}"
shift || true
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
cd "$root"
[ -x "$bin" ] || { echo "e2e: no executable malipo binary at $bin" >&2; exit 2; }
[ -x "${MALIPO_E2E_CHROMIUM:-/usr/bin/chromium}" ] || {
  echo "e2e: no Chromium at ${MALIPO_E2E_CHROMIUM:-/usr/bin/chromium}: apt-get install chromium" >&2; exit 2; }
[ -d e2e/node_modules/playwright-core ] || {
  echo "e2e: playwright-core is not installed: (cd e2e && npm ci)" >&2; exit 2; }

shots="$root/target/e2e"
rm -rf "$shots"
mkdir -p "$shots"

dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export MALIPO_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export MALIPO_DATABASE_URL="sqlite:$dir/malipo.db"
export MALIPO_LOG_FILTER=warn
server_pid=
status=0
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$dir/stderr" ]; then
    echo "e2e: failed; the server's log (last 50 lines):"
    tail -n 50 "$dir/stderr"
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM

# The simulated customer answers after 3 s (the default is 0.15 s), so that a
# new sandbox payment's page first shows it in flight and the story can watch
# the page's live status turn it to succeeded.
MALIPO_RATE_LIMIT_PER_SECOND=0 MALIPO_SIGN_IN_RATE_LIMIT_PER_MINUTE=0 \
  MALIPO_SIMULATOR_CALLBACK_DELAY_MS=3000 \
  "$bin" serve --listen "127.0.0.1:$port" >"$dir/stdout" 2>"$dir/stderr" &
server_pid=$!
for _ in $(seq 1 150); do
  grep -q '^sk_test_' "$dir/stdout" && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
key="$(grep -m1 '^sk_test_' "$dir/stdout" || true)"
# "Created sandbox merchant mer_…. Its test secret key, shown this once:"
merchant="$(grep -m1 -o 'sandbox merchant mer_[A-Za-z0-9]*' "$dir/stdout" | sed 's/^sandbox merchant //' || true)"
if [ -z "$key" ] || [ -z "$merchant" ] || ! curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then
  status=1
  echo "e2e: the server did not start (or printed no sandbox key and merchant); its stdout:"
  cat "$dir/stdout"
  exit 1
fi
echo "e2e: malipo serve on http://127.0.0.1:$port, merchant $merchant; screenshots in target/e2e/"

export MALIPO_E2E_BASE_URL="http://127.0.0.1:$port"
export MALIPO_E2E_API_KEY="$key"
export MALIPO_E2E_MERCHANT="$merchant"
export MALIPO_E2E_BIN="$bin"
export MALIPO_E2E_SCREENSHOTS="$shots"

start=$SECONDS
(cd e2e && node --test --test-reporter=spec "$@" dashboard.test.mjs) || status=$?
echo "e2e: stories took $((SECONDS - start)) s; $(find "$shots" -name '*.png' | wc -l) screenshots in $shots"
exit "$status"
