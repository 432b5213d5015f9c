"""Start, stop, restart and inspect the web app's process: what `start_app.sh` and `restart.sh` run.

    python -m i2v.control [start] [--host H] [--port P] [--model M] [--force] [--foreground]
    python -m i2v.control stop | status | restart [options]

Contract with the app: `main.py serve ... --pid-file F` writes its own PID to F and removes it at exit; GET
http://H:P/ answers 200 once up; SIGTERM makes it exit within seconds. The app is found only through that PID
file, and a PID is signalled only after checking that it runs this project's main.py (command line and
working folder): a stale PID, or one naming another process, is reported and never acted on. Processes are
read with psutil; GPU memory per PID comes from i2v.gpu (NVML). The decisions are plain functions
(`pid_file_verdict`, `is_this_app`, `port_holders`, ...) so tests check them without real processes.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Mapping

from i2v.core import env
from i2v.paths import PROJECT_ROOT
from i2v.core.units import MIB
from i2v.core.errors import I2VError

PORT_FREE_TIMEOUT_S = 15.0
GPU_RELEASE_TIMEOUT_S = 30.0
HELPERS_EXIT_S = 5.0
RESUME_WAIT_S = 3.0
POLL_S = 0.2
LOG_TAIL_LINES = 40
EXIT_NOT_RUNNING = 3
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


# --- settings ------------------------------------------------------------------------------------------------
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
        raise ControlError("--auth on a command line can be read by every local user (ps). Put USER:PASSWORD in "
                           "a file readable by you only (chmod 600) and pass --auth-file PATH, or set I2V_AUTH.")
    chosen = {name for name in INHERITED if getattr(args, name.replace("-", "_")) is not None
              or f"I2V_{name.upper().replace('-', '_')}" in environ}
    if "I2V_AUTH" in environ:               # a login chosen now replaces the old instance's, whatever its form
        chosen.add("auth-file")
    port_text = args.port if args.port is not None else env.value("I2V_PORT", environ)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ControlError(f"port must be a number 1..65535, got '{port_text}'")
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
                   start the app in its own session (PID in $I2V_LOGS/app.pid, output in
                   $I2V_LOGS/app_YYYYMMDD_HHMMSS.log); wait until the page answers and print its URL
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


# --- processes (psutil) --------------------------------------------------------------------------------------
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


def pid_file_verdict(text: str | None, pid_file: Path, root: Path, lookup) -> PidFileVerdict:
    """What the PID file's text means. lookup(pid) -> a process-like object (pid, cmdline(), cwd(),
    is_running(), status()) or None when no such process: psutil.Process in use, a stand-in in tests."""
    if text is None:
        return PidFileVerdict(None, None)
    pid_text = text.strip()
    if not pid_text.isdigit():
        return PidFileVerdict(None, f"PID file {pid_file} holds no PID ('{text[:40]}'); removed it")
    pid = int(pid_text)
    proc = lookup(pid)
    if proc is None or not alive(proc):
        return PidFileVerdict(None, f"stale PID file: pid {pid} is not running; removed {pid_file}")
    try:
        ours = is_this_app(proc.cmdline(), proc.cwd(), root)
    except Exception:  # noqa: BLE001 - not ours to read: certainly not this app
        ours = False
    if not ours:
        return PidFileVerdict(None, f"PID file names {describe(proc)}, which is not this app's main.py in {root}; "
                                    f"left that process alone and removed {pid_file}")
    return PidFileVerdict(pid, None)


def _lookup(pid: int):
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


def find_running_app(options: Options) -> int | None:
    """This app's PID per the PID file, else None; a stale or foreign PID file is reported and removed."""
    text = read_pid_file(options.pid_file)
    verdict = pid_file_verdict(text, options.pid_file, options.root, _lookup)
    if verdict.message:
        say(verdict.message)
        if text is not None and text.strip().isdigit():
            remove_pid_file_if(options.pid_file, int(text.strip()))
        else:
            options.pid_file.unlink(missing_ok=True)
    return verdict.pid


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


