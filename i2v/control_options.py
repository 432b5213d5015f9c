"""The options of start_app.sh / restart.sh (`python -m i2v.control`): flags, the I2V_* environment, defaults;
and how the scripts speak (`[i2v] ...`). Split from i2v.control, which acts on them."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from i2v.core import env
from i2v.core.errors import I2VError
from i2v.paths import PROJECT_ROOT

COMMANDS = ("start", "stop", "status", "restart")
INHERITED = ("host", "port", "model", "auth-file")   # restart keeps these from the old instance unless chosen
SECRET_ENV = ("I2V_AUTH",)                      # never shown in messages


class ControlError(I2VError):
    """A refusal or failure, printed as `[i2v] error: ...` with exit code 1."""


class AlreadyRunning(ControlError):
    """start while this app runs: said once, with its address (exit code 0: what was asked for is true)."""


def say(message: str) -> None:
    print(f"[i2v] {message}", flush=True)


def warn(message: str) -> None:
    print(f"[i2v] {message}", file=sys.stderr, flush=True)


@dataclass
class Options:
    host: str
    port: int
    model: str
    force: bool = False
    foreground: bool = False
    auth_file: str | None = None
    passed: list[str] = field(default_factory=list)  # options handed to the app as they are (--backend ...)
    kept_env: dict[str, str] = field(default_factory=dict)   # the old instance's I2V_* variables (restart)
    chosen: set[str] = field(default_factory=set)   # which of host/port/model the user chose (flag or env)
    root: Path = PROJECT_ROOT
    logs: Path = PROJECT_ROOT / "logs"
    outputs: Path = PROJECT_ROOT / "outputs"
    start_timeout_s: float = 180.0
    stop_timeout_s: float = 15.0

    @property
    def pid_file(self) -> Path:
        return self.logs / "app.pid"

    def url(self) -> str:
        """The address to open and to probe (a wildcard bind is reached through loopback)."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host in ("::", "[::]"):
            host = "[::1]"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"


def _under_root(value: str, root: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def parse_options(argv: list[str], environ: Mapping[str, str] | None = None,
                  root: Path = PROJECT_ROOT) -> tuple[str, Options]:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="start_app.sh / restart.sh", formatter_class=_UsageFormatter, description=__doc__
                                     .split("\n\n")[0], epilog=HELP_EPILOG)
    parser.add_argument("command", nargs="?", default="start", choices=COMMANDS)
    parser.add_argument("--host", help="address to bind (default $I2V_HOST or 127.0.0.1; 0.0.0.0 for the LAN)")
    parser.add_argument("--port", help="port (default $I2V_PORT or 7860)")
    parser.add_argument("--model", help="auto | tiny | <Hugging Face repo id> | <local folder> "
                                        "(default $I2V_MODEL or the app's)")
    parser.add_argument("--force", action="store_true",
                        help="start even if the GPU has less free memory than the smallest preset needs")
    parser.add_argument("--foreground", action="store_true", help="run in the foreground (exec; systemd, tmux)")
    parser.add_argument("--auth-file", metavar="PATH",
                        help="login from this file: one USER:PASSWORD line, chmod 600 (default $I2V_AUTH_FILE)")
    parser.add_argument("--auth", help=argparse.SUPPRESS)   # refused below: a password on a command line
    parser.add_argument("--backend", choices=("local", "ray"), help="where jobs run (default $I2V_BACKEND or local)")
    parser.add_argument("--ray-address", metavar="ADDR", help="with --backend ray: the cluster to join (e.g. auto)")
    args = parser.parse_args(argv)
    if args.auth is not None:
        raise ControlError("auth_on_command_line")
    chosen = {name for name in INHERITED if getattr(args, name.replace("-", "_")) is not None
              or f"I2V_{name.upper().replace('-', '_')}" in environ}
    if "I2V_AUTH" in environ:               # a login chosen now replaces the old instance's, whatever its form
        chosen.add("auth-file")
    port_text = args.port if args.port is not None else env.value("I2V_PORT", environ)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ControlError("control_port_not_number", value=port_text)
    options = Options(
        host=args.host if args.host is not None else env.value("I2V_HOST", environ),
        port=int(port_text),
        model=args.model if args.model is not None else env.value("I2V_MODEL", environ),
        force=args.force, foreground=args.foreground, chosen=chosen, root=root, auth_file=args.auth_file,
        passed=[part for name in ("backend", "ray_address") if getattr(args, name)
                for part in (f"--{name.replace('_', '-')}", getattr(args, name))],
        logs=_under_root(env.value("I2V_LOGS", environ) or "logs", root),
        outputs=_under_root(env.value("I2V_OUTPUTS", environ) or "outputs", root),
        start_timeout_s=float(env.value("I2V_START_TIMEOUT", environ)),
        stop_timeout_s=float(env.value("I2V_STOP_TIMEOUT", environ)),
    )
    return args.command, options


HELP_EPILOG = """commands:
  start (default)  check the port (names the process holding it) and, with an NVIDIA GPU, free GPU memory;
                   start the app in its own session (PID in $I2V_LOGS/app.pid, its output in
                   $I2V_LOGS/app.log, overwritten at each start); wait until the page answers and print its URL
  stop             stop the instance named by the PID file (SIGCONT, SIGTERM, SIGKILL after $I2V_STOP_TIMEOUT s)
  status           say whether it runs and answers; exit 0 if running, 3 if not
  restart          stop (a frozen app too), wait for the port and GPU memory to be free, start again;
                   --host/--port/--model/--auth-file not given, and the I2V_* environment (a login in
                   I2V_AUTH included), are kept from the old instance

environment: I2V_LOGS (logs/), I2V_OUTPUTS (outputs/), I2V_VENV (.venv), I2V_START_TIMEOUT (180 s),
I2V_STOP_TIMEOUT (15 s), I2V_HOST, I2V_PORT, I2V_MODEL, I2V_AUTH (USER:PASSWORD), I2V_AUTH_FILE.
A login is never passed on the app's command line (ps shows it to every local user): only a file or the
environment."""


class _UsageFormatter(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix="Usage: ")

