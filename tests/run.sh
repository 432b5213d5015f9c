#!/usr/bin/env bash
# Install (first run) and run the test suite on CPU. Extra arguments go to pytest (e.g. -m slow).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../scripts/ensure_venv.sh
source scripts/ensure_venv.sh
ensure_venv test
exec "$I2V_PYTHON" -m pytest -q "$@"
