"""Which process is this app, and who holds a port: the process facts start_app.sh / restart.sh decide on
(psutil). The decisions are plain functions (`pid_file_verdict`, `is_this_app`, `port_holders`, ...) so tests
check them without real processes. Split from i2v.control."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from i2v.core.words import render

POLL_S = 0.2


def describe(proc) -> str:
    """'pid N (command line)' for messages."""
    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except Exception:  # noqa: BLE001 - gone or not ours to read
        command = "?"
    return f"pid {proc.pid} ({command})"


def is_this_app(cmdline: list[str], cwd: str | None, root: Path) -> bool:
    """The process runs main.py with this project root as its working folder."""
    runs_main = any(Path(arg).name == "main.py" for arg in cmdline)
    return runs_main and cwd is not None and Path(cwd).resolve() == root.resolve()


def alive(proc) -> bool:
    """Exists and is not a zombie (an orphaned app may linger as one until reaped)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass(frozen=True)
class PidFileVerdict:
    pid: int | None          # this app's PID, if the file names it
    message: str | None      # what was wrong with the file (it was removed), if anything


def pid_file_verdict(text: str | None, pid_file: Path, root: Path, lookup, lang: str = "en") -> PidFileVerdict:
    """What the PID file's text means. lookup(pid) -> a process-like object (pid, cmdline(), cwd(),
    is_running(), status()) or None when no such process: psutil.Process in use, a stand-in in tests."""
    if text is None:
        return PidFileVerdict(None, None)
    pid_text = text.strip()
    if not pid_text.isdigit():
        return PidFileVerdict(None, render("pid_file_no_pid", lang, pid_file=pid_file, text=text[:40]))
    pid = int(pid_text)
    proc = lookup(pid)
    if proc is None or not alive(proc):
        return PidFileVerdict(None, render("pid_file_stale", lang, pid=pid, pid_file=pid_file))
    try:
        ours = is_this_app(proc.cmdline(), proc.cwd(), root)
    except Exception:  # noqa: BLE001 - not ours to read: certainly not this app
        ours = False
    if not ours:
        return PidFileVerdict(None, render("pid_file_not_ours", lang, process=describe(proc), root=root,
                                           pid_file=pid_file))
    return PidFileVerdict(pid, None)


def lookup(pid: int):
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def read_pid_file(pid_file: Path) -> str | None:
    try:
        return pid_file.read_text(errors="replace")
    except OSError:
        return None


def remove_pid_file_if(pid_file: Path, pid: int) -> None:
    """Remove the PID file only while it still names pid (never a newer instance's file)."""
    if (read_pid_file(pid_file) or "").strip() == str(pid):
        pid_file.unlink(missing_ok=True)



def family(pid: int) -> list:
    """The app's helper processes: its descendants and, when it leads a process group (start puts it in its
    own session), the group's members; psutil.Process objects remember their start time, so a PID reused
    later is never mistaken for one of them."""
    import psutil

    root = psutil.Process(pid)
    members = {p.pid: p for p in root.children(recursive=True)}
    try:
        if os.getpgid(pid) == pid:
            for proc in psutil.process_iter():
                try:
                    if proc.pid != pid and os.getpgid(proc.pid) == pid:
                        members.setdefault(proc.pid, proc)
                except (OSError, psutil.Error):
                    pass
    except OSError:
        pass
    return [p for p in members.values() if alive(p)]


def option_of(cmdline: list[str], name: str) -> str | None:
    """The value given to --name on a command line (`--name V` or `--name=V`)."""
    for index, arg in enumerate(cmdline):
        if arg == f"--{name}" and index + 1 < len(cmdline):
            return cmdline[index + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None



def port_holders(port: int, connections=None) -> tuple[bool, list[int]]:
    """(is anything listening on port, the PIDs we may see doing so; the list may be empty when the holder
    belongs to another user). connections: psutil.net_connections() rows (for tests)."""
    import psutil

    if connections is None:
        try:
            connections = psutil.net_connections(kind="tcp")
        except psutil.Error:
            connections = []
    listening = [c for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
    return bool(listening), sorted({c.pid for c in listening if c.pid})


def port_in_use(port: int) -> bool:
    return port_holders(port)[0]


def describe_port_holder(port: int) -> str:
    _, pids = port_holders(port)
    names = [describe(proc) for proc in map(lookup, pids) if proc is not None]
    if names:
        return ", ".join(names)
    import getpass

    return (f"an unidentified process (not visible to {getpass.getuser()}; "
            f"try: sudo ss -ltnp 'sport = :{port}')")


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True

