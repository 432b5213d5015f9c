#!/usr/bin/env bash
# Start the i2v WebUI in the background (or the foreground), stop it, or show its status.
# Usage: bash start_app.sh [start|stop|status] [--host HOST] [--port PORT] [--model MODEL] [--force]
#        [--foreground]     (bash start_app.sh --help for details)
# This script only makes sure the virtual environment exists; the work is done by `python -m i2v.control`.
set -euo pipefail
APP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
cd "$APP_ROOT"
# shellcheck source-path=SCRIPTDIR source=scripts/ensure_venv.sh
source "$APP_ROOT/scripts/ensure_venv.sh"
ensure_venv "" # the plain install; a venv made with extras (tests) is accepted as is
exec "$I2V_PYTHON" -m i2v.control "$@"
