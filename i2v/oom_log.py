"""logs/oom.jsonl: one line per out-of-memory attempt of a job (time, phase, request, memory before and after,
what was tried next or suggested, the outcome), so a user or a bug report can see what ran out and when."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

OOM_LOG_NAME = "oom.jsonl"


def append(logs_dir: Path | None, attempts: list[dict], outcome: str, suggestion: dict | None = None) -> None:
    """Append each OOM of a job; the last attempt carries the outcome (and the suggestion when it failed)."""
    if logs_dir is None:
        return
    logs_dir = Path(logs_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    with open(logs_dir / OOM_LOG_NAME, "a", encoding="utf-8") as handle:
        for index, attempt in enumerate(attempts):
            last = index == len(attempts) - 1
            record = {
                "time": datetime.now().isoformat(timespec="seconds"), "phase": attempt.get("phase"),
                "attempt": attempt.get("attempt"), "request": attempt.get("request"),
                "error": attempt.get("error"), "memory_before": attempt.get("memory_before"),
                "memory_after": attempt.get("memory_after"),
                "suggestion": suggestion if last else attempt.get("fallback"),
                "outcome": outcome if last else f"retried with: {attempt.get('fallback')}",
            }
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
