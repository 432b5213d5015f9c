"""Start-up time of the app: seconds from launching `python main.py --model tiny --port <free>` to the first
HTTP 200 on / (the page is usable) and to "model ready" (the gradio API endpoint `server_info` reports
workers[0]["status"] == "ready"). Target: page under 5 s. Several runs, medians.

Every process this script starts is stopped by its PID (SIGTERM, wait, SIGKILL), its children included.
Run: .venv/bin/python bench/startup.py [--runs 5]. Writes bench/results/startup.md.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine_line, md_table, median, write_result  # noqa: E402

TARGET_PAGE_S = 5.0
TIMEOUT_S = 120.0
POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_executable() -> str:
    return os.environ.get("I2V_PYTHON") or sys.executable


def page_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the app, wait, SIGKILL; then any of its children that outlived it (by PID)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for child in children:
        try:
            child.wait(5)
        except psutil.TimeoutExpired:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def one_run() -> dict:
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [python_executable(), "main.py", "--model", "tiny", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = started + TIMEOUT_S
        while not page_ok(url):
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {proc.returncode} before serving {url}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no HTTP 200 on {url} within {TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        page_s = time.perf_counter() - started
        client = Client(url, verbose=False)
        status = ""
        while True:
            info = client.predict(api_name="/server_info")
            status = (info.get("workers") or [{}])[0].get("status", "")
            if status == "ready":
                break
            if status == "failed" or time.perf_counter() > deadline:
                raise RuntimeError(f"model not ready (status {status!r})")
            time.sleep(POLL_S)
        ready_s = time.perf_counter() - started
        return {"page_s": page_s, "ready_s": ready_s, "cuda_in_server": info.get("cuda_initialized"),
                "torch_in_server": info.get("torch_imported")}
    finally:
        stop(proc)


def import_floor(repeat: int = 3) -> dict:
    """Median seconds of a bare interpreter start and of importing the web side (i2v.cli + i2v.ui -> gradio):
    the part of the page time spent before the app does anything of its own."""
    figures = {}
    for label, code in (("python -c pass", "pass"), ("python -c 'import i2v.cli, i2v.ui'", "import i2v.cli, i2v.ui")):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run([python_executable(), "-c", code], cwd=ROOT, check=True)
            times.append(time.perf_counter() - started)
        figures[label] = median(times)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    runs = []
    for index in range(args.runs):
        runs.append(one_run())
        print(f"run {index + 1}/{args.runs}: page {runs[-1]['page_s']:.2f} s, model ready {runs[-1]['ready_s']:.2f} s",
              flush=True)
    floor = import_floor()
    page, ready = median([r["page_s"] for r in runs]), median([r["ready_s"] for r in runs])
    verdict = "meets" if page < TARGET_PAGE_S else "MISSES"
    rows = [[i + 1, f"{r['page_s']:.2f}", f"{r['ready_s']:.2f}"] for i, r in enumerate(runs)]
    rows.append(["**median**", f"**{page:.2f}**", f"**{ready:.2f}**"])
    text = "\n".join([
        "# Start-up time (`python main.py --model tiny --port <free>`)", "",
        machine_line(), "",
        "From `Popen` to the first HTTP 200 on `/` (page), and to the `server_info` API endpoint reporting "
        "`workers[0][\"status\"] == \"ready\"` (the worker process has loaded the tiny model). Polled every "
        f"{POLL_S * 1e3:.0f} ms; the gradio_client connection is made after the page is up, so its own set-up "
        "is inside the 'model ready' figure.", "",
        md_table(["run", "page s", "model ready s"], rows), "",
        f"**Page: median {page:.2f} s** (target < {TARGET_PAGE_S:.0f} s: {verdict}); "
        f"**model ready: median {ready:.2f} s**. "
        f"Web server process imported torch: {runs[-1]['torch_in_server']}; initialised CUDA: "
        f"{runs[-1]['cuda_in_server']}.", "",
        "Reference, same machine, same minutes (median of 3): "
        + "; ".join(f"`{k}` {v:.2f} s" for k, v in floor.items())
        + ". The page cannot come up before the web side is imported; the rest is building the Blocks, "
        "`launch()`, and sharing the CPU with the worker process, which starts at once and imports torch + "
        "diffusers to load the model.",
    ])
    write_result("startup.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
