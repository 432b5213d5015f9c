#!/usr/bin/env bash
# Create/refresh the project's virtual environment. Sourced by start_app.sh and tests/run.sh.
# Usage: ensure_venv [extra]   (extra: "test", ...). Sets I2V_PYTHON to the venv's python.
# No NVIDIA GPU -> torch==2.13.0 (CPU build); with one -> the normal CUDA build of the pinned range.
ensure_venv() {
  local root venv extra stamp want have
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="${I2V_VENV:-$root/.venv}"
  extra="${1:-}"
  if [ ! -x "$venv/bin/python" ]; then
    echo "[i2v] creating virtual environment in $venv"
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  stamp="$venv/.i2v-install-stamp"
  want="$(sha256sum <"$root/pyproject.toml" | cut -c1-16)-${extra}"
  have="$(cat "$stamp" 2>/dev/null || true)"
  # An install with an extra also satisfies a plain request: start_app.sh must not reinstall a test venv.
  if [ "$have" != "$want" ] && { [ -n "$extra" ] || [ "${have%%-*}" != "${want%%-*}" ]; }; then
    echo "[i2v] installing dependencies (first run takes a few minutes)"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      "$venv/bin/python" -m pip install --quiet "torch>=2.13,<2.14"
    else
      "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
    fi
    if [ -n "$extra" ]; then
      "$venv/bin/python" -m pip install --quiet -e "${root}[${extra}]"
    else
      "$venv/bin/python" -m pip install --quiet -e "$root"
    fi
    echo "$want" >"$stamp"
  fi
  I2V_PYTHON="$venv/bin/python"
  export I2V_PYTHON
}
