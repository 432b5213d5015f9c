#!/usr/bin/env bash
# Functions shared by start_app.sh and restart.sh: start, stop and inspect the i2v WebUI process.
# Sourced, never run. The caller sets APP_ROOT (the project root) and `set -euo pipefail`.
#
# Contract with the app (main.py): `main.py serve --host H --port P --model M --pid-file F` writes its own PID
# to F at start and removes it at exit; GET http://H:P/ answers 200 once up; SIGTERM makes it exit 0 within a
# few seconds. Processes are found only through that PID file, and a PID is signalled only after checking
# that it is this project's main.py (/proc/PID/cmdline and /proc/PID/cwd); never by name.
#
# Environment: I2V_HOST, I2V_PORT, I2V_MODEL (defaults for --host/--port/--model), I2V_LOGS (PID file and
# logs), I2V_OUTPUTS (videos), I2V_VENV (virtual environment), I2V_START_TIMEOUT (s to wait for HTTP, 180),
# I2V_STOP_TIMEOUT (s between SIGTERM and SIGKILL, 15).

: "${APP_ROOT:?the sourcing script sets APP_ROOT to the project root}"
# shellcheck source-path=SCRIPTDIR source=ensure_venv.sh
source "$APP_ROOT/scripts/ensure_venv.sh"

readonly DEFAULT_HOST="127.0.0.1"
readonly DEFAULT_PORT="7860"
# Predicted peak GPU memory of the smallest preset when `main.py estimate` cannot say (GiB).
readonly SMALLEST_PRESET_FALLBACK_GIB="6"
readonly SMALLEST_PRESET_RESOLUTION="512"
readonly SMALLEST_PRESET_FRAMES="8"
readonly PORT_FREE_TIMEOUT_S="15"
readonly GPU_RELEASE_TIMEOUT_S="30"

