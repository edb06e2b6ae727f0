#!/usr/bin/env bash
# Installs everything clark-hash-web needs on a fresh machine (idempotent).
# Usage: bash build_scripts/setup.sh
# Creates .venv/ (Python deps) and node_modules/ (npm deps), installs Debian's
# chromium for the browser tests. Nothing here downloads a browser build or a
# model from a hub: only PyPI, npm and Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages -------------------------------------------------------
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

# --- Python ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# --- npm (Pyodide runtime and browser model runtime, pinned in package-lock.json)
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
fi
