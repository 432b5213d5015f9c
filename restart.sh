#!/usr/bin/env bash
# Stop the running i2v WebUI (if any) and start a new one.
set -euo pipefail
APP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
cd "$APP_ROOT"
# shellcheck source-path=SCRIPTDIR source=scripts/app_control.sh
source "$APP_ROOT/scripts/app_control.sh"

usage() {
  cat <<USAGE
Usage: bash restart.sh [--host HOST] [--port PORT] [--model MODEL] [--force] [--foreground]

Stops the instance named by \$I2V_LOGS/app.pid, after checking that the PID is this project's main.py
(a stale PID file, or one naming another process, is reported and removed, never acted on): SIGCONT,
SIGTERM, SIGKILL after ${STOP_TIMEOUT_S}s; waits until the port is free and, on a GPU, until the process no
longer holds GPU memory (prints how much was released). Then starts a new instance like start_app.sh;
--host/--port/--model not given here (as options or I2V_* variables) are kept from the old instance.
Works when nothing is running.

  --host HOST      address to bind (default \$I2V_HOST or $DEFAULT_HOST)
  --port PORT      port (default \$I2V_PORT or $DEFAULT_PORT)
  --model MODEL    auto | tiny | <Hugging Face repo id> | <local folder> (default \$I2V_MODEL or the app's)
  --force          start even if the GPU has less free memory than the smallest preset needs
  --foreground     run the new instance in the foreground (exec)
  -h, --help       this help
USAGE
}

for arg in "$@"; do
  case "$arg" in -h | --help) usage; exit 0 ;; esac
done
parse_options "$@"

APP_INHERIT=1 app_stop
app_start
