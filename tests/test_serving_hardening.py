"""Serving hardening (issue 24), through the real app: login throttling, security headers on every answer (CORS
preflights and 500s too), request bodies limited as a whole, uploads only from the app's own origin, a restart
not blocked by a stopped app's connections, and the IPv6 loopback."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from i2v import serving
from tests.conftest import APP_START_TIMEOUT_S, ROOT, RunningApp, free_port, wait_for_http

MIB = 1024 * 1024
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN", "referrer-policy": "same-origin"}


def assert_secured(answer: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert answer.headers.get(name) == value, (answer.status_code, name, dict(answer.headers))
    assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]


def stored_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


class AppAt:
    """The tiny app on a chosen host and port (RunningApp picks its own port on 127.0.0.1), stdout to a file."""

    def __init__(self, tmp: Path, port: int, host: str = "127.0.0.1"):
        self.port, self.tmp = port, tmp
        self.url = f"http://{serving.url_host(host)}:{port}/"
        self.stdout = tmp / "stdout.txt"
        env = dict(os.environ, I2V_OUTPUTS=str(tmp / "outputs"), I2V_LOGS=str(tmp / "logs"))
        with open(self.stdout, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--model", "tiny", "--host", host,
                                          "--port", str(port)], env=env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT)
        try:
            wait_for_http(self.url, APP_START_TIMEOUT_S, self.proc)
        except BaseException:
            self.stop()
            raise

    stop = RunningApp.stop       # the same stop by PID


# --- pure parts -------------------------------------------------------------------------------------------
def test_host_forms():
    assert serving.bind_address("[::1]") == "::1" and serving.bind_address("::1") == "::1"
    assert serving.url_host("::1") == "[::1]" and serving.url_host("[::1]") == "[::1]"
    assert serving.url_host("127.0.0.1") == "127.0.0.1" and serving.url_host("localhost") == "localhost"


def test_same_origin_rule():
    headers = {b"host": b"127.0.0.1:7860"}
    assert serving.same_origin("http://127.0.0.1:7860", headers)
    assert not serving.same_origin("http://evil.example", headers)
    assert not serving.same_origin("http://127.0.0.1:7861", headers)
    assert not serving.same_origin("null", headers)
    assert serving.same_origin("https://app.example", {b"host": b"10.0.0.5:7860", b"x-forwarded-host": b"app.example"})


def test_login_backoff_schedule_and_reset():
    now = [100.0]
    throttle = serving.LoginThrottle(clock=lambda: now[0])
    assert [serving.login_wait_s(n) for n in range(1, 8)] == [0, 0, 0, 1, 2, 4, 8]
    assert serving.login_wait_s(50) == serving.LOGIN_MAX_WAIT_S
    for _ in range(3):
        assert throttle.begin("10.0.0.9") == 0
        throttle.finish("10.0.0.9", 400)
    assert throttle.begin("10.0.0.9") == 0
    assert throttle.begin("10.0.0.9") > 0            # one password check at a time per client
    throttle.finish("10.0.0.9", 400)                  # the 4th failure: a 1 s window
    assert throttle.begin("10.0.0.9") == pytest.approx(1.0)
    assert throttle.begin("10.0.0.10") == 0           # another client is not affected
    throttle.finish("10.0.0.10", 200)
    now[0] += 1.01
    assert throttle.begin("10.0.0.9") == 0
    throttle.finish("10.0.0.9", 200)                  # success resets
    assert throttle.begin("10.0.0.9") == 0
    throttle.finish("10.0.0.9", 400)
    assert throttle.begin("10.0.0.9") == 0            # one failure after a reset: no window


def test_a_request_that_bypassed_the_guard_is_refused():
    """If the outer guard were ever not installed, the app refuses instead of serving unguarded."""
    sent = []

    async def app(scope, receive, send):
        raise AssertionError("reached the app")

    async def send(message):
        sent.append(message)

    asyncio.run(serving.RequireGuard(app)({"type": "http", "path": "/", "headers": []}, None, send))
    assert sent[0]["status"] == 503


def test_port_in_use_counts_listeners_only():
    """A listener makes the port busy; connections a closed server left in FIN-WAIT-2 don't (they did: the
    probe bound without SO_REUSEADDR, so a restarted app refused to start for a minute)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        accepted, _ = listener.accept()
        assert serving.port_in_use("127.0.0.1", port)
        accepted.close()                 # the server closes first; the client keeps its end open
        listener.close()
        with socket.socket() as plain:   # what the old probe did: refused although nothing listens
            with pytest.raises(OSError):
                plain.bind(("127.0.0.1", port))
        assert not serving.port_in_use("127.0.0.1", port)
    finally:
        client.close()


