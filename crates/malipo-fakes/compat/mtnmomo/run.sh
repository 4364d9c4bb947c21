#!/usr/bin/env bash
# Checks the operator's published MTN MoMo clients against the MTN MoMo
# fake, each changed in nothing but its base URL:
#   - Python, PyPI `mtnmomo` (requirements.txt, check.py), always;
#   - Node, npm `mtn-momo` (node/), when node and npm are installed.
#
#   run.sh BASE_URL   against a fake already running there
#   run.sh            starts one (the crate's `serve_mtn` example), checks
#                     it, and stops it
#
# The Python virtual environment is target/compat-venv-mtnmomo (made if
# missing; MTNMOMO_COMPAT_VENV overrides) and the Node packages go to
# target/compat-node-mtnmomo (`npm ci` from node/package-lock.json).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
venv=${MTNMOMO_COMPAT_VENV:-$root/target/compat-venv-mtnmomo}
node_dir=$root/target/compat-node-mtnmomo

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

base_url=${1:-}
if [ -z "$base_url" ]; then
    (cd "$root" && cargo build --quiet -p malipo-fakes --example serve_mtn)
    out=$(mktemp)
    "$root/target/debug/examples/serve_mtn" >"$out" 2>/dev/null &
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

echo "== PyPI mtnmomo against $base_url"
"$venv/bin/python" "$here/check.py" "$base_url"

if command -v node >/dev/null && command -v npm >/dev/null; then
    mkdir -p "$node_dir"
    if ! cmp -s "$here/node/package-lock.json" "$node_dir/package-lock.json" \
        || [ ! -d "$node_dir/node_modules/mtn-momo" ]; then
        cp "$here/node/package.json" "$here/node/package-lock.json" "$node_dir/"
        (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
    fi
    echo "== npm mtn-momo against $base_url"
    NODE_PATH="$node_dir/node_modules" node "$here/node/check.js" "$base_url"
else
    echo "== npm mtn-momo: skipped (node or npm is not installed)"
fi
