#!/usr/bin/env bash
# Sets up (idempotent) and runs the whole test suite.
# Usage: bash build_scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash build_scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
