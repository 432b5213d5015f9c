"""Locked-down serving: Host check, security headers, files never served as pages, upload limit, login,
no unauthenticated binding beyond the loopback, and a second instance that touches nothing."""
import os
import subprocess
import sys
import time

import httpx
import pytest

from i2v import serving, video
from tests.conftest import ROOT, RunningApp, free_port


@pytest.mark.parametrize("header, name", [("localhost:7860", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
                                          ("[::1]:7860", "::1"), ("evil.example:7860", "evil.example"),
                                          ("EVIL.example", "evil.example")])
def test_host_header_parsing(header, name):
    assert serving.host_name(header) == name


def test_bind_rules():
    assert serving.is_loopback("127.0.0.1") and serving.is_loopback("::1") and serving.is_loopback("localhost")
    assert not serving.is_loopback("0.0.0.0") and not serving.is_loopback("192.168.1.5")
    serving.check_bind("127.0.0.1", None)
    serving.check_bind("0.0.0.0", ("u", "p"))
    with pytest.raises(serving.ServingError, match="--auth"):
        serving.check_bind("0.0.0.0", None)
    assert serving.parse_auth("me:secret:colon") == ("me", "secret:colon")
    for bad in ("nocolon", ":p", "u:"):
        with pytest.raises(serving.ServingError):
            serving.parse_auth(bad)


def test_headers_host_check_and_no_active_files(running_app):
    page = httpx.get(running_app.url)
    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"
    rebound = httpx.get(running_app.url, headers={"Host": f"evil.example:{running_app.port}"})
    assert rebound.status_code == 400 and "nosniff" == rebound.headers["x-content-type-options"]
    running_app.outputs.mkdir(parents=True, exist_ok=True)
    planted = running_app.outputs / "planted.html"
    planted.write_text("<script>alert(document.cookie)</script>")
    served = httpx.get(f"{running_app.url}gradio_api/file={planted}")
    if served.status_code == 200:          # if Gradio serves it at all, it is a download, never a page
        assert served.headers["content-type"] == "application/octet-stream"
        assert served.headers["content-disposition"] == "attachment"
    planted.unlink()


def test_upload_limit(tmp_path_factory):
    app = RunningApp(tmp_path_factory.mktemp("limit"), extra_args=("--max-upload-mib", "1"))
    try:
        big = b"\0" * (2 * 1024 * 1024)
        answer = httpx.post(f"{app.url}gradio_api/upload", files={"files": ("big.png", big)}, timeout=60)
        assert answer.status_code == 413
        small = httpx.post(f"{app.url}gradio_api/upload", files={"files": ("small.png", b"\0" * 1000)}, timeout=60)
        assert small.status_code == 200
    finally:
        app.stop()


def test_login_required_when_set(tmp_path_factory):
    app = RunningApp(tmp_path_factory.mktemp("auth"), extra_args=("--auth", "ada:lovelace"))
    try:
        config = httpx.get(f"{app.url}config")
        assert config.status_code in (401, 403) or "auth_required" in config.text
        from gradio_client import Client

        client = Client(app.url, auth=("ada", "lovelace"), verbose=False)
        assert client.predict(api_name="/server_info")["torch_imported"] is False
        with pytest.raises(Exception):
            Client(app.url, auth=("ada", "wrong"), verbose=False)
    finally:
        app.stop()


def run_main(args, tmp_path, timeout=60):
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_no_unauthenticated_network_binding(tmp_path):
    done = run_main(["--model", "tiny", "--host", "0.0.0.0", "--port", str(free_port())], tmp_path)
    assert done.returncode == 2 and "--auth" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "logs").exists()          # refused before touching anything


def test_second_instance_on_a_busy_port_touches_nothing(running_app, tmp_path):
    running_app.outputs.mkdir(parents=True, exist_ok=True)
    # an in-progress temp file of the running instance's worker (a live process owns it)
    owner = running_app.proc.pid
    partial = running_app.outputs / f"{video.PARTIAL_PREFIX}{owner}-inprogress.mp4"
    partial.write_bytes(b"half a video")
    stale = running_app.outputs / f"{video.PARTIAL_PREFIX}999999999-dead.mp4"
    stale.write_bytes(b"left by a killed writer")
    env = dict(os.environ, I2V_OUTPUTS=str(running_app.outputs), I2V_LOGS=str(tmp_path / "logs"))
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--model", "tiny", "--port", str(running_app.port)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and f"port {running_app.port}" in done.stderr and "Traceback" not in done.stderr
    assert str(owner) in done.stderr or "another program" in done.stderr
    assert partial.exists() and stale.exists() and not (tmp_path / "logs").exists()
    assert time.monotonic() - started < 30
    assert video.remove_partials(running_app.outputs) == [stale] and partial.exists()
    partial.unlink()


def test_sigterm_to_an_idle_app_exits_promptly(tmp_path_factory):
    """Measured 1.6-1.7 s on an idle 2-core machine (target 2 s); the bound here leaves room for a loaded CI."""
    import signal

    app = RunningApp(tmp_path_factory.mktemp("sigterm"))
    try:
        client = app.client()
        deadline = time.monotonic() + 120
        while client.predict(api_name="/server_info")["workers"][0]["status"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        started = time.monotonic()
        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(30) == 0
        assert time.monotonic() - started < 5.0
    finally:
        app.stop()
