"""The GPU truth kit (bench/gpu_truth.py) cannot rot: its --dry-run (the same code path on the CPU, tiny models,
simulated caps) runs here, and its verdict function keeps the -5 %/+15 % band."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_truth  # noqa: E402


def test_verdict_band():
    assert gpu_truth.verdict(100, 100) == (True, 0.0)
    ok, error = gpu_truth.verdict(115, 100)
    assert ok and error == pytest.approx(0.15)
    assert gpu_truth.verdict(116, 100)[0] is False           # more than 15 % over: wasted headroom
    assert gpu_truth.verdict(95, 100)[0] is True
    ok, error = gpu_truth.verdict(94, 100)                   # more than 5 % under: an OOM waiting to happen
    assert ok is False and error == pytest.approx(-0.06)
    with pytest.raises(ValueError):
        gpu_truth.verdict(1, 0)


def test_every_headline_claim_is_listed():
    assert {(c.family, c.label, c.card_gib, c.free_gib) for c in gpu_truth.CLAIMS} == {
        ("i2vgen-xl", "1024x1024x32", 8, 7.3), ("i2vgen-xl", "1280x704x16", 6, 5.4),
        ("i2vgen-xl", "512x512x16", 4, 3.5), ("wan2.2-ti2v-5b", "1280x704x121", 12, 11.2),
        ("wan2.2-ti2v-5b", "832x480x81", 8, 7.3), ("ltx-video", "768x512x121", 6, 5.4)}


def _table(text: str, heading: str) -> list[list[str]]:
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_dry_run_writes_the_results_file(tmp_path):
    out, logs = tmp_path / "results", tmp_path / "logs"
    report = tmp_path / "truth.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_truth.py"), "--dry-run", "--out", str(out),
                           "--logs", str(logs), "--json", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = (out / gpu_truth.RESULT_NAME).read_text(encoding="utf-8")
    assert "not measured on a GPU" in text and "DRY RUN" in text
    for heading in ("Headline claims", "Per phase", "OOM drill", "Measured terms", "Speed", "Calibration"):
        assert f"## {heading}" in text

    claims = _table(text, "Headline claims")
    seen = {(row[1], row[3]) for row in claims}
    for claim in gpu_truth.CLAIMS:            # each claim at the card's size and at what it has free
        assert {(claim.label, f"{claim.card_gib:g}"), (claim.label, f"{claim.free_gib:g}")} <= seen
    for row in claims:
        predicted, cap = float(row[5]), float(row[3])
        assert 0 < predicted <= cap and row[7] == "yes"       # the engine's plan fits the cap by prediction
        assert float(row[8]) > 0 and row[11].startswith("dry run")   # a figure, labelled, never a GPU one
        assert row[4].startswith("offload=")
    phases = _table(text, "Per phase")
    assert {row[3] for row in phases} >= {"text_encode", "denoise", "decode"}

    drill = text.split("## OOM drill\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"OOMs: [1-9]", drill) and "recovered: yes" in drill
    records = [json.loads(line) for line in (logs / "oom.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records and records[0]["phase"] in ("denoise", "decode") and "out of memory" in records[0]["error"]
    assert records[-1]["outcome"] == "recovered"

    speed = {row[0]: row for row in _table(text, "Speed (seconds per denoise step, ratio to plain)")}
    assert set(speed) == set(gpu_truth.SPEED_PLANS) and speed["plain"][2] == "1.00"
    assert "not written (dry run)" in text.split("## Calibration\n", 1)[1]
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert figures["drill"]["recovered"] is True and not figures["failures"]
