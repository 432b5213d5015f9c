"""Chunked denoise peaks traced on demand at the exact shape a plan runs, cached on disk (torch side).

The chunked UNet's peak steps with how many frames or rows fit a chunk, so interpolating the profile's few
chunked points is off by up to -14 % / +9 %; a meta trace at the exact shape is exact and takes seconds
(a minute at 1024x1024x32). `attach(model)` gives a MemoryModel whose chunked tables are traced on first use
and kept in a JSON cache (one file per traced model: configs hash); i2v.core.memory stays stdlib-only and
calls the tracer through MemoryModel.tracer. torch and diffusers are imported inside functions.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

from i2v.core.memory import CHUNK_TABLE, MemoryModel, with_tracer

TABLE = re.compile(CHUNK_TABLE.pattern + r"(_split)?")
CFG_BATCH = 2                 # the traced chunked tables are CFG steps (split: two batch-1 calls)


def configs_key(configs: dict[str, dict] | None) -> str:
    """A short name for the traced model: 'full-size' (configs/model) or a hash of its configs."""
    if configs is None:
        return "full-size"
    text = json.dumps(configs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_table(name: str) -> tuple[int, bool]:
    """(chunk budget, cfg split) of a chunked table name, e.g. denoise_cfg_chunk4096_split -> (4096, True)."""
    match = TABLE.fullmatch(name)
    if not match:
        raise ValueError(f"not a chunked denoise table: {name!r}")
    return int(match.group(1)), bool(match.group(2))


class ChunkTracer:
    """Callable (dtype, table, width, height, frames) -> peak bytes: a meta trace of the I2VGen-XL UNet under
    that table's plan, remembered in `cache` (a JSON file) so each shape is traced once."""

    def __init__(self, cache: Path | None = None, configs: dict[str, dict] | None = None):
        self.configs = configs
        self.cache = Path(cache) if cache else None
        self.points: dict[str, int] = {}
        self.models: dict[str, Any] = {}
        self.traced = 0
        self.lock = threading.Lock()
        if self.cache is not None and self.cache.is_file():
            self.points = {k: int(v) for k, v in json.loads(self.cache.read_text(encoding="utf-8")).items()}

    @staticmethod
    def key(dtype: str, table: str, width: int, height: int, frames: int) -> str:
        return f"{dtype}/{table}/{width}x{height}x{frames}"

    def __call__(self, dtype: str, table: str, width: int, height: int, frames: int) -> int:
        key = self.key(dtype, table, width, height, frames)
        with self.lock:
            if key not in self.points:
                self.points[key] = self.trace(dtype, table, width, height, frames)
                self.traced += 1
                self.save()
            return self.points[key]

    def trace(self, dtype: str, table: str, width: int, height: int, frames: int) -> int:
        from i2v import profile

        budget, split = parse_table(table)
        if dtype not in self.models:
            self.models[dtype] = profile.build_meta_model(dtype, configs=self.configs)
        peak, _ = profile.trace_unet_step(self.models[dtype], width, height, frames, CFG_BATCH,
                                          cfg_split=split, chunk_tokens=budget)
        return int(peak)

    def save(self) -> None:
        if self.cache is None:
            return
        from i2v.files import write_json_atomic

        write_json_atomic(self.cache, dict(sorted(self.points.items())), indent=0)


def default_cache(configs: dict[str, dict] | None = None) -> Path:
    """Where traced points are kept: with the traced profiles (logs/memory_profiles/, i2v.profiles)."""
    from i2v.profiles import cache_dir

    return cache_dir() / f"chunk-points-{configs_key(configs)}.json"


def attach(model: MemoryModel, cache: Path | None = None, configs: dict[str, dict] | None = None) -> MemoryModel:
    """The memory model with chunked tables traced at exact shapes on demand (cached in `cache`)."""
    return with_tracer(model, ChunkTracer(cache or default_cache(configs), configs))


def chunk_tables(budgets) -> list[str]:
    """The chunked denoise tables of these budgets (with and without CFG split)."""
    return [f"denoise_cfg_chunk{budget}{split}" for budget in budgets for split in ("", "_split")]


def main(argv=None) -> int:
    """`python -m i2v.profile_points --cache OUT.json --dtype D --shape W H F --budgets B [B ...]
    [--configs IN.json]`: trace a shape's chunked tables into the cache (what i2v/profiles.py runs in a
    subprocess for the web server, which never imports torch). IN.json: {"components": {...}} of the model,
    absent for the full-size I2VGen-XL."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m i2v.profile_points")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--dtype", required=True)
    parser.add_argument("--shape", type=int, nargs=3, required=True, metavar=("WIDTH", "HEIGHT", "FRAMES"))
    parser.add_argument("--budgets", type=int, nargs="+", required=True)
    parser.add_argument("--configs", type=Path, default=None)
    args = parser.parse_args(argv)
    configs = json.loads(args.configs.read_text(encoding="utf-8"))["components"] if args.configs else None
    tracer = ChunkTracer(args.cache, configs)
    for table in chunk_tables(args.budgets):
        tracer(args.dtype, table, *args.shape)
    print(f"traced {tracer.traced} of {len(args.budgets) * 2} tables at {'x'.join(map(str, args.shape))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
