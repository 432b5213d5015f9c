"""Shared fixtures: a tiny model loaded once, sample images, and a running app on a free port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_START_TIMEOUT_S = 180   # a bound, not a wait: a busy 2-core CI machine (a test beside a CPU hog) needs it
# A fixed simulated device for the whole suite and every process it starts (kind, total, free, host RAM in
# GiB): no assertion may depend on this machine's free memory or load.
SIMULATED_DEVICE = "cpu,32,24,32"
os.environ.setdefault("I2V_SIMULATED_DEVICE", SIMULATED_DEVICE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_image(path: Path, width: int = 320, height: int = 240) -> Path:
    from PIL import Image

    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height)[:, None]
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def sample_image(tmp_path_factory) -> Path:
    return make_image(tmp_path_factory.mktemp("img") / "input.png")


@pytest.fixture(scope="session")
def tiny_runner():
    """One loaded tiny pipeline for all in-process tests (loading costs seconds)."""
    from i2v.runner import LocalRunner

    runner = LocalRunner("tiny")
    runner.load()
    return runner


@pytest.fixture()
def tiny_service(tiny_runner, tmp_path):
    from i2v.service import GenerationService

    return GenerationService(tiny_runner, tmp_path / "outputs")


def wait_for_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"app exited early with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


class RunningApp:
    def __init__(self, tmp: Path, extra_env: dict | None = None, extra_args: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.outputs = tmp / "outputs"
        self.logs = tmp / "logs"
        env = dict(os.environ, I2V_OUTPUTS=str(self.outputs), I2V_LOGS=str(self.logs), **(extra_env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--model", "tiny", "--port", str(self.port), *extra_args],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_http(self.url, APP_START_TIMEOUT_S, self.proc)

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def app_fixture(name: str, **kwargs):
    """A module-scoped fixture running the tiny app in its own folder (RunningApp's arguments), stopped by PID."""
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        app = RunningApp(tmp_path_factory.mktemp(name), **kwargs)
        yield app
        app.stop()

    return fixture


running_app = app_fixture("app")
