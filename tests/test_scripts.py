"""start_app.sh / restart.sh against real app processes (tiny model, CPU, a free random port).

Every test gets its own logs/ and outputs/ (I2V_LOGS, I2V_OUTPUTS) and uses the existing virtual environment
(I2V_VENV; nothing is reinstalled). Processes are cleaned up by the PIDs the tests know, never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

SCRIPTS = [ROOT / "start_app.sh", ROOT / "restart.sh", ROOT / "scripts" / "ensure_venv.sh"]
VENV = Path(os.environ.get("I2V_VENV", sys.prefix))  # the venv running the tests
SCRIPT_TIMEOUT_S = 120
RESTART_GOAL_S = 30
SIGTERM_EXIT_GOAL_S = 10


def pid_alive(pid: int) -> bool:
    """Exists and is not a zombie (an orphaned app is reaped by init, possibly a moment later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def children(pid: int) -> list[int]:
    """Direct children (the app's worker and multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def is_app(pid: int) -> bool:
    try:
        return pid_alive(pid) and b"main.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class App:
    """The environment of one test: where its PID file and outputs are, and how to run the scripts."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.logs = tmp_path / "logs"
        self.outputs = tmp_path / "outputs"
        self.cwd = tmp_path  # run the scripts from elsewhere than the project root
        self.url = f"http://127.0.0.1:{self.port}/"
        self.known_pids: set[int] = set()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("I2V_")}
        self.env.update(I2V_LOGS=str(self.logs), I2V_OUTPUTS=str(self.outputs), I2V_VENV=str(VENV),
                        I2V_PORT=str(self.port), I2V_MODEL="tiny", I2V_START_TIMEOUT="90",
                        I2V_STOP_TIMEOUT="8")

    @property
    def pid_file(self) -> Path:
        return self.logs / "app.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        self.known_pids.add(pid)
        return pid

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["bash", str(ROOT / script), *args], cwd=self.cwd, env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=SCRIPT_TIMEOUT_S)
        self.pid()  # remember whatever instance it started, for the finalizer
        return proc

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=3) as response:
                return response.status == 200
        except OSError:
            return False

    def cleanup(self) -> None:
        self.pid()
        for pid in self.known_pids:
            if is_app(pid):
                helpers = children(pid)  # the worker would otherwise outlive a SIGKILLed server
                for victim in (pid, *helpers):
                    try:
                        os.kill(victim, signal.SIGCONT)
                        os.kill(victim, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                wait_gone(pid, 10)


@pytest.fixture
def app(tmp_path):
    env = App(tmp_path)
    yield env
    env.cleanup()


def started(app: App, proc: subprocess.CompletedProcess) -> int:
    assert proc.returncode == 0, proc.stdout
    assert "installing dependencies" not in proc.stdout, "the scripts must reuse the existing venv"
    assert app.url in proc.stdout, proc.stdout
    assert app.healthy(), proc.stdout
    pid = app.pid()
    assert pid is not None and is_app(pid), proc.stdout
    return pid


# --- static checks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    proc = subprocess.run(["shellcheck", "-x", *map(str, SCRIPTS)], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("script", ["start_app.sh", "restart.sh"])
def test_help(script, tmp_path):
    proc = subprocess.run(["bash", str(ROOT / script), "--help"], cwd=tmp_path, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert proc.returncode == 0 and "Usage:" in proc.stdout and "--port" in proc.stdout


# --- real processes ---------------------------------------------------------------------------------------
def test_start_refuses_second_instance_status_and_stop(app):
    pid = started(app, app.run("start_app.sh"))
    assert (app.logs / "app.log").is_file(), "start_app.sh writes the app's console to logs/app.log"
    assert not list(app.logs.glob("app_*.log")), "one console log, not one per start"
    assert app.outputs.is_dir()

    again = app.run("start_app.sh")          # said once, with its address, whichever check sees it first
    assert again.returncode == 0, again.stdout
    assert f"already running at {app.url} (pid {pid})" in again.stdout, again.stdout
    assert again.stdout.count("already") == 1 and "in use" not in again.stdout, again.stdout
    assert is_app(pid) and app.healthy()

    status = app.run("start_app.sh", "status")
    assert status.returncode == 0 and str(pid) in status.stdout and "healthy" in status.stdout

    stop = app.run("start_app.sh", "stop")
    assert stop.returncode == 0, stop.stdout
    assert wait_gone(pid, 1) and not app.pid_file.exists() and not app.healthy()
    assert app.run("start_app.sh", "status").returncode == 3


def test_restart_replaces_a_frozen_instance(app):
    old = started(app, app.run("start_app.sh"))
    helpers = children(old)
    os.kill(old, signal.SIGSTOP)
    began = time.monotonic()
    proc = app.run("restart.sh")
    elapsed = time.monotonic() - began
    new = started(app, proc)
    assert elapsed < RESTART_GOAL_S, f"restart took {elapsed:.1f}s\n{proc.stdout}"
    assert new != old and not pid_alive(old), proc.stdout
    assert not [pid for pid in helpers if pid_alive(pid) and pid not in children(new)], proc.stdout
    assert "stopped" in proc.stdout  # it noticed the frozen state


def test_restart_ignores_pid_file_naming_another_process(app):
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        app.logs.mkdir(parents=True)
        app.pid_file.write_text(f"{sleeper.pid}\n")
        proc = app.run("restart.sh")
        started(app, proc)
        assert sleeper.poll() is None, "restart.sh must not signal a process that is not this app"
        assert "not this app" in proc.stdout, proc.stdout
    finally:
        sleeper.kill()
        sleeper.wait()


def test_restart_with_nothing_running_starts_the_app(app):
    app.logs.mkdir(parents=True)
    app.pid_file.write_text("4194304\n")  # above pid_max: certainly stale
    proc = app.run("restart.sh")
    started(app, proc)
    assert "stale PID file" in proc.stdout, proc.stdout


def test_sigterm_during_generation_exits_quickly_without_partial_video(app):
    from gradio_client import Client, handle_file
    from PIL import Image

    pid = started(app, app.run("start_app.sh"))
    image = app.cwd / "input.png"
    Image.new("RGB", (256, 256), (90, 40, 160)).save(image)
    client = Client(app.url, verbose=False)
    job = client.submit(image=handle_file(str(image)), prompt="a test", negative_prompt="", resolution=256,
                        num_frames=4, fps=8, num_inference_steps=150, guidance_scale=5.0, seed=1,
                        api_name="/generate")
    deadline = time.monotonic() + 60
    while not any("Denoising" in (p.desc or "") for p in (job.status().progress_data or [])):
        assert not job.done(), f"generation ended before it could be interrupted: {job.status()}"
        assert time.monotonic() < deadline, "the generation never reached the denoising loop"
        time.sleep(0.2)
    helpers = children(pid)
    os.kill(pid, signal.SIGTERM)
    began = time.monotonic()
    assert wait_gone(pid, SIGTERM_EXIT_GOAL_S + 5)
    elapsed = time.monotonic() - began
    assert elapsed < SIGTERM_EXIT_GOAL_S, f"exit took {elapsed:.1f}s after SIGTERM"
    assert all(wait_gone(helper, 2) for helper in helpers), "the app's worker must exit with it"
    assert not app.pid_file.exists(), "the app removes its PID file at exit"
    leftovers = [p.name for p in app.outputs.rglob("*") if p.is_file()]
    assert not [n for n in leftovers if n.endswith(".mp4") or n.startswith(".partial")], leftovers


def keep_alive_connections(url: str, count: int = 3) -> list:
    """Sockets holding HTTP/1.1 keep-alive connections to the app, as an open browser tab does."""
    import socket
    from urllib.parse import urlparse

    where = urlparse(url)
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((where.hostname, where.port), timeout=30)
        sock.sendall(f"GET /config HTTP/1.1\r\nHost: {where.hostname}:{where.port}\r\n"
                     "Connection: keep-alive\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1"), "the app answered on the kept connection"
        sockets.append(sock)
    return sockets


def test_restart_with_pages_open_and_a_job_running_brings_the_app_back(app):
    """Open tabs leave the old app's connections in FIN-WAIT/TIME-WAIT: the new app must still bind at once."""
    from gradio_client import Client, handle_file
    from PIL import Image

    old = started(app, app.run("start_app.sh"))
    image = app.cwd / "input.png"
    Image.new("RGB", (256, 256), (90, 40, 160)).save(image)
    tabs = keep_alive_connections(app.url)
    try:
        job = Client(app.url, verbose=False).submit(
            image=handle_file(str(image)), prompt="a test", negative_prompt="", resolution=256, num_frames=4,
            fps=8, num_inference_steps=150, guidance_scale=5.0, seed=1, api_name="/generate")
        deadline = time.monotonic() + 120
        while not any("Denoising" in (p.desc or "") for p in (job.status().progress_data or [])):
            assert not job.done() and time.monotonic() < deadline, "the job never reached its denoising steps"
            time.sleep(0.2)
        began = time.monotonic()
        proc = app.run("restart.sh")
        elapsed = time.monotonic() - began
        new = started(app, proc)
        assert new != old and not pid_alive(old), proc.stdout
        assert "in use" not in proc.stdout, proc.stdout
        assert elapsed < RESTART_GOAL_S, f"restart took {elapsed:.1f}s\n{proc.stdout}"
    finally:
        for sock in tabs:
            sock.close()


def login_works(url: str, user: str, password: str) -> bool:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as session:
        if session.get("config").status_code != 401:
            return False                     # a login is required before anything else
        answer = session.post("login", data={"username": user, "password": password})
        return answer.status_code == 200 and session.get("config").status_code == 200


@pytest.mark.parametrize("how", ["environment", "auth file"])
def test_restart_keeps_host_and_login_without_a_password_on_any_command_line(app, how):
    secret = "s3cret-pass"
    if how == "environment":
        app.env.update(I2V_AUTH=f"me:{secret}", I2V_HOST="0.0.0.0")
        args = []
    else:
        auth_file = app.cwd / "login.txt"
        auth_file.write_text(f"me:{secret}\n")
        auth_file.chmod(0o640)
        refused = app.run("start_app.sh", "--host", "0.0.0.0", "--auth-file", str(auth_file))
        assert refused.returncode != 0 and "chmod 600" in refused.stdout and secret not in refused.stdout
        auth_file.chmod(0o600)
        args = ["--host", "0.0.0.0", "--auth-file", str(auth_file)]
    old = started(app, app.run("start_app.sh", *args))
    for name in ("I2V_AUTH", "I2V_HOST"):                # the restart's shell knows neither
        app.env.pop(name, None)
    proc = app.run("restart.sh")
    new = started(app, proc)
    assert new != old and secret not in proc.stdout, proc.stdout
    cmdline = Path(f"/proc/{new}/cmdline").read_bytes().decode().split("\0")
    assert secret not in " ".join(cmdline) and "--auth" not in cmdline, cmdline
    assert cmdline[cmdline.index("--host") + 1] == "0.0.0.0"
    assert login_works(app.url, "me", secret)


def test_a_password_on_the_scripts_command_line_is_refused(app):
    proc = app.run("start_app.sh", "--auth", "me:pw")
    assert proc.returncode != 0 and "--auth-file" in proc.stdout and app.pid() is None, proc.stdout
