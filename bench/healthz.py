"""Latency of GET /healthz while a job runs (goal: under 50 ms), against the same figure on an idle app.

Starts the app on the tiny model (its own port, logs and outputs in a temp folder), measures /healthz idle, then
submits a long generate job through gradio_client and, once /healthz says `busy`, measures it again while the
worker denoises (on CPU the worker and the server share the cores: the harder case). The app is stopped by PID.

Run: .venv/bin/python bench/healthz.py [--requests 200]. Writes bench/results/healthz.md.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine_line, md_table, median, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 50.0
START_TIMEOUT_S = 240


def wait_state(client, url: str, wanted: set[str], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            body = client.get(url, timeout=5).json()
            if body["state"] in wanted:
                return body
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"/healthz never said {wanted}")


def measure(port: int, count: int, must_be: str) -> tuple[list[float], list[float], int]:
    """Milliseconds per request (a fresh connection each, as a monitor's curl), the server's own share of each
    (its Server-Timing header), and how many answered must_be."""
    import http.client
    import json

    times, server, matching = [], [], 0
    for _ in range(count):
        began = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        body = json.loads(answer.read())
        times.append((time.perf_counter() - began) * 1000)
        connection.close()
        server.append(float(answer.getheader("server-timing", "app;dur=nan").split("dur=")[1]))
        matching += body["state"] == must_be
        time.sleep(0.01)
    return times, server, matching


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    import httpx
    from gradio_client import Client, handle_file
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="i2v-healthz-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, I2V_OUTPUTS=str(tmp / "outputs"), I2V_LOGS=str(tmp / "logs"))
    env.setdefault("I2V_SIMULATED_DEVICE", "cpu,32,24,32")
    app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--model", "tiny", "--port", str(port)],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        with httpx.Client() as client:
            wait_state(client, base + "healthz", {"ready"}, START_TIMEOUT_S)
            idle, idle_server, _ = measure(port, args.requests, "ready")
            image = tmp / "input.png"
            Image.new("RGB", (256, 256), (90, 40, 160)).save(image)
            job = Client(base, verbose=False).submit(
                image=handle_file(str(image)), prompt="a test", negative_prompt="", resolution=256, num_frames=8,
                fps=8, num_inference_steps=150, guidance_scale=5.0, seed=1, api_name="/generate")
            wait_state(client, base + "healthz", {"busy"}, 120)
            busy, busy_server, busy_count = measure(port, args.requests, "busy")
            job.cancel()
        for name, times, server, note in (("idle", idle, idle_server, ""),
                                          ("job running", busy, busy_server, f"{busy_count}/{len(busy)} said busy")):
            rows.append([name, len(times), f"{median(times):.1f}", f"{percentile(times, 0.95):.1f}",
                         f"{max(times):.1f}", f"{median(server):.2f}", f"{max(server):.2f}", note])
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()
    table = md_table(["app", "requests", "median ms", "p95 ms", "max ms", "server median ms",
                      "server max ms", "note"], rows)
    verdict = "met" if float(rows[1][3]) < GOAL_MS else "NOT met"
    text = (f"# /healthz latency\n\n{machine_line()}\n\nTiny model on this machine's CPU; each request a new "
            f"connection (as a monitor's curl). Goal: under {GOAL_MS:g} ms while a job runs (p95): {verdict}.\n\n"
            f"{table}\n")
    print(text)
    write_result("healthz.md", text)
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
