"""The `service` command(s) of main.py (registered by i2v.cli): keep this checkout's app running under systemd.

    main.py service install [--user] [--print] [--host H] [--port P] [--model M] [--name i2v]
    main.py service status [--user] [--name i2v]
    main.py service uninstall [--user] [--name i2v]

The unit's text comes from i2v.service_unit (pure); systemctl is asked through i2v.systemctl.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request

from i2v.core import env
from i2v.service_unit import UNIT_NAME

EXIT_REFUSED = 2


def add_parsers(subparsers) -> None:
    """Register `service install|status|uninstall` on main.py's argparse subparsers."""
    service = subparsers.add_parser("service", help="run the app as a systemd service (restarts on failure)")
    actions = service.add_subparsers(dest="service_command", required=True)
    for name, func, text in (("install", cmd_install, "write the systemd unit for this checkout (or --print it)"),
                             ("status", cmd_status, "is the unit installed, running, healthy; recent OOMs"),
                             ("uninstall", cmd_uninstall, "stop and disable the unit, remove its file")):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("--user", action="store_true",
                            help="a user unit (~/.config/systemd/user; no root needed) instead of a system one")
        parser.add_argument("--name", default=UNIT_NAME, help=f"the unit's name (default {UNIT_NAME})")
        parser.set_defaults(func=func)
        if name == "install":
            parser.add_argument("--print", action="store_true", help="print the unit instead of writing it")
            parser.add_argument("--host", default=env.value("I2V_HOST", os.environ), help="[env I2V_HOST]")
            parser.add_argument("--port", type=int, default=int(env.value("I2V_PORT", os.environ)),
                                help="[env I2V_PORT]")
            parser.add_argument("--model", default=env.value("I2V_MODEL", os.environ), help="[env I2V_MODEL]")


def _refuse(text: str) -> int:
    print(f"[i2v] error: {text}", file=sys.stderr)
    return EXIT_REFUSED


def cmd_install(args: argparse.Namespace) -> int:
    from i2v import serving, systemctl
    from i2v.paths import PROJECT_ROOT
    from i2v.service_unit import settings_from, unit_path, unit_text

    if os.environ.get("I2V_AUTH"):
        return _refuse("a unit file is readable by other users: put USER:PASSWORD in a file only you can read "
                       "(chmod 600) and set I2V_AUTH_FILE to it instead of I2V_AUTH")
    if not serving.is_loopback(serving.bind_address(args.host)) and not os.environ.get("I2V_AUTH_FILE"):
        return _refuse(f"serving on {args.host} needs a login: set I2V_AUTH_FILE (a chmod 600 file with "
                       "USER:PASSWORD) before installing, or keep --host 127.0.0.1")
    text = unit_text(settings_from(PROJECT_ROOT, args.host, args.port, args.model, args.user))
    if args.print:
        print(text, end="")
        return 0
    path = unit_path(args.user, args.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _refuse(f"cannot write {path}: {exc.strerror} (a system unit needs root: sudo, or use --user)")
    reload = systemctl.systemctl(["daemon-reload"], args.user)
    scope = "--user " if args.user else ""
    print(f"[i2v] wrote {path}")
    if reload is None or reload.returncode != 0:
        print(f"[i2v] systemctl {scope}daemon-reload did not run here; run it where systemd runs")
    print(f"[i2v] start it now and at every boot: systemctl {scope}enable --now {args.name}")
    if args.user:
        print("[i2v] a user unit runs while you are logged in; to keep it after logout and start it at boot: "
              "loginctl enable-linger $USER")
    print(f"[i2v] logs: journalctl {scope}-u {args.name} -f, and {PROJECT_ROOT / 'logs'}/i2v.log")
    return 0


def health(port: int, host: str = "127.0.0.1") -> tuple[int | None, dict | None]:
    """(status, body) of the app's /healthz; (None, None) when it does not answer."""
    import urllib.error

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=3) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return None, None


def cmd_status(args: argparse.Namespace) -> int:
    from i2v import paths, systemctl
    from i2v.log_retention import oom_summary
    from i2v.service_unit import command_and_env, unit_path

    path = unit_path(args.user, args.name)
    if not path.exists():
        print(f"[i2v] no unit installed at {path} (main.py service install{' --user' if args.user else ''})")
    else:
        print(f"[i2v] unit: {path}")
        shown = systemctl.state(args.name, args.user)
        if shown is None:
            print("[i2v] systemd does not answer here (no systemctl, or no manager for this scope)")
        else:
            print(f"[i2v] {shown.get('ActiveState')} ({shown.get('SubState')}), {shown.get('UnitFileState')}, "
                  f"main pid {shown.get('MainPID')}, restarts {shown.get('NRestarts', '?')}")
        command, _, _ = command_and_env(path.read_text(encoding="utf-8"))
        port = int(command[command.index("--port") + 1]) if "--port" in command else int(env.value("I2V_PORT", {}))
        code, body = health(port)
        print(f"[i2v] /healthz on port {port}: " + (f"{code} {body.get('state')}" if body else "no answer"))
    lines = oom_summary(paths.logs_dir())
    print(f"[i2v] recent out-of-memory errors ({len(lines)}):" if lines else "[i2v] no out-of-memory errors logged")
    for line in lines:
        print(f"  {line}")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from i2v import systemctl
    from i2v.service_unit import unit_path

    path = unit_path(args.user, args.name)
    stopped = systemctl.systemctl(["disable", "--now", args.name], args.user)
    if stopped is not None and stopped.returncode == 0:
        print(f"[i2v] stopped and disabled {args.name}")
    if not path.exists():
        print(f"[i2v] no unit file at {path}")
        return 0
    try:
        path.unlink()
    except OSError as exc:
        return _refuse(f"cannot remove {path}: {exc.strerror} (a system unit needs root)")
    systemctl.systemctl(["daemon-reload"], args.user)
    print(f"[i2v] removed {path}")
    return 0
