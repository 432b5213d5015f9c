#!/usr/bin/env bash
# Start the i2v WebUI in the background (or the foreground), stop it, or show its status.
set -euo pipefail
APP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
cd "$APP_ROOT"
# shellcheck source-path=SCRIPTDIR source=scripts/app_control.sh
source "$APP_ROOT/scripts/app_control.sh"

usage() {
  cat <<USAGE
Usage: bash start_app.sh [start] [--host HOST] [--port PORT] [--model MODEL] [--force] [--foreground]
       bash start_app.sh stop | status [--port PORT] [--host HOST]

start (default)  first run: create .venv and install the project; check the port (names the process
                 holding it) and, with an NVIDIA GPU, free GPU memory; start the app in its own session
                 (PID in \$I2V_LOGS/app.pid, output in \$I2V_LOGS/app_YYYYMMDD_HHMMSS.log); wait until
                 the page answers and print its URL.
stop             stop the instance named by the PID file (SIGTERM, SIGKILL after ${STOP_TIMEOUT_S}s).
status           say whether it runs and answers; exit 0 if running, 3 if not.

  --host HOST      address to bind (default \$I2V_HOST or $DEFAULT_HOST; 0.0.0.0 for the LAN)
  --port PORT      port (default \$I2V_PORT or $DEFAULT_PORT)
  --model MODEL    auto | tiny | <Hugging Face repo id> | <local folder> (default \$I2V_MODEL or the app's)
  --force          start even if the GPU has less free memory than the smallest preset needs
  --foreground     run in the foreground (exec; for systemd or tmux), output to the terminal
  -h, --help       this help

Environment: I2V_LOGS (default logs/), I2V_OUTPUTS (default outputs/), I2V_VENV (default .venv),
I2V_START_TIMEOUT (default 180 s), I2V_STOP_TIMEOUT (default 15 s).
To stop and start again in one go: bash restart.sh
USAGE
}

command="start"
case "${1:-}" in
  start | stop | status) command="$1"; shift ;;
  -h | --help | help) usage; exit 0 ;;
esac
for arg in "$@"; do
  case "$arg" in -h | --help) usage; exit 0 ;; esac
done
parse_options "$@"

case "$command" in
  start) app_start ;;
  stop) app_stop ;;
  status) app_status ;;
esac