def inherit(options: Options, cmdline: list[str], old_env: Mapping[str, str] | None = None,
            environ: Mapping[str, str] | None = None) -> list[str]:
    """Take host/port/model/auth file from the old instance's command line where the user chose none, and its
    I2V_* variables this environment does not set (a login in I2V_AUTH included; a login the old one was given
    with --auth moves into the environment); what was kept, with no secret in it."""
    environ = os.environ if environ is None else environ
    kept = []
    for name in INHERITED:
        value = option_of(cmdline, name)
        if value is not None and name not in options.chosen:
            setattr(options, name.replace("-", "_"), int(value) if name == "port" else value)
            kept.append(f"--{name} {value}")
    old_env = dict(old_env or {})
    legacy_auth = option_of(cmdline, "auth")
    if legacy_auth is not None:
        old_env["I2V_AUTH"] = legacy_auth
    for name, value in sorted(old_env.items()):
        if not name.startswith("I2V_") or name in environ or name in ("I2V_PYTHON", "I2V_OUTPUTS", "I2V_LOGS"):
            continue
        if name in ("I2V_AUTH", "I2V_AUTH_FILE") and "auth-file" in options.chosen:
            continue
        options.kept_env[name] = value
        kept.append(f"{name}=***" if name in SECRET_ENV else f"{name}={value}")
    return kept


# --- the port ------------------------------------------------------------------------------------------------
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
    names = [describe(proc) for proc in map(_lookup, pids) if proc is not None]
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


# --- GPU (no-ops without an NVIDIA GPU) ---------------------------------------------------------------------
def gpu_free_bytes() -> int | None:
    from i2v import gpu

    if gpu.nvml_gpu_count() == 0:
        return None
    device = gpu.probe_device_without_torch(0)
    return device.free_bytes if device.kind == "cuda" else None


def smallest_fit_problem(free_bytes: int) -> str | None:
    """None when some preset fits free_bytes with some plan; else what the smallest one needs."""
    from i2v.configs import load_memory_model, load_presets
    from i2v.core.memory import for_device
    from i2v.core.presets import recommend_preset
    from i2v.core.units import GIB
    from i2v.gpu import host_available_bytes

    presets = load_presets()
    model = for_device(load_memory_model(), "cuda")
    chosen, statuses = recommend_preset(presets, model, free_bytes, host_bytes=host_available_bytes())
    if chosen is not None:
        return None
    smallest = min(statuses, key=lambda s: s.peak_gib)
    return (f"GPU 0 has only {free_bytes / GIB:.1f} GiB free; the smallest preset ({smallest.preset.label}) "
            f"needs about {smallest.peak_gib:.1f} GiB.")


def check_gpu_memory(options: Options) -> None:
    free = gpu_free_bytes()
    if free is None:
        return
    problem = None
    for _ in range(5):               # memory of a just-stopped instance can take a moment to show as free
        problem = smallest_fit_problem(free)
        if problem is None:
            return
        time.sleep(1)
        free = gpu_free_bytes() or 0
    if options.force:
        warn(f"{problem} Starting anyway (--force).")
        return
    raise ControlError(f"{problem} An earlier instance may still hold it: run restart.sh, or see nvidia-smi for "
                       "other programs. Use --force to start anyway.")


def gpu_mib_held(pids) -> int | None:
    from i2v import gpu

    held = gpu.gpu_bytes_by_pid(pids)
    return None if held is None else sum(held.values()) // MIB


# --- commands ------------------------------------------------------------------------------------------------
def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False


