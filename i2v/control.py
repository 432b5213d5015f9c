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

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping

from i2v import log_retention, systemctl
from i2v.control_options import (  # noqa: F401 - re-exported: the scripts' API and tests use i2v.control.*
    COMMANDS, INHERITED, SECRET_ENV, AlreadyRunning, ControlError, Options, parse_options, say, warn)
from i2v.core.units import MIB
from i2v.core.words import default_lang, render
from i2v.preflight import gpu_free_bytes, gpu_mib_held, gpu_problem
from i2v.processes import (  # noqa: F401 - re-exported
    PidFileVerdict, alive, describe, describe_port_holder, family, is_this_app, lookup, option_of,
    pid_file_verdict, port_holders, port_in_use, read_pid_file, remove_pid_file_if, wait_until)

PORT_FREE_TIMEOUT_S = 15.0
GPU_RELEASE_TIMEOUT_S = 30.0
HELPERS_EXIT_S = 5.0
RESUME_WAIT_S = 3.0
POLL_S = 0.2
LOG_TAIL_LINES = 40
EXIT_NOT_RUNNING = 3


def find_running_app(options: Options) -> int | None:
    """This app's PID per the PID file, else None; a stale or foreign PID file is reported and removed."""
    text = read_pid_file(options.pid_file)
    verdict = pid_file_verdict(text, options.pid_file, options.root, lookup, default_lang())
    if verdict.message:
        say(verdict.message)
        if text is not None and text.strip().isdigit():
            remove_pid_file_if(options.pid_file, int(text.strip()))
        else:
            options.pid_file.unlink(missing_ok=True)
    return verdict.pid


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



def check_gpu_memory(options: Options) -> None:
    problem = gpu_problem(default_lang())
    if problem is None:
        return
    if options.force:
        warn(render("control_gpu_forced", default_lang(), problem=problem))
        return
    raise ControlError("control_gpu_held", problem=problem)


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
            raise ControlError("control_survived_kill", pid=pid)
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
    proc = lookup(pid)
    try:
        return proc is not None and is_this_app(proc.cmdline(), proc.cwd(), root)
    except Exception:  # noqa: BLE001 - not ours to read: not this app
        return False


def already_running_message(options: Options, pid: int) -> str:
    """'already running at http://H:P/ (pid N); ...' with the running instance's own host and port."""
    proc = lookup(pid)
    cmdline = proc.cmdline() if proc is not None else []
    shown = Options(host=option_of(cmdline, "host") or options.host,
                    port=int(option_of(cmdline, "port") or options.port), model=options.model)
    return render("control_already_running", default_lang(), url=shown.url(), pid=pid)


def status(options: Options) -> int:
    pid = find_running_app(options)
    if pid is None:
        say("not running")
        if port_in_use(options.port):
            say(f"port {options.port} is held by {describe_port_holder(options.port)}")
        return EXIT_NOT_RUNNING
    proc = lookup(pid)
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
        raise AlreadyRunning("text", text=already_running_message(options, running))
    if port_in_use(options.port):
        raise ControlError("control_port_busy", port=options.port, who=describe_port_holder(options.port))
    check_gpu_memory(options)
    options.outputs.mkdir(parents=True, exist_ok=True)
    options.logs.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ, **options.kept_env, I2V_OUTPUTS=str(options.outputs), I2V_LOGS=str(options.logs))
    command, url = app_command(options), options.url()
    if options.foreground:
        say(f"starting in the foreground at {url}")
        os.chdir(options.root)
        os.execve(command[0], command, child_env)
    log_path = options.logs / log_retention.APP_LOG_NAME      # the console of this run: overwritten at each start
    say(f"starting: {' '.join(command)}")
    say(f"log: {log_path}")
    with open(log_path, "wb") as log_file:
        log_retention.keep_newest(options.logs)       # the per-start app_*.log of older versions: gone
        child = subprocess.Popen(command, cwd=options.root, env=child_env, stdin=subprocess.DEVNULL,
                                 stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + options.start_timeout_s
    while not http_ok(url):
        if child.poll() is not None:
            raise ControlError("control_exited_at_start", log=log_path, tail=_tail(log_path))
        if time.monotonic() > deadline:
            warn(f"no answer from {url} after {options.start_timeout_s:g}s; stopping pid {child.pid}. "
                 f"Last lines of {log_path}:\n{_tail(log_path)}")
            child.terminate()
            try:
                child.wait(options.stop_timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
            remove_pid_file_if(options.pid_file, child.pid)
            raise ControlError("control_did_not_start")
        time.sleep(0.5)
    pid_text = (read_pid_file(options.pid_file) or "").strip()
    if not pid_text:
        warn(f"the app did not write its PID file {options.pid_file} (stop/restart will not find it)")
    say(f"running as pid {pid_text or child.pid}; open {url}")


def systemd_notice(options: Options) -> str | None:
    """When a systemd unit for this checkout is active: what to use instead of these scripts (a second instance
    would find the port taken; a stop would be undone by Restart=, or leave systemd thinking it failed)."""
    user_unit = systemctl.managing_scope(options.root)
    if user_unit is None:
        return None
    scope = "--user " if user_unit else ""
    return render("control_systemd", default_lang(), unit=systemctl.UNIT_NAME, restart=systemctl.restart_hint(user_unit),
                  scope=scope)


def main(argv: list[str] | None = None) -> int:
    try:
        command, options = parse_options(sys.argv[1:] if argv is None else argv)
        notice = systemd_notice(options)
        if notice is not None and command != "status":
            if command == "start":
                say(notice)
                return 0
            raise ControlError("text", text=notice)
        if notice is not None:
            say(notice)
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
        say(exc.text(default_lang()))
        return 0
    except ControlError as exc:
        warn(render("control_error", default_lang(), text=exc.text(default_lang())))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
