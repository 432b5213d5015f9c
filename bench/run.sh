#!/usr/bin/env bash
# Run every CPU benchmark and write the Markdown tables under bench/results/ (and bench/memory_table.md).
# Usage: bash bench/run.sh            (python: $I2V_PYTHON, else .venv/bin/python)
# The GPU benchmark runs too; without CUDA it only records that it was skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${I2V_PYTHON:-$ROOT/.venv/bin/python}"
if [[ ! -x "$PY" ]]; then
    echo "bench/run.sh: no python at $PY (create .venv or set I2V_PYTHON)" >&2
    exit 2
fi
export HF_HUB_OFFLINE=1
mkdir -p bench/results

step() {
    local started=$SECONDS
    echo "== $*"
    "$PY" "$@"
    echo "== done in $((SECONDS - started)) s: $*"
    echo
}

begin=$SECONDS
step bench/estimator.py
step bench/memory_table.py
step bench/techniques.py --rounds "${I2V_BENCH_ROUNDS:-7}"
step bench/techniques.py --family wan2.2-ti2v-5b
step bench/startup.py --runs "${I2V_BENCH_STARTUP_RUNS:-5}"
step bench/overhead.py --rounds "${I2V_BENCH_ROUNDS:-7}"
step bench/stop_latency.py
step bench/gpu_run.py
if "${I2V_PYTHON:-.venv/bin/python}" -c "import ray" 2>/dev/null; then
  step bench/ray_backend.py --rounds "${I2V_BENCH_ROUNDS:-7}"
fi
echo "all benchmarks done in $((SECONDS - begin)) s; tables in bench/results/ and bench/memory_table.md"
