"""The systemd unit that keeps this checkout's app running (`main.py service install`): pure text from settings.

Why each line: the venv's own python and this checkout as the working folder (no shell, no activation);
host/port/model fixed from the settings at install time; a login only through I2V_AUTH_FILE (a command line is
readable by every local user); `Restart=on-failure` brings a crashed app back (a clean stop stays stopped);
`KillMode=mixed` sends SIGTERM to the app alone (it cancels the running job at its next step and stops its
worker itself) and SIGKILL to whatever is left in the group afterwards, so no worker is orphaned holding GPU
memory; `TimeoutStopSec` covers that graceful stop with room to spare.
"""
from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

UNIT_NAME = "i2v"
STOP_TIMEOUT_S = 30          # SIGTERM: the job stops at its next step (cli.SHUTDOWN_GRACE_S), the worker exits
RESTART_SEC = 5              # pause between a crash and the next start (a busy port or GPU gets time to free)
START_LIMIT_BURST = 5        # ... at most this many starts per START_LIMIT_INTERVAL_S, then systemd gives up
START_LIMIT_INTERVAL_S = 300
PASSED_ENV = ("I2V_AUTH_FILE", "I2V_OUTPUTS", "I2V_LOGS", "I2V_GPUS", "I2V_BACKEND", "I2V_RAY_ADDRESS",
              "I2V_VRAM_LIMIT_GIB", "I2V_MAX_UPLOAD_MIB", "I2V_IDLE_UNLOAD_MINUTES", "I2V_TIME_BUDGET_MINUTES",
              "HF_HOME", "HF_HUB_OFFLINE", "CUDA_VISIBLE_DEVICES")


@dataclass
class UnitSettings:
    root: Path
    python: str
    host: str
    port: int
    model: str
    user_unit: bool = True
    user: str | None = None              # system units: run as this user (not root)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        logs = Path(self.env.get("I2V_LOGS") or "logs")
        return (logs if logs.is_absolute() else self.root / logs) / "app.pid"


def venv_python(root: Path, environ=os.environ) -> str:
    """This checkout's venv python (its path unresolved: the symlink is what selects the venv), else this one."""
    venv = Path(environ.get("I2V_VENV") or ".venv")
    venv = venv if venv.is_absolute() else root / venv
    candidate = venv / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def settings_from(root: Path, host: str, port: int, model: str, user_unit: bool, environ=os.environ) -> UnitSettings:
    """The unit's settings from the environment (I2V_* variables worth keeping; paths made absolute)."""
    env = {}
    for name in PASSED_ENV:
        value = environ.get(name)
        if value:
            if name in ("I2V_AUTH_FILE", "I2V_OUTPUTS", "I2V_LOGS", "HF_HOME"):
                path = Path(value).expanduser()
                value = str(path if path.is_absolute() else (root / path).resolve())
            env[name] = value
    user = None
    if not user_unit:
        import getpass

        user = getpass.getuser()
        user = None if user == "root" else user
    return UnitSettings(root=root, python=venv_python(root, environ), host=host, port=port, model=model,
                        user_unit=user_unit, user=user, env=env)


def quote(word: str) -> str:
    """One word of a unit file line: double-quoted when needed, with systemd's specifier (%) and variable ($)
    characters escaped so a path is taken literally."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c in escaped for c in ' \t"\'\\;'):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_start(settings: UnitSettings) -> list[str]:
    """The app's command line as the unit runs it (never a password)."""
    return [settings.python, str(settings.root / "main.py"), "serve", "--host", settings.host,
            "--port", str(settings.port), "--model", settings.model, "--pid-file", str(settings.pid_file)]


def unit_text(settings: UnitSettings) -> str:
    lines = [
        "# Written by `main.py service install`; `main.py service uninstall` removes it.",
        "[Unit]",
        f"Description=i2v image-to-video WebUI ({quote(str(settings.root))})",
        "After=network.target",
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_S}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={quote(str(settings.root))}",
        "Environment=PYTHONUNBUFFERED=1",
        *(f"Environment={quote(f'{name}={value}')}" for name, value in sorted(settings.env.items())),
        f"ExecStart={' '.join(quote(word) for word in exec_start(settings))}",
        *([f"User={settings.user}"] if settings.user else []),
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={STOP_TIMEOUT_S}",
        "",
        "[Install]",
        f"WantedBy={'default.target' if settings.user_unit else 'multi-user.target'}",
    ]
    return "\n".join(lines) + "\n"


def unit_path(user_unit: bool, name: str = UNIT_NAME, environ=os.environ) -> Path:
    """Where systemd looks for it: ~/.config/systemd/user (--user) or /etc/systemd/system."""
    if not user_unit:
        return Path("/etc/systemd/system") / f"{name}.service"
    config = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "systemd" / "user" / f"{name}.service"


def parse_unit(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file's [Service] lines (enough to rerun its ExecStart in a test or a check)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def command_and_env(text: str) -> tuple[list[str], dict[str, str], Path]:
    """ExecStart's words, Environment's variables and WorkingDirectory of a unit as written by unit_text."""
    values = parse_unit(text)

    def words(value: str) -> list[str]:
        return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]

    env = dict(word.split("=", 1) for value in values.get("Environment", []) for word in words(value))
    return words(values["ExecStart"][0]), env, Path(words(values["WorkingDirectory"][0])[0])