# --- uploads, headers on every answer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limited")
    app = RunningApp(tmp, extra_env={"GRADIO_TEMP_DIR": str(tmp / "gradio")}, extra_args=("--max-upload-mib", "2"))
    app.uploads = tmp / "gradio"
    yield app
    app.stop()


def multipart(files: list[tuple[str, bytes]], boundary: str = "i2vtestboundary") -> tuple[bytes, str]:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_upload_limit_applies_to_the_whole_request(limited_app):
    """Three files, each under the 2 MiB limit, 4.5 MiB together: refused, and nothing is stored; also when
    the body is streamed without a Content-Length."""
    upload = f"{limited_app.url}gradio_api/upload"
    three = [(f"part{i}.png", bytes([i]) * (3 * MIB // 2)) for i in range(3)]
    before = stored_bytes(limited_app.uploads)
    answer = httpx.post(upload, files=[("files", f) for f in three], timeout=120)
    assert answer.status_code == 413 and "MiB" in answer.text
    assert_secured(answer)
    body, content_type = multipart(three)

    def chunks():
        for start in range(0, len(body), 256 * 1024):
            yield body[start:start + 256 * 1024]

    streamed = httpx.post(upload, content=chunks(), headers={"content-type": content_type}, timeout=120)
    assert streamed.status_code == 413
    assert stored_bytes(limited_app.uploads) == before     # no partial file left behind either
    one = httpx.post(upload, files={"files": three[0]}, timeout=120)
    assert one.status_code == 200 and stored_bytes(limited_app.uploads) == before + len(three[0][1])


def test_uploads_only_from_the_apps_own_origin(limited_app):
    upload = f"{limited_app.url}gradio_api/upload"
    own = limited_app.url.rstrip("/")
    before = stored_bytes(limited_app.uploads)
    for origin in ("http://evil.example", "null", f"http://localhost:{limited_app.port + 1}"):
        refused = httpx.post(upload, files={"files": ("a.png", b"x" * 1000)}, headers={"Origin": origin})
        assert refused.status_code == 403, origin
        assert_secured(refused)
    assert stored_bytes(limited_app.uploads) == before
    same = httpx.post(upload, files={"files": ("b.png", b"y" * 1000)}, headers={"Origin": own})
    no_origin = httpx.post(upload, files={"files": ("c.png", b"z" * 1000)})   # gradio_client, curl
    assert same.status_code == 200 and no_origin.status_code == 200


def test_security_headers_on_cors_preflights_and_server_errors(limited_app):
    for origin in (limited_app.url.rstrip("/"), "http://evil.example"):
        preflight = httpx.options(f"{limited_app.url}gradio_api/upload",
                                  headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200 and "access-control-allow-methods" in preflight.headers
        assert_secured(preflight)
    # A genuine unhandled error in Gradio: its component server reads a multipart form without the fields it
    # expects (KeyError) -> Starlette's error handler answers 500.
    broken = httpx.post(f"{limited_app.url}gradio_api/component_server", files={"fn_name": (None, "x")})
    assert broken.status_code == 500
    assert_secured(broken)
    assert "Traceback" not in broken.text and "component_id" not in broken.text and "KeyError" not in broken.text


# --- login throttling -----------------------------------------------------------------------------------------
def test_failed_logins_are_throttled_per_client(tmp_path_factory):
    app = RunningApp(tmp_path_factory.mktemp("throttle"), extra_args=("--auth", "ada:lovelace"))
    login = f"{app.url}login"
    try:
        with httpx.Client(timeout=30) as http:
            for attempt in range(1, 4):                         # the first three: answered, no delay
                wrong = http.post(login, data={"username": "ada", "password": f"guess-q7z-{attempt}"})
                assert wrong.status_code == 400
            refused = None
            for attempt in range(4, 12):      # the 4th failure opens a 1 s window, each further one doubles it
                wrong = http.post(login, data={"username": "ada", "password": f"guess-q7z-{attempt}"})
                if wrong.status_code == 429:
                    refused = wrong
                    break
                assert wrong.status_code == 400
            assert refused is not None, "never refused"
            retry_after = int(refused.headers["retry-after"])
            assert 1 <= retry_after <= serving.LOGIN_MAX_WAIT_S
            assert_secured(refused)
            deadline = time.monotonic() + 2 * serving.LOGIN_MAX_WAIT_S + 30
            while True:                                          # the right password, once the window is over
                right = http.post(login, data={"username": "ada", "password": "lovelace"})
                if right.status_code != 429:
                    break
                assert time.monotonic() < deadline
                time.sleep(int(right.headers["retry-after"]))   # as the server asks
            assert right.status_code == 200 and right.json() == {"success": True}
            wrong = http.post(login, data={"username": "ada", "password": "guess-q7z-after"})
            assert wrong.status_code == 400                     # the success reset the count
        log_text = (app.logs / "i2v.log").read_text(encoding="utf-8")
        assert "failed login from 127.0.0.1 (4 in a row); further attempts refused for 1 s" in log_text
        assert "WARNING" in log_text and "guess-q7z" not in log_text and "lovelace" not in log_text
    finally:
        app.stop()


# --- the port and the address ---------------------------------------------------------------------------------
def test_restart_with_open_keep_alive_connections_starts_at_once(tmp_path_factory):
    port = free_port()
    first = AppAt(tmp_path_factory.mktemp("restart1"), port)
    held = []
    try:
        for _ in range(3):                     # browser tabs: idle keep-alive connections
            conn = socket.create_connection(("127.0.0.1", port), timeout=30)
            conn.sendall(f"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += conn.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200")
            held.append(conn)
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(30) == 0
        lingering = [c for c in psutil.net_connections(kind="tcp")
                     if c.laddr and c.laddr.port == port and c.status != psutil.CONN_LISTEN]
        assert lingering, "the stopped app left no connections behind: this test would prove nothing"
        second = AppAt(tmp_path_factory.mktemp("restart2"), port)   # fails (exit 3) if the port looks busy
        try:
            assert httpx.get(second.url).status_code == 200
        finally:
            second.stop()
    finally:
        for conn in held:
            conn.close()
        first.stop()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_loopback(tmp_path_factory, host):
    app = AppAt(tmp_path_factory.mktemp("ipv6"), free_port(), host)
    try:
        page = httpx.get(app.url)
        assert page.status_code == 200
        assert_secured(page)
        assert httpx.get(app.url, headers={"Host": f"evil.example:{app.port}"}).status_code == 400
        expected = f"serving on http://[::1]:{app.port}"
        deadline = time.monotonic() + 60
        while expected not in app.stdout.read_text(errors="replace"):   # printed just after the server starts
            assert time.monotonic() < deadline and app.proc.poll() is None
            time.sleep(0.2)
        assert "Traceback" not in app.stdout.read_text(errors="replace")
    finally:
        app.stop()


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_bind_with_the_port_taken_on_ipv4_exits_with_a_message(tmp_path):
    """Gradio probes 127.0.0.1 whatever the host: a program there on the same port is reported, no traceback."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--model", "tiny", "--host", "::1", "--port",
                               str(port)], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=APP_START_TIMEOUT_S)
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"port {port}" in done.stderr and "Traceback" not in done.stderr and "GRADIO" not in done.stderr
