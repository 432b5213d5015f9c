"""The Wan technique bench (bench/techniques_wan.py, also `techniques.py --family wan2.2-ti2v-5b`) runs in its
smallest mode and writes a well-formed table whose chunked outputs equal the plain ones. No assertion on the
time ratios: the machine is shared and loaded (the measured figures are in bench/results/techniques_wan.md)."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import techniques  # noqa: E402
import techniques_wan  # noqa: E402

HEADER = ("| case | technique | chunks | median wall s | wall ratio | per-round wall ratios | CPU-time ratio | "
          "per-round CPU-time ratios | blocks-only CPU-time ratio | target <= 1.1 (CPU time) | "
          "max abs diff to plain | GPU |")


def test_budgets_split_the_sequence_into_2_4_8_chunks():
    assert techniques_wan.budget_variants(1125) == [
        ("plain", 0), ("chunked 563 tokens (2 chunks)", 563), ("chunked 282 tokens (4 chunks)", 282),
        ("chunked 141 tokens (8 chunks)", 141)]
    assert [b for _, b in techniques_wan.budget_variants(3)] == [0, 2, 1]    # duplicates and no-ops dropped


def test_check_flags_a_differing_output_and_a_variant_that_never_chunked():
    case = techniques_wan.Case("c", 8, [("plain", 0), ("chunked 4", 4)])
    assert techniques_wan.check(case) == ["c: chunked 4 never ran a chunked block"]
    case.chunked_calls["chunked 4"] = 2
    case.max_diff["chunked 4"] = 1e-3
    assert techniques_wan.check(case) == ["c: chunked 4 differs from plain by 0.001"]


def test_smallest_bench_writes_the_table_and_outputs_are_equal(tmp_path):
    started = time.perf_counter()
    rc = techniques.main(["--family", "wan2.2-ti2v-5b", "--rounds", "1", "--full-rounds", "1",
                          "--full-size", "64x64x5", "--results-dir", str(tmp_path)])
    elapsed = time.perf_counter() - started
    assert rc == 0
    text = (tmp_path / techniques_wan.RESULT_FILE).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Time cost of Wan 2.2 TI2V-5B's exact token chunking"
    assert lines[2].startswith("Machine: ") and "load average" in lines[2]
    assert "1 of the 30 blocks" in text
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == HEADER and table[1] == "|" + "|".join(["---"] + ["---:"] * 11) + "|"
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    # tiny: 256x256x9 = 192 tokens; full size: 64x64x5 = 2 latent frames x 2 x 2 = 8 tokens; plain + 3 budgets
    assert [(r[0].split(",")[0], r[1].split(" (")[0], r[2]) for r in rows] == [
        ("tiny Wan pipeline 256x256x9", "plain", "1"), ("tiny Wan pipeline 256x256x9", "chunked 96 tokens", "2"),
        ("tiny Wan pipeline 256x256x9", "chunked 48 tokens", "4"),
        ("tiny Wan pipeline 256x256x9", "chunked 24 tokens", "8"),
        ("full-size transformer fp32", "plain", "1"), ("full-size transformer fp32", "chunked 4 tokens", "2"),
        ("full-size transformer fp32", "chunked 2 tokens", "4"), ("full-size transformer fp32", "chunked 1 tokens", "8")]
    for row in rows:
        assert len(row) == 12
        assert float(row[3]) > 0
        for ratio, spread in ((row[4], row[5]), (row[6], row[7])):   # wall, then CPU time
            assert re.fullmatch(r"\d+\.\d{3}", ratio)
            low, high = (float(x) for x in spread.split("-"))         # 1 round: min = max = the median ratio
            assert low == high == pytest.approx(float(ratio), abs=0.006)
        assert float(row[10]) <= techniques_wan.EXACT_TOLERANCE      # chunked output == plain output
        if row[1] == "plain":
            assert row[4] == row[6] == "1.000" and row[9] == "—"
        else:
            assert row[9] in ("meets", "MISSES")
    assert all(r[8] == "—" for r in rows[:4]) and all(re.fullmatch(r"\d+\.\d{3}", r[8]) for r in rows[4:])
    assert "Outputs equal to plain: yes" in text
    print(f"smallest Wan bench: {elapsed:.1f} s")
