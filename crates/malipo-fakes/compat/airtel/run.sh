#!/usr/bin/env bash
# Checks the published Airtel Money Python client (PyPI `airtelmoney-py`)
# against the Airtel Money fake.
#
#   run.sh BASE_URL   against a fake already running there (with its
#                     default credentials, or AIRTEL_CLIENT_ID and
#                     AIRTEL_CLIENT_SECRET)
#   run.sh            starts one (the crate's `serve_airtel` example),
#                     checks it, and stops it
#
# The virtual environment lives in target/compat-venv-airtel (made if
# missing; AIRTEL_COMPAT_VENV overrides), with requirements.txt installed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
venv=${AIRTEL_COMPAT_VENV:-$root/target/compat-venv-airtel}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

base_url=${1:-}
server_pid=
if [ -z "$base_url" ]; then
    (cd "$root" && cargo build --quiet -p malipo-fakes --example serve_airtel)
    out=$(mktemp)
    # Port 0 (any free one), and a 100 ms customer.
    "$root/target/debug/examples/serve_airtel" 0 100 >"$out" 2>/dev/null &
    server_pid=$!
    trap 'kill "$server_pid" 2>/dev/null || true; rm -f "$out"' EXIT
    for _ in $(seq 1 100); do
        base_url=$(head -n 1 "$out")
        [ -n "$base_url" ] && break
        sleep 0.1
    done
    if [ -z "$base_url" ]; then
        echo "the fake did not start" >&2
        exit 1
    fi
fi

"$venv/bin/python" "$here/check.py" "$base_url"
