#!/usr/bin/env bash
# The one command of the README: install, build the site, serve it with sync.
#
#   bash build_scripts/demo.sh            # then open the printed URL
#
# 1. build_scripts/setup.sh        installs everything (idempotent: fast the 2nd time)
# 2. build_scripts/build_site.py   builds site/ (numpy backend in the browser when
#                                  CLARK_HASH_PYODIDE_NUMPY names a Pyodide numpy wheel)
# 3. clark-hash serve              serves site/ and the sync API from one origin,
#                                  data (token + SQLite store) in .cache/serve-data/;
#                                  its first start prints the sync token once
#
# Environment: CLARK_HASH_DEMO_HOST (default 127.0.0.1), CLARK_HASH_DEMO_SERVE_PORT
# (default 8765; keep it pinned: the browser keeps notes per origin),
# CLARK_HASH_DEMO_DATA (default .cache/serve-data), CLARK_HASH_DEMO_SKIP_SETUP=1
# skips step 1. Stop with Ctrl+C.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST="${CLARK_HASH_DEMO_HOST:-127.0.0.1}"
PORT="${CLARK_HASH_DEMO_SERVE_PORT:-8765}"
DATA="${CLARK_HASH_DEMO_DATA:-.cache/serve-data}"

if [ "${CLARK_HASH_DEMO_SKIP_SETUP:-0}" != "1" ]; then
  bash build_scripts/setup.sh
fi
.venv/bin/python build_scripts/build_site.py --out site

echo
echo "=============================================================="
echo " Clark Hash notes demo:  http://$HOST:$PORT/"
echo " The sync token is printed once, by the server's first start;"
echo " it is kept (mode 0600) in $DATA/token.   Stop: Ctrl+C"
echo "=============================================================="
echo
exec .venv/bin/clark-hash serve --site site --data "$DATA" --host "$HOST" --port "$PORT"
