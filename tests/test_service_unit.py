"""`main.py service`: the systemd unit's text (verified by systemd-analyze when present), and its restart policy
replayed: the app started by the unit's ExecStart, SIGKILLed, started again by the same command line (what
systemd's Restart=on-failure does), answers again. systemd itself does not run in CI (no manager in a
container), so the restart is replayed rather than left to systemd."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from i2v import service_unit, systemctl
from tests.conftest import APP_START_TIMEOUT_S, ROOT, free_port, wait_for_http


def settings(tmp_path: Path, port: int = 7860, **env) -> service_unit.UnitSettings:
    environ = {"I2V_LOGS": str(tmp_path / "logs"), "I2V_OUTPUTS": str(tmp_path / "outputs"), **env}
    return service_unit.settings_from(ROOT, "127.0.0.1", port, "tiny", user_unit=True, environ=environ)


def test_the_unit_runs_the_venv_python_restarts_on_failure_and_never_names_a_password(tmp_path):
    auth = tmp_path / "a dir %x" / "login"
    text = service_unit.unit_text(settings(tmp_path, I2V_AUTH_FILE=str(auth), I2V_AUTH="u:secret"))
    values = service_unit.parse_unit(text)
    assert values["Restart"] == ["on-failure"] and values["KillMode"] == ["mixed"]
    assert int(values["TimeoutStopSec"][0]) >= 10
    assert "secret" not in text and "--auth" not in text
    command, env, folder = service_unit.command_and_env(text)
    assert command[0] == service_unit.venv_python(ROOT) and Path(command[1]) == ROOT / "main.py"
    assert command[command.index("--port") + 1] == "7860" and command[command.index("--model") + 1] == "tiny"
    assert env["I2V_AUTH_FILE"] == str(auth) and folder == ROOT     # a path with a space and a % survives quoting
    assert "WantedBy=default.target" in text


def test_install_refuses_a_password_in_the_environment_and_writes_removes_a_user_unit(tmp_path):
    base = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    base.pop("I2V_AUTH", None)

    def main(*args, **extra):
        return subprocess.run([sys.executable, "main.py", "service", *args], cwd=ROOT, env={**base, **extra},
                              capture_output=True, text=True, timeout=60)

    refused = main("install", "--user", "--print", I2V_AUTH="u:secret")
    assert refused.returncode == 2 and "I2V_AUTH_FILE" in refused.stderr and "secret" not in refused.stdout
    assert main("install", "--user", "--print", "--host", "0.0.0.0").returncode == 2    # no login: refused
    assert main("install", "--user", "--port", "7999").returncode == 0
    unit = tmp_path / "config" / "systemd" / "user" / "i2v.service"
    assert "--port 7999" in unit.read_text()
    status = main("status", "--user")
    assert status.returncode == 0 and str(unit) in status.stdout
    assert main("uninstall", "--user").returncode == 0 and not unit.exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze missing (Debian: apt-get install systemd; .ci/run installs it)")
@pytest.mark.parametrize("user_unit", [True, False])
def test_the_unit_passes_systemd_analyze_verify(tmp_path, user_unit):
    unit = tmp_path / "i2v.service"
    unit.write_text(service_unit.unit_text(service_unit.settings_from(ROOT, "127.0.0.1", 7860, "tiny", user_unit)))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    # a bad line is only a warning to systemd (exit 0): any output at all is a failure here
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stderr + done.stdout


def test_systemd_show_names_this_checkout_only_when_active():
    assert systemctl.manages({"ActiveState": "active", "WorkingDirectory": str(ROOT)}, ROOT)
    assert systemctl.manages({"ActiveState": "activating", "WorkingDirectory": f"!{ROOT}"}, ROOT)
    assert not systemctl.manages({"ActiveState": "inactive", "WorkingDirectory": str(ROOT)}, ROOT)
    assert not systemctl.manages({"ActiveState": "active", "WorkingDirectory": "/elsewhere"}, ROOT)
    assert systemctl.parse_show("ActiveState=active\nMainPID=12\n") == {"ActiveState": "active", "MainPID": "12"}


def start_like_systemd(text: str) -> subprocess.Popen:
    command, env, folder = service_unit.command_and_env(text)
    return subprocess.Popen(command, cwd=folder, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen, worker_pids: list[int]) -> None:
    for pid in worker_pids:          # a SIGKILLed app leaves its worker (systemd's KillMode=mixed kills it)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_pids(url: str) -> list[int]:
    return [w["pid"] for w in httpx.get(url + "healthz", timeout=5).json()["workers"] if w.get("pid")]


def test_killed_with_sigkill_the_units_command_line_brings_it_back(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    text = service_unit.unit_text(settings(tmp_path, port))
    first = start_like_systemd(text)
    workers: list[int] = []
    second = None
    try:
        wait_for_http(url, APP_START_TIMEOUT_S, first)
        workers += worker_pids(url)
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL          # a failure: Restart=on-failure starts it again
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=2)
        second = start_like_systemd(text)
        wait_for_http(url, APP_START_TIMEOUT_S, second)
        workers += worker_pids(url)
        assert (tmp_path / "logs" / "app.pid").read_text().strip() == str(second.pid)
    finally:
        stop(first, workers)
        if second is not None:
            stop(second, workers)
