#!/usr/bin/env bash
# Stop the running i2v WebUI (if any; a frozen one too) and start a new one.
# Usage: bash restart.sh [--host HOST] [--port PORT] [--model MODEL] [--force] [--foreground]
# Options not given are kept from the old instance. The work is done by `python -m i2v.control restart`.
set -euo pipefail
APP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
cd "$APP_ROOT"
# shellcheck source-path=SCRIPTDIR source=scripts/ensure_venv.sh
source "$APP_ROOT/scripts/ensure_venv.sh"
ensure_venv ""
exec "$I2V_PYTHON" -m i2v.control restart "$@"
