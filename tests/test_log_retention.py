"""Logs bounded for an app left running: oom.jsonl rotates past a (small, here) size keeping a few, app_*.log
keeps the newest few, and the OOM summary reads across the rotated files, newest first."""
from __future__ import annotations

import json
import os

from i2v import log_retention


def test_oom_log_rotates_past_its_size_and_keeps_a_few(tmp_path):
    path = tmp_path / "oom.jsonl"
    for index in range(41):        # the last one starts a fresh file
        with open(path, "a", encoding="utf-8") as handle:     # as the service writes it: opened per record
            handle.write(json.dumps({"time": f"t{index:02d}", "phase": "denoise", "outcome": "failed"}) + "\n")
        log_retention.rotate_if_larger(path, max_bytes=200, keep=2)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["oom.jsonl", "oom.jsonl.1", "oom.jsonl.2"]
    assert all(p.stat().st_size <= 200 + 100 for p in tmp_path.iterdir())   # one record past the limit at most
    newest = log_retention.recent_ooms(tmp_path, limit=6)
    assert [r["time"] for r in newest] == [f"t{i:02d}" for i in range(40, 34, -1)]   # across rotated files
    assert log_retention.oom_summary(tmp_path, limit=1) == ["t40 phase denoise -> failed"]
    assert not log_retention.rotate_if_larger(tmp_path / "missing.jsonl", max_bytes=1)


def test_only_the_newest_app_logs_are_kept_and_the_current_one_never_removed(tmp_path):
    for index in range(6):
        log = tmp_path / f"app_2026010{index}_000000.log"
        log.write_text("x")
        os.utime(log, (1000 + index, 1000 + index))
    current = tmp_path / "app_20260100_000000.log"        # the oldest by time, but being written now
    (tmp_path / "i2v.log").write_text("not an app log")
    removed = log_retention.keep_newest(tmp_path, keep=3, spare=current)
    assert sorted(p.name for p in removed) == ["app_20260101_000000.log", "app_20260102_000000.log"]
    assert sorted(p.name for p in tmp_path.glob("app_*.log")) == [
        "app_20260100_000000.log", "app_20260103_000000.log", "app_20260104_000000.log", "app_20260105_000000.log"]
    assert (tmp_path / "i2v.log").exists()


def test_library_warnings_go_to_the_log_file_not_the_terminal(tmp_path):
    """The CLI's logging: a library's Python warning (diffusers' deprecations) and a library logger's warning
    (transformers) reach logs/i2v.log only; our own warnings and anyone's errors still reach the terminal."""
    import subprocess
    import sys

    script = ("import logging, warnings\n"
              "from i2v.cli import setup_logging\n"
              "path = setup_logging()\n"
              "warnings.warn('I2VGenXLPipeline is deprecated', FutureWarning)\n"
              "logging.getLogger('transformers.models.clip').warning('use CLIPImageProcessor')\n"
              "logging.getLogger('i2v.runner').warning('ours to see')\n"
              "logging.getLogger('torchvision').error('a library error')\n"
              "print(path)\n")
    env = dict(__import__("os").environ, I2V_LOGS=str(tmp_path / "logs"), PYTHONWARNINGS="default")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "deprecated" not in done.stderr and "CLIPImageProcessor" not in done.stderr, done.stderr
    assert "ours to see" in done.stderr and "a library error" in done.stderr, done.stderr
    logged = (tmp_path / "logs" / "i2v.log").read_text()
    for line in ("I2VGenXLPipeline is deprecated", "use CLIPImageProcessor", "ours to see", "a library error"):
        assert line in logged, (line, logged)


def test_a_start_leaves_one_console_log_the_older_per_start_logs_go(tmp_path):
    """Issue 28: one log per run (logs/app.log, overwritten at each start, beside i2v.log), not app_*.log too."""
    for index in range(3):
        (tmp_path / f"app_2026010{index}_000000.log").write_text("old start")
    (tmp_path / log_retention.APP_LOG_NAME).write_text("this run")
    (tmp_path / "i2v.log").write_text("the run's log")
    log_retention.keep_newest(tmp_path)          # what start_app.sh does at each start
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log", "i2v.log"]
