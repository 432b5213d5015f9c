"""Helpers shared by the bench scripts: repo import path, medians, Markdown tables, writing results."""
from __future__ import annotations

import os
import platform
import socket
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = Path(os.environ.get("I2V_BENCH_RESULTS", BENCH_DIR / "results"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a bench's own app)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def median(values) -> float:
    return statistics.median(values)


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    try:
        import torch

        torch_part = f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    except Exception:  # noqa: BLE001 - torch is optional for the pure-Python benchmarks
        torch_part = "torch not imported"
    try:
        load = "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        load = "load average unknown"
    return (f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {load}, Python {platform.python_version()}, "
            f"{torch_part}; measured {time.strftime('%Y-%m-%d %H:%M')}. Absolute CPU times are not comparable "
            "across machines (and this one may be shared): quote the ratios.")


def write_result(name: str, text: str, results_dir: Path | None = None) -> Path:
    """Write results_dir/name atomically (tmp + rename) and print the table."""
    folder = Path(results_dir or RESULTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    from i2v.files import write_text_atomic        # after the repo is on the import path

    path = write_text_atomic(folder / name, text.rstrip() + "\n")
    print(text)
    print(f"\nwrote {path}")
    return path