def stop(options: Options, inherit_options: bool = False) -> None:
    """Stop the instance named by the PID file (verified first). Safe when nothing runs."""
    import psutil

    pid = find_running_app(options)
    if pid is None:
        say(f"no running instance found (PID file: {options.pid_file})")
        return
    app = psutil.Process(pid)
    helpers = family(pid)
    held_before = gpu_mib_held([pid, *[h.pid for h in helpers]])
    free_before = gpu_free_bytes()
    helper_text = (f" and its {len(helpers)} helper process(es) (pid {' '.join(str(h.pid) for h in helpers)})"
                   if helpers else "")
    say(f"stopping {describe(app)}{helper_text}" + (f", holding {held_before} MiB of GPU memory"
                                                      if held_before else ""))
    cmdline = app.cmdline()
    if inherit_options:
        try:
            old_env = app.environ()
        except psutil.Error:
            old_env = {}
            warn(f"cannot read the environment of pid {pid} (another user's process?): its I2V_* settings, a "
                 "login in I2V_AUTH included, are not kept")
        kept = inherit(options, cmdline, old_env)
        if kept:
            say("keeping the old instance's options: " + " ".join(kept))
    port = int(option_of(cmdline, "port") or options.port)
    state = app.status()
    if state in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
        say(f"pid {pid} is stopped (state {state}); resuming it (SIGCONT) so it can exit")
    for proc in (app, *helpers):
        try:
            proc.send_signal(signal.SIGCONT)
        except psutil.Error:
            pass
    # Signal only once it runs again: a SIGTERM sent while its main thread is still stopped may go to another
    # thread, and a Python main thread blocked without a timeout would then never handle it.
    wait_until(lambda: not alive(app) or app.status() not in (psutil.STATUS_STOPPED,
                                                              psutil.STATUS_TRACING_STOP), RESUME_WAIT_S)
    if state in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
        time.sleep(0.3)              # let its other threads resume too
    how = "SIGTERM"
    try:
        app.terminate()
    except psutil.NoSuchProcess:
        pass
    _, still = psutil.wait_procs([app], timeout=options.stop_timeout_s)
    if still:
        how = "SIGKILL"
        say(f"pid {pid} did not exit {options.stop_timeout_s:g}s after SIGTERM (state {app.status()}); "
            "sending SIGKILL")
        app.kill()
        _, still = psutil.wait_procs([app], timeout=10)
        if still:
            raise ControlError(f"pid {pid} survived SIGKILL")
    remove_pid_file_if(options.pid_file, pid)
    say(f"pid {pid} exited ({how})")
    # its helpers should be gone with it: give them a moment, then SIGKILL the ones left (same start time)
    _, left = psutil.wait_procs(helpers, timeout=HELPERS_EXIT_S)
    for helper in left:
        say(f"helper {describe(helper)} outlived the app; sending SIGKILL")
        try:
            helper.kill()
        except psutil.Error:
            pass
    if not wait_until(lambda: not port_in_use(port), PORT_FREE_TIMEOUT_S):
        warn(f"port {port} is still taken by {describe_port_holder(port)}")
    if held_before is not None:
        pids = [pid, *[h.pid for h in helpers]]
        if not wait_until(lambda: not gpu_mib_held(pids), GPU_RELEASE_TIMEOUT_S):
            warn(f"the driver still lists pid {' '.join(map(str, pids))} as holding GPU memory")
        free_after = gpu_free_bytes()
        if free_before is not None and free_after is not None:
            say(f"released GPU memory: {held_before} MiB held by the app's processes; free on GPU 0: "
                f"{free_before // MIB} -> {free_after // MIB} MiB ({(free_after - free_before) // MIB} MiB)")


def _is_this_app_pid(pid: int, root: Path) -> bool:
    proc = _lookup(pid)
    try:
        return proc is not None and is_this_app(proc.cmdline(), proc.cwd(), root)
    except Exception:  # noqa: BLE001 - not ours to read: not this app
        return False


def already_running_message(options: Options, pid: int) -> str:
    """'already running at http://H:P/ (pid N); ...' with the running instance's own host and port."""
    proc = _lookup(pid)
    cmdline = proc.cmdline() if proc is not None else []
    shown = Options(host=option_of(cmdline, "host") or options.host,
                    port=int(option_of(cmdline, "port") or options.port), model=options.model)
    return (f"already running at {shown.url()} (pid {pid}); bash restart.sh restarts it, "
            f"bash start_app.sh stop stops it")