# Relative I2V_LOGS / I2V_OUTPUTS are taken from the project root (the scripts and the app run there).
LOG_DIR="${I2V_LOGS:-logs}"
OUT_DIR="${I2V_OUTPUTS:-outputs}"
case "$LOG_DIR" in /*) ;; *) LOG_DIR="$APP_ROOT/$LOG_DIR" ;; esac
case "$OUT_DIR" in /*) ;; *) OUT_DIR="$APP_ROOT/$OUT_DIR" ;; esac
PID_FILE="$LOG_DIR/app.pid"
START_TIMEOUT_S="${I2V_START_TIMEOUT:-180}"
STOP_TIMEOUT_S="${I2V_STOP_TIMEOUT:-15}"

APP_HOST="${I2V_HOST:-$DEFAULT_HOST}"
APP_PORT="${I2V_PORT:-$DEFAULT_PORT}"
APP_MODEL="${I2V_MODEL:-}"
APP_FORCE=0
APP_FOREGROUND=0
# Which of host/port/model were chosen (flag or environment); restart.sh keeps the others from the old instance.
APP_CHOSEN=" ${I2V_HOST:+host} ${I2V_PORT:+port} ${I2V_MODEL:+model} "

say() { echo "[i2v] $*"; }
warn() { echo "[i2v] $*" >&2; }
die() {
  warn "error: $*"
  exit 1
}

# parse_options ARGS...: the options both scripts share. Sets APP_HOST/APP_PORT/APP_MODEL/APP_FORCE/APP_FOREGROUND.
parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --host | --port | --model)
        [ $# -ge 2 ] || die "$1 needs a value"
        set_option "${1#--}" "$2"
        shift 2
        ;;
      --host=* | --port=* | --model=*)
        local name="${1%%=*}"
        set_option "${name#--}" "${1#*=}"
        shift
        ;;
      --force) APP_FORCE=1; shift ;;
      --foreground) APP_FOREGROUND=1; shift ;;
      *) die "unknown option '$1' (see --help)" ;;
    esac
  done
  case "$APP_PORT" in
    '' | *[!0-9]*) die "port must be a number, got '$APP_PORT'" ;;
  esac
  if [ "$APP_PORT" -lt 1 ] || [ "$APP_PORT" -gt 65535 ]; then die "port must be 1..65535, got $APP_PORT"; fi
}

set_option() {
  case "$1" in
    host) APP_HOST="$2" ;;
    port) APP_PORT="$2" ;;
    model) APP_MODEL="$2" ;;
  esac
  APP_CHOSEN="$APP_CHOSEN$1 "
}

# inherit_options PID: take --host/--port/--model from the instance PID for those not chosen explicitly.
inherit_options() {
  local prev="" arg kept=""
  while IFS= read -r -d '' arg; do
    case "$prev" in
      --host | --port | --model)
        case "$APP_CHOSEN" in
          *" ${prev#--} "*) ;;
          *) set_option "${prev#--}" "$arg"; kept="$kept $prev $arg" ;;
        esac
        ;;
    esac
    prev="$arg"
  done <"/proc/$1/cmdline"
  [ -z "$kept" ] || say "keeping the old instance's options:$kept"
}

# pid_option PID OPTION: the value given to OPTION (e.g. --port) on PID's command line, or nothing.
pid_option() {
  local prev="" arg
  while IFS= read -r -d '' arg; do
    if [ "$prev" = "$2" ]; then
      echo "$arg"
      return 0
    fi
    prev="$arg"
  done <"/proc/$1/cmdline"
}

# app_url: the address to open in a browser and to probe (a wildcard bind is reached through loopback).
app_url() {
  local host="$APP_HOST"
  case "$host" in
    0.0.0.0 | '') host="127.0.0.1" ;;
    :: | '[::]') host="[::1]" ;;
    *:*) case "$host" in \[*) ;; *) host="[$host]" ;; esac ;;
  esac
  echo "http://$host:$APP_PORT/"
}

# ---------------------------------------------------------------- processes

# pid_alive PID: the process exists and is not a zombie (an orphaned app may linger as one until reaped).
pid_alive() {
  local state
  [ -r "/proc/$1/stat" ] || return 1
  state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null)" || return 1
  case "$state" in Z | X | x | '') return 1 ;; esac
  return 0
}

pid_state() { sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || echo "?"; }

pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ $//' || true; }

# describe_pid PID: "pid N (command line)" for messages.
describe_pid() {
  local cmd
  cmd="$(pid_cmdline "$1")"
  [ -n "$cmd" ] || cmd="$(cat "/proc/$1/comm" 2>/dev/null || echo "?")"
  echo "pid $1 ($cmd)"
}

# pid_is_this_app PID: PID runs main.py with this project root as its working directory.
pid_is_this_app() {
  local cwd
  pid_alive "$1" || return 1
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qE '(^|/)main\.py$' || return 1
  cwd="$(readlink -f "/proc/$1/cwd" 2>/dev/null)" || return 1
  [ "$cwd" = "$APP_ROOT" ]
}

# read_pid_file: prints the PID recorded in the PID file, or nothing (no file, or not a number).
read_pid_file() {
  local pid
  [ -f "$PID_FILE" ] || return 0
  pid="$(tr -d '[:space:]' <"$PID_FILE" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  echo "$pid"
}

# remove_pid_file_if PID: remove the PID file only while it still names PID (never a newer instance's file).
remove_pid_file_if() {
  if [ -f "$PID_FILE" ] && [ "$(tr -d '[:space:]' <"$PID_FILE" 2>/dev/null || true)" = "$1" ]; then
    rm -f "$PID_FILE"
  fi
}

# find_running_app: set RUNNING_PID to this app's PID per the PID file, or to "". Reports and removes a stale
# or foreign PID file (it is never acted on).
find_running_app() {
  local pid
  RUNNING_PID=""
  [ -f "$PID_FILE" ] || return 0
  pid="$(read_pid_file)"
  if [ -z "$pid" ]; then
    say "PID file $PID_FILE holds no PID ('$(head -c 40 "$PID_FILE")'); removed it"
    rm -f "$PID_FILE"
  elif ! pid_alive "$pid"; then
    say "stale PID file: pid $pid is not running; removed $PID_FILE"
    remove_pid_file_if "$pid"
  elif ! pid_is_this_app "$pid"; then
    say "PID file names $(describe_pid "$pid"), which is not this app's main.py in $APP_ROOT;" \
      "left that process alone and removed $PID_FILE"
    remove_pid_file_if "$pid"
  else
    RUNNING_PID="$pid"
  fi
}

# app_family PID: "pid:starttime" of PID's helper processes (its descendants, and the members of its process
# group when PID leads one, as start_app.sh's setsid makes it): the app's worker outlives a killed server
# otherwise. The start time guards against a PID reused later.
app_family() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
    { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
      ppid[pid] = f[2]; pgid[pid] = f[3]; start[pid] = f[20]; state[pid] = f[1] }
    END {
      leader = (pgid[root] == root); found[root] = 1; changed = 1
      while (changed) {
        changed = 0
        for (p in ppid) if (!(p in found) && ((ppid[p] in found) || (leader && pgid[p] == root))) { found[p] = 1; changed = 1 }
      }
      for (p in found) if (p != root && state[p] != "Z") print p ":" start[p]
    }'
}

# family_alive ENTRIES...: the "pid:starttime" entries whose process still runs (same start time).
family_alive() {
  local entry pid
  for entry in "$@"; do
    pid="${entry%%:*}"
    if pid_alive "$pid" && [ "$(proc_starttime "$pid")" = "${entry#*:}" ]; then echo "$entry"; fi
  done
}

proc_starttime() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }'; }

# wait_until_gone PID SECONDS: 0 once PID has exited, 1 on timeout.
wait_until_gone() {
  local deadline=$((SECONDS + $2))
  while pid_alive "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- port

# port_listeners PORT: one line per listening socket on PORT, in whatever detail the system can give.
port_listeners() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$port" 2>/dev/null && return 0
  fi
  if command -v lsof >/dev/null 2>&1; then
    lsof -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | tail -n +2
    return 0
  fi
  # /proc/net/tcp*: local address column "IP:PORT" in hex, state 0A = LISTEN.
  awk -v port="$(printf '%04X' "$port")" \
    'NR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == port) print "inode " $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# port_holder_pids PORT: PIDs of the processes listening on PORT (may be empty even if the port is taken).
port_holder_pids() {
  local port="$1" inodes inode fd
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$port" 2>/dev/null | grep -oE 'pid=[0-9]+' | cut -d= -f2 | sort -un
    return 0
  fi
  if command -v lsof >/dev/null 2>&1; then
    lsof -t -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | sort -un
    return 0
  fi
  inodes="$(port_listeners "$port" | awk '{print $2}')"
  for inode in $inodes; do
    for fd in /proc/[0-9]*/fd/*; do
      if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ]; then
        fd="${fd#/proc/}"
        echo "${fd%%/*}"
      fi
    done
  done | sort -un
}

port_in_use() { [ -n "$(port_listeners "$1")" ]; }

# describe_port_holder PORT: "pid N (cmd), ..." or a plain description when the holder cannot be named.
describe_port_holder() {
  local pids pid out=""
  pids="$(port_holder_pids "$1")"
  for pid in $pids; do
    out="${out:+$out, }$(describe_pid "$pid")"
  done
  if [ -z "$out" ]; then
    out="an unidentified process (not visible to $(id -un); try: sudo ss -ltnp 'sport = :$1')"
  fi
  echo "$out"
}

wait_port_free() {
  local deadline=$((SECONDS + $2))
  while port_in_use "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- GPU (all no-ops without an NVIDIA GPU)

have_nvidia_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# gpu_index: the device the app will use (the first of CUDA_VISIBLE_DEVICES, else 0).
gpu_index() {
  local first="${CUDA_VISIBLE_DEVICES:-0}"
  first="${first%%,*}"
  echo "${first:-0}"
}

# gpu_free_mib: free memory of the app's GPU in MiB (nvidia-smi, else NVML through the venv's python).
gpu_free_mib() {
  local free
  free="$(nvidia-smi -i "$(gpu_index)" --query-gpu=memory.free --format=csv,noheader,nounits 2>/dev/null |
    head -n 1 | tr -d ' ')" || free=""
  if [ -z "$free" ] && [ -n "${I2V_PYTHON:-}" ]; then
    free="$("$I2V_PYTHON" -c 'import pynvml as n; n.nvmlInit(); print(n.nvmlDeviceGetMemoryInfo(n.nvmlDeviceGetHandleByIndex(0)).free // 2**20)' 2>/dev/null)" || free=""
  fi
  echo "$free"
}

# gpu_used_by_pids PID...: MiB of GPU memory these processes hold (0 when none / not visible: in a container
# the driver may list host PIDs).
gpu_used_by_pids() {
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
    awk -F', *' -v pids=" $* " 'index(pids, " " $1 " ") { sum += $2 } END { print sum + 0 }'
}

# smallest_preset_need_gib: predicted peak of the smallest preset, from `main.py estimate`, else the fallback.
smallest_preset_need_gib() {
  local need=""
  if [ -f "$APP_ROOT/main.py" ]; then
    need="$("$I2V_PYTHON" "$APP_ROOT/main.py" estimate --resolution "$SMALLEST_PRESET_RESOLUTION" \
      --frames "$SMALLEST_PRESET_FRAMES" --json 2>/dev/null |
      "$I2V_PYTHON" -c 'import json, sys; print(float(json.load(sys.stdin)["peak_gib"]))' 2>/dev/null)" || need=""
  fi
  echo "${need:-$SMALLEST_PRESET_FALLBACK_GIB}"
}

too_little_gpu_memory() { awk -v f="$1" -v n="$2" 'BEGIN { exit !(f / 1024 < n) }'; }

# check_gpu_memory: refuse to start when the GPU cannot fit even the smallest preset (override: --force).
check_gpu_memory() {
  local free_mib need_gib
  have_nvidia_gpu || return 0
  free_mib="$(gpu_free_mib)"
  [ -n "$free_mib" ] || {
    warn "could not read free GPU memory; skipping the check"
    return 0
  }
  need_gib="$(smallest_preset_need_gib)"
  # Memory of a just-stopped instance can take a moment to show as free: re-read for a few seconds.
  local deadline=$((SECONDS + 5))
  while too_little_gpu_memory "$free_mib" "$need_gib" && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 1
    free_mib="$(gpu_free_mib)"
    free_mib="${free_mib:-0}"
  done
  if too_little_gpu_memory "$free_mib" "$need_gib"; then
    if [ "$APP_FORCE" = 1 ]; then
      warn "GPU $(gpu_index) has $free_mib MiB free, below the ${need_gib} GiB the smallest preset needs; starting anyway (--force)"
      return 0
    fi
    warn "GPU $(gpu_index) has only $free_mib MiB free; the smallest preset (${SMALLEST_PRESET_RESOLUTION}px," \
      "$SMALLEST_PRESET_FRAMES frames) needs about ${need_gib} GiB."
    warn "An earlier instance may still hold it: run restart.sh, or see nvidia-smi for other programs." \
      "Use --force to start anyway."
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv 2>/dev/null >&2 || true
    exit 1
  fi
}

# ---------------------------------------------------------------- HTTP

http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null
  else
    "$I2V_PYTHON" -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=3)' "$1" 2>/dev/null
  fi
}

# ---------------------------------------------------------------- commands

# app_stop: stop the instance named by the PID file (verified first). Safe when nothing runs.
app_stop() {
  local pid state gpu_before="" free_before="" free_after="" how="SIGTERM" port entry
  local -a family=() family_pids=() left=()
  find_running_app
  pid="$RUNNING_PID"
  if [ -z "$pid" ]; then
    say "no running instance found (PID file: $PID_FILE)"
    return 0
  fi
  state="$(pid_state "$pid")"
  while IFS= read -r entry; do [ -z "$entry" ] || family+=("$entry"); done < <(app_family "$pid")
  for entry in ${family[@]+"${family[@]}"}; do family_pids+=("${entry%%:*}"); done
  if have_nvidia_gpu; then
    gpu_before="$(gpu_used_by_pids "$pid" ${family_pids[@]+"${family_pids[@]}"})"
    free_before="$(gpu_free_mib)"
  fi
  say "stopping $(describe_pid "$pid")${family_pids[0]+ and its ${#family_pids[@]} helper process(es) (pid ${family_pids[*]})}${gpu_before:+, holding $gpu_before MiB of GPU memory}"
  if [ "${APP_INHERIT:-0}" = 1 ]; then inherit_options "$pid" 2>/dev/null || true; fi
  port="$(pid_option "$pid" --port 2>/dev/null || true)"
  port="${port:-$APP_PORT}"
  case "$state" in
    T | t) say "pid $pid is stopped (state $state); resuming it (SIGCONT) so it can exit" ;;
  esac
  kill -CONT "$pid" ${family_pids[@]+"${family_pids[@]}"} 2>/dev/null || true
  # Signal only once the process runs again: a SIGTERM sent while its main thread is still stopped goes to
  # another thread, and a Python main thread blocked in a wait without timeout would then never handle it.
  local resumed=$((SECONDS + 3))
  while case "$(pid_state "$pid")" in T | t) true ;; *) false ;; esac && [ "$SECONDS" -lt "$resumed" ]; do
    sleep 0.1
  done
  case "$state" in T | t) sleep 0.3 ;; esac # let its other threads resume too
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until_gone "$pid" "$STOP_TIMEOUT_S"; then
    how="SIGKILL"
    say "pid $pid did not exit ${STOP_TIMEOUT_S}s after SIGTERM (state $(pid_state "$pid")); sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until_gone "$pid" 10 || die "pid $pid survived SIGKILL (state $(pid_state "$pid"))"
  fi
  remove_pid_file_if "$pid"
  say "pid $pid exited ($how)"
  # Its helpers should be gone with it; give them a moment, then SIGKILL the ones left (verified by start time).
  local helpers_deadline=$((SECONDS + 5))
  while :; do
    left=()
    while IFS= read -r entry; do [ -z "$entry" ] || left+=("$entry"); done < <(family_alive ${family[@]+"${family[@]}"})
    if [ ${#left[@]} -eq 0 ] || [ "$SECONDS" -ge "$helpers_deadline" ]; then break; fi
    sleep 0.2
  done
  for entry in ${left[@]+"${left[@]}"}; do
    say "helper $(describe_pid "${entry%%:*}") outlived the app; sending SIGKILL"
    kill -KILL "${entry%%:*}" 2>/dev/null || true
  done
  if ! wait_port_free "$port" "$PORT_FREE_TIMEOUT_S"; then
    warn "port $port is still taken by $(describe_port_holder "$port")"
  fi
  if have_nvidia_gpu; then
    local deadline=$((SECONDS + GPU_RELEASE_TIMEOUT_S))
    while [ "$(gpu_used_by_pids "$pid" ${family_pids[@]+"${family_pids[@]}"})" != 0 ] &&
      [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
    [ "$(gpu_used_by_pids "$pid" ${family_pids[@]+"${family_pids[@]}"})" = 0 ] ||
      warn "the driver still lists pid $pid ${family_pids[*]} as holding GPU memory"
    free_after="$(gpu_free_mib)"
    if [ -n "$free_before" ] && [ -n "$free_after" ]; then
      say "released GPU memory: $gpu_before MiB held by the app's processes; free on GPU $(gpu_index): $free_before -> $free_after MiB" \
        "($((free_after - free_before)) MiB)"
    fi
  fi
}

# app_status: exit 0 when running (prints PID, URL, health), 3 when not.
app_status() {
  local pid
  find_running_app
  pid="$RUNNING_PID"
  if [ -z "$pid" ]; then
    say "not running"
    if port_in_use "$APP_PORT"; then say "port $APP_PORT is held by $(describe_port_holder "$APP_PORT")"; fi
    return 3
  fi
  say "running: $(describe_pid "$pid")"
  APP_PORT="$(pid_option "$pid" --port 2>/dev/null || true)"
  APP_PORT="${APP_PORT:-${I2V_PORT:-$DEFAULT_PORT}}"
  APP_HOST="$(pid_option "$pid" --host 2>/dev/null || true)"
  APP_HOST="${APP_HOST:-${I2V_HOST:-$DEFAULT_HOST}}"
  if http_ok "$(app_url)"; then
    say "healthy at $(app_url)"
  else
    say "not answering at $(app_url) (see the newest log in $LOG_DIR)"
  fi
  return 0
}

# app_start: checks, then start in the background (or exec in the foreground) and wait for HTTP.
app_start() {
  local pid log url child cmd
  ensure_venv ""  # the plain install; a venv made with extras (tests) is accepted as is
  if port_in_use "$APP_PORT"; then
    die "port $APP_PORT is already in use by $(describe_port_holder "$APP_PORT")." \
      "Stop it (restart.sh, or start_app.sh stop if it is this app) or choose another --port."
  fi
  find_running_app
  pid="$RUNNING_PID"
  if [ -n "$pid" ]; then
    die "this app is already running as $(describe_pid "$pid"); use restart.sh or start_app.sh stop"
  fi
  check_gpu_memory
  mkdir -p "$OUT_DIR" "$LOG_DIR"
  export I2V_OUTPUTS="$OUT_DIR" I2V_LOGS="$LOG_DIR"
  cmd=("$I2V_PYTHON" main.py serve --host "$APP_HOST" --port "$APP_PORT" --pid-file "$PID_FILE")
  [ -z "$APP_MODEL" ] || cmd+=(--model "$APP_MODEL")
  url="$(app_url)"
  if [ "$APP_FOREGROUND" = 1 ]; then
    say "starting in the foreground at $url"
    exec "${cmd[@]}"
  fi
  log="$LOG_DIR/app_$(date +%Y%m%d_%H%M%S).log"
  say "starting: ${cmd[*]}"
  say "log: $log"
  setsid "${cmd[@]}" >>"$log" 2>&1 </dev/null &
  child=$!
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until http_ok "$url"; do
    if ! pid_alive "$child"; then
      warn "the app exited during start-up; last lines of $log:"
      tail -n 40 "$log" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "no answer from $url after ${START_TIMEOUT_S}s; stopping pid $child. Last lines of $log:"
      tail -n 40 "$log" >&2 || true
      kill -TERM "$child" 2>/dev/null || true
      wait_until_gone "$child" "$STOP_TIMEOUT_S" || kill -KILL "$child" 2>/dev/null || true
      remove_pid_file_if "$child"
      exit 1
    fi
    sleep 0.5
  done
  pid="$(read_pid_file)"
  [ -n "$pid" ] || warn "the app did not write its PID file $PID_FILE (stop/restart will not find it)"
  say "running as pid ${pid:-$child}; open $url"
}
