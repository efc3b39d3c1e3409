#!/usr/bin/env bash
# The GPU benchmark suite (issue 18): a thin wrapper over benchmarks/gpu_suite.py.
#
#   bash benchmarks/gpu_suite.sh --out DIR             # full size on the GPU, at most ~8 minutes
#   bash benchmarks/gpu_suite.sh --dry-run --out DIR   # every part on the CPU with tiny configs
#
# Runs from the repository root with src/ and tests/ on the path (no install needed when the
# Python dependencies are there). The Python: $PYTHON, else the repo's .venv, else python3.
# Writes DIR/gpu_suite.json and DIR/gpu_suite.md; the log goes to the terminal.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$root/src:$root/tests${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1  # the models are built from config: nothing to fetch
exec "$PYTHON" benchmarks/gpu_suite.py "$@"
