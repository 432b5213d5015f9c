"""Talking to systemd about this checkout's unit: is it installed, active, for this folder. Used by `main.py
service` and by start_app.sh / restart.sh (i2v.control), which must not fight a systemd-managed app: a second
instance would find the port taken, and a stop would be undone (or leave systemd thinking the app died).

Every call has a short timeout and answers None/False when systemctl is missing or has no manager to talk to
(a container, CI, a session without a user bus).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from i2v.service_unit import UNIT_NAME

TIMEOUT_S = 5.0
ACTIVE_STATES = ("active", "activating", "reloading", "deactivating")


def scope_flags(user_unit: bool) -> list[str]:
    return ["--user"] if user_unit else []


def systemctl(args: list[str], user_unit: bool) -> subprocess.CompletedProcess | None:
    """Run systemctl; None when it is missing or does not answer in time."""
    if shutil.which("systemctl") is None:
        return None
    try:
        return subprocess.run(["systemctl", *scope_flags(user_unit), *args], capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show -p A -p B` output -> {A: ..., B: ...}."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def manages(show: dict[str, str], root: Path) -> bool:
    """The unit described by `systemctl show` runs (or is starting/stopping) an app in this checkout."""
    folder = show.get("WorkingDirectory", "").lstrip("!-")
    if show.get("ActiveState") not in ACTIVE_STATES or not folder:
        return False
    try:
        return Path(folder).resolve() == root.resolve()
    except OSError:
        return False


def restart_hint(user_unit: bool, name: str = UNIT_NAME) -> str:
    return f"systemctl {'--user ' if user_unit else ''}restart {name}"


def managing_scope(root: Path, name: str = UNIT_NAME) -> bool | None:
    """True: a user unit `name` for this checkout is active; False: a system one; None: neither."""
    for user_unit in (True, False):
        done = systemctl(["show", name, "-p", "ActiveState", "-p", "WorkingDirectory"], user_unit)
        if done is not None and done.returncode == 0 and manages(parse_show(done.stdout), root):
            return user_unit
    return None


def state(name: str, user_unit: bool) -> dict[str, str] | None:
    """ActiveState, SubState, UnitFileState, MainPID, NRestarts of the unit; None without a manager."""
    done = systemctl(["show", name, "-p", "ActiveState", "-p", "SubState", "-p", "UnitFileState", "-p", "MainPID",
                      "-p", "NRestarts", "-p", "WorkingDirectory"], user_unit)
    if done is None or done.returncode != 0:
        return None
    return parse_show(done.stdout)