def status(options: Options) -> int:
    pid = find_running_app(options)
    if pid is None:
        say("not running")
        if port_in_use(options.port):
            say(f"port {options.port} is held by {describe_port_holder(options.port)}")
        return EXIT_NOT_RUNNING
    proc = _lookup(pid)
    say(f"running: {describe(proc)}")
    cmdline = proc.cmdline()
    options.port = int(option_of(cmdline, "port") or options.port)
    options.host = option_of(cmdline, "host") or options.host
    if http_ok(options.url()):
        say(f"healthy at {options.url()}")
    else:
        say(f"not answering at {options.url()} (see the newest log in {options.logs})")
    return 0


def app_command(options: Options, python: str = sys.executable) -> list[str]:
    """The app's command line: never a password (a login goes by --auth-file or the environment)."""
    command = [python, "main.py", "serve", "--host", options.host, "--port", str(options.port),
               "--pid-file", str(options.pid_file)]
    command += ["--model", options.model] if options.model else []
    command += ["--auth-file", str(Path(options.auth_file).expanduser().resolve())] if options.auth_file else []
    return command + options.passed


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(options: Options) -> None:
    """Checks, then start in the background (or exec in the foreground) and wait until the page answers.
    An app already running (found by its PID file, or listening on the port) is said once, with its address."""
    running = find_running_app(options) or next((pid for pid in port_holders(options.port)[1]
                                                 if _is_this_app_pid(pid, options.root)), None)
    if running is not None:
        raise AlreadyRunning(already_running_message(options, running))
    if port_in_use(options.port):
        raise ControlError(f"port {options.port} is already in use by {describe_port_holder(options.port)}. Stop it "
                           "or choose another --port.")
    check_gpu_memory(options)
    options.outputs.mkdir(parents=True, exist_ok=True)
    options.logs.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ, **options.kept_env, I2V_OUTPUTS=str(options.outputs), I2V_LOGS=str(options.logs))
    command, url = app_command(options), options.url()
    if options.foreground:
        say(f"starting in the foreground at {url}")
        os.chdir(options.root)
        os.execve(command[0], command, child_env)
    log_path = options.logs / f"app_{datetime.now():%Y%m%d_%H%M%S}.log"
    say(f"starting: {' '.join(command)}")
    say(f"log: {log_path}")
    with open(log_path, "ab") as log_file:
        child = subprocess.Popen(command, cwd=options.root, env=child_env, stdin=subprocess.DEVNULL,
                                 stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + options.start_timeout_s
    while not http_ok(url):
        if child.poll() is not None:
            raise ControlError(f"the app exited during start-up; last lines of {log_path}:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            warn(f"no answer from {url} after {options.start_timeout_s:g}s; stopping pid {child.pid}. "
                 f"Last lines of {log_path}:\n{_tail(log_path)}")
            child.terminate()
            try:
                child.wait(options.stop_timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
            remove_pid_file_if(options.pid_file, child.pid)
            raise ControlError("the app did not start")
        time.sleep(0.5)
    pid_text = (read_pid_file(options.pid_file) or "").strip()
    if not pid_text:
        warn(f"the app did not write its PID file {options.pid_file} (stop/restart will not find it)")
    say(f"running as pid {pid_text or child.pid}; open {url}")


def main(argv: list[str] | None = None) -> int:
    try:
        command, options = parse_options(sys.argv[1:] if argv is None else argv)
        if command == "stop":
            stop(options)
        elif command == "status":
            return status(options)
        elif command == "restart":
            stop(options, inherit_options=True)
            start(options)
        else:
            start(options)
    except AlreadyRunning as exc:
        say(str(exc))
        return 0
    except ControlError as exc:
        warn(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
