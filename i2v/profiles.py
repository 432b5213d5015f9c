"""Which memory profile describes the model that runs: its family, its configs, their hash, and the traced
profile for it.

Each family (i2v/models) has a committed full-size profile (I2VGen-XL: configs/memory_profile.json; Wan 2.2:
configs/models/wan2.2-ti2v-5b/memory_profile.json), recognised by the hash of its full-size configs and never
re-traced. Any other model (a tiny variant, a diffusers folder with other dimensions) is traced from its own
component configs by `python -m i2v.profile` in a subprocess (this module, like the web server, never imports
torch) and the result is kept by the configs' hash: committed ones in configs/profiles/ (the tiny variants'),
others in logs/memory_profiles/. A model whose configs are not on disk (a Hub repo not downloaded yet) gets its
family's full-size profile, and the answer says so.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from i2v.configs import read_json
from i2v.models import DEFAULT_FAMILY, Family, by_name
from i2v.paths import PROJECT_ROOT, configs_dir, logs_dir

log = logging.getLogger(__name__)

COMPONENTS = DEFAULT_FAMILY.components   # I2VGen-XL's; a family's own: Family.components
# What decides a component's size, with the library's default for a key a config leaves out: the hash is taken
# over these only, so a config written by another library version (extra or missing bookkeeping keys) of the
# same model finds the same profile. The tracer itself builds from the whole config.
ARCH_KEYS: dict[str, dict[str, Any]] = {
    "unet": {"in_channels": 4, "out_channels": 4,
             "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D",
                                  "DownBlock3D"],
             "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
             "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "norm_num_groups": 32,
             "cross_attention_dim": 1024, "attention_head_dim": 64, "num_attention_heads": None},
    "vae": {"in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"],
            "up_block_types": ["UpDecoderBlock2D"], "block_out_channels": [64], "layers_per_block": 1,
            "act_fn": "silu", "latent_channels": 4, "norm_num_groups": 32, "use_quant_conv": True,
            "use_post_quant_conv": True, "mid_block_add_attention": True},
    "text_encoder": {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "projection_dim": 512,
                     "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77,
                     "hidden_act": "quick_gelu"},
    "image_encoder": {"hidden_size": 768, "intermediate_size": 3072, "projection_dim": 512,
                      "num_hidden_layers": 12, "num_attention_heads": 12, "hidden_act": "quick_gelu",
                      "image_size": 224, "patch_size": 32, "num_channels": 3},
}
COMMITTED_DIR_NAME = "profiles"          # configs/profiles/<hash>-<dtype>.json: traced profiles kept in git
CACHE_DIR_NAME = "memory_profiles"       # logs/memory_profiles/<hash>-<dtype>.json: traced here
TRACE_TIMEOUT_S = 3600.0                 # a full-size grid takes minutes; a small model's seconds

# Where the figures came from (the "profile" field of ModelProfile.info()).
FULL_SIZE, COMMITTED, CACHED, TRACED, FALLBACK = "full-size", "committed", "cached", "traced", "full-size fallback"

TRACES = 0                               # traces started by this process (tests check the cache is used)
_trace_lock = threading.Lock()


# Keys of a config that are bookkeeping, not architecture (a family without ARCH_KEYS hashes the rest).
BOOKKEEPING = ("_class_name", "_diffusers_version", "_name_or_path", "architectures", "transformers_version",
               "torch_dtype", "dtype", "use_cache", "_commit_hash")


def architecture(name: str, config: dict[str, Any], family: Family = DEFAULT_FAMILY) -> dict[str, Any]:
    """The keys of a component's config that decide its size, defaults filled in (JSON types: lists)."""
    if family is DEFAULT_FAMILY:
        keys = ARCH_KEYS[name]
        return json.loads(json.dumps({key: config.get(key, default) for key, default in keys.items()}))
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in BOOKKEEPING}))


def config_hash(components: dict[str, dict], family: Family = DEFAULT_FAMILY) -> str:
    """Hash of the components' architectures: which profile describes them (the family's name is part of it
    for every family but the first, whose hashes predate families)."""
    data: dict[str, Any] = {name: architecture(name, components[name], family) for name in family.components}
    if family is not DEFAULT_FAMILY:
        data["family"] = family.name
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def full_size_configs(family: Family = DEFAULT_FAMILY) -> dict[str, dict]:
    """A family's full-size configs (I2VGen-XL: configs/model/*.json), its committed profile's source."""
    return family.full_size_configs()


def full_size_hash(family: Family = DEFAULT_FAMILY) -> str:
    return config_hash(full_size_configs(family), family)


@dataclass(frozen=True)
class ModelSource:
    """The model whose figures are wanted: its kind (full / tiny / local / hub), name, and configs (None when
    they are not on disk); note says why the full-size figures stand in, when they do."""
    kind: str
    name: str
    components: dict[str, dict] | None = field(default=None, compare=False)
    note: str | None = None
    family: str = DEFAULT_FAMILY.name
    unavailable: str | None = field(default=None, compare=False)   # why it cannot be loaded here, if it cannot

    @property
    def family_record(self) -> Family:
        return by_name(self.family)

    @property
    def hash(self) -> str | None:
        return config_hash(self.components, self.family_record) if self.components is not None else None


def full_size_source(note: str | None = None, family: Family = DEFAULT_FAMILY) -> ModelSource:
    return ModelSource("full", family.repo_id, full_size_configs(family), note, family.name)


def _fallback_note(family: Family) -> str:
    return f"figures of the full-size {family.title}"


def folder_configs(folder: Path, family: Family = DEFAULT_FAMILY) -> dict[str, dict] | None:
    """A diffusers folder's component configs (<component>/config.json), or None when one is missing."""
    found = {}
    for name in family.components:
        path = Path(folder) / name / "config.json"
        if not path.is_file():
            return None
        found[name] = read_json(path)
    return found


def source_for(kind: str, name: str, family: str | None = None) -> ModelSource:
    """The source of a chosen or loaded model (i2v.pipeline.ModelChoice's kind, source and family; a tiny
    variant's name says its family)."""
    record = by_name(family or (name if kind == "tiny" else None))
    if kind == "tiny":
        return ModelSource("tiny", record.tiny_alias, record.tiny_configs(), family=record.name)
    if kind == "local":
        components = folder_configs(Path(name), record)
        if components is not None:
            return ModelSource("local", name, components, family=record.name)
        return ModelSource("local", name, None, f"{name} lacks a component's config.json: "
                                                 + _fallback_note(record), record.name)
    if kind == "hub":                       # loaded from the Hub: its snapshot is in the local cache now
        from i2v.model_source import _cached_snapshot

        snapshot = _cached_snapshot(name)
        if snapshot and folder_configs(Path(snapshot), record) is not None:
            return ModelSource("local", name, folder_configs(Path(snapshot), record), family=record.name)
    return ModelSource(kind, name, None, f"the configs of {name} are not on disk yet: " + _fallback_note(record),
                       record.name)


def resolve_spec(spec: str | None) -> ModelSource:
    """The source for --model / I2V_MODEL (auto, an alias, a tiny variant, a repo id, a folder) as the loader
    will choose it (i2v.pipeline.choose_model: the local cache, then the Hub within a few seconds)."""
    from i2v.models import interpret
    from i2v.model_source import ModelUnavailable, choose_model

    try:
        choice = choose_model(spec or "auto")
    except ModelUnavailable as exc:
        family = interpret(spec).family
        fallback = full_size_source(f"{exc} — {_fallback_note(family)}", family)
        return ModelSource(fallback.kind, fallback.name, fallback.components, fallback.note, fallback.family,
                           unavailable=str(exc))
    return source_for(choice.kind, choice.source, choice.family)


@dataclass(frozen=True)
class ModelProfile:
    """A profile table and where it came from."""
    profile: dict
    source: ModelSource
    origin: str               # FULL_SIZE, COMMITTED, CACHED, TRACED or FALLBACK
    hash: str | None
    path: Path | None = None

    @property
    def full_size(self) -> bool:
        return self.origin in (FULL_SIZE, FALLBACK)

    def info(self) -> dict:
        """What the answers say about the model their figures describe."""
        family = self.source.family_record
        name = (f"full-size {family.title}" if self.origin == FULL_SIZE and self.source.kind == "full"
                else self.source.name)
        return {"kind": self.source.kind, "name": name, "profile": self.origin, "hash": self.hash,
                "full_size": self.full_size, "note": self.source.note, "family": family.name,
                "family_title": family.title, "repo": family.repo_id}


def committed_dir() -> Path:
    return configs_dir() / COMMITTED_DIR_NAME


def cache_dir() -> Path:
    return logs_dir() / CACHE_DIR_NAME


def profile_name(digest: str, dtype: str) -> str:
    return f"{digest}-{dtype}.json"


def profile_for(source: ModelSource, dtype: str, cache: Path | None = None) -> ModelProfile:
    """The profile for the source's model with `dtype` traced: the committed full-size one when the configs
    hash to configs/model's, else a kept one (configs/profiles/, then the cache), else a fresh trace written to
    the cache. Configs not on disk, or a trace that fails: the full-size profile (origin FALLBACK)."""
    family = source.family_record
    digest = source.hash
    if digest is None:
        return ModelProfile(read_json(family.profile_path()), source, FALLBACK, None)
    if digest == full_size_hash(family):
        return ModelProfile(read_json(family.profile_path()), source, FULL_SIZE, digest)
    cache = Path(cache) if cache else cache_dir()
    name = profile_name(digest, dtype)
    for folder, origin in ((committed_dir(), COMMITTED), (cache, CACHED)):
        found = _read_kept(folder / name, dtype)
        if found is not None:
            return ModelProfile(found, source, origin, digest, folder / name)
    with _trace_lock:
        found = _read_kept(cache / name, dtype)          # another thread traced it meanwhile
        if found is not None:
            return ModelProfile(found, source, CACHED, digest, cache / name)
        try:
            path = trace_to(source, dtype, cache / name)
            return ModelProfile(read_json(path), source, TRACED, digest, path)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            log.warning("could not trace the memory profile of %s (%s); using the full-size one", source.name, exc)
            note = f"tracing {source.name} failed: " + _fallback_note(family)
            return ModelProfile(read_json(family.profile_path()), ModelSource(source.kind, source.name, source.components, note,
                                                            source.family), FALLBACK, digest)


def _read_kept(path: Path, dtype: str) -> dict | None:
    try:
        profile = read_json(path)
    except (OSError, ValueError):
        return None
    return profile if dtype in profile.get("dtypes", {}) else None


def trace_to(source: ModelSource, dtype: str, out: Path, timeout_s: float = TRACE_TIMEOUT_S) -> Path:
    """Trace the source's model for one dtype in a subprocess (`python -m i2v.profile`) and write it to out."""
    global TRACES
    TRACES += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("tracing the memory profile of %s (%s, %s): seconds for a small model, minutes for a large one",
             source.name, dtype, source.hash)
    with tempfile.TemporaryDirectory(prefix="i2v-profile-") as tmp:
        request = Path(tmp) / "configs.json"
        request.write_text(json.dumps({"components": source.components, "hash": source.hash, "kind": source.kind,
                                       "name": source.name, "family": source.family}), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "i2v.profile", "--configs", str(request), "--out", str(out),
                               "--dtype", dtype], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=timeout_s, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))})
    if done.returncode != 0:
        raise subprocess.SubprocessError(f"exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return out


# ---------------------------------------------------------------- chunked peaks at the exact shape
CHUNK_TRACE_TIMEOUT_S = 90.0     # tracing a shape's chunked tables: within this, else predictions interpolate


def chunk_points_file(source: ModelSource) -> Path:
    """The cache of chunked peaks traced at exact shapes for this model (i2v/profile_points.py writes it)."""
    key = "full-size" if source.hash == full_size_hash(source.family_record) else source.hash
    return cache_dir() / f"chunk-points-{key}.json"


def read_chunk_points(source: ModelSource) -> dict[tuple[str, str, int, int, int], int]:
    """The chunked peaks traced so far for this model, keyed as i2v.core.memory's exact_points."""
    try:
        raw = json.loads(chunk_points_file(source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    points = {}
    for key, value in raw.items():
        dtype, table, shape = key.split("/")
        width, height, frames = (int(x) for x in shape.split("x"))
        points[(dtype, table, width, height, frames)] = int(value)
    return points


def trace_chunk_points(source: ModelSource, dtype: str, shape: tuple[int, int, int], budgets,
                       timeout_s: float = CHUNK_TRACE_TIMEOUT_S) -> bool:
    """Trace the chunked tables of `budgets` at `shape` in a subprocess (seconds; about a minute for the
    full-size model at 1024x1024x32 on a busy CPU), into the model's cache; False when it could not (another
    family, no configs, timeout): predictions then interpolate between traced points."""
    if source.family_record is not DEFAULT_FAMILY or source.components is None or not budgets:
        return False
    command = [sys.executable, "-m", "i2v.profile_points", "--cache", str(chunk_points_file(source)),
               "--dtype", dtype, "--shape", *map(str, shape), "--budgets", *map(str, budgets)]
    with tempfile.TemporaryDirectory(prefix="i2v-points-") as tmp:
        if source.hash != full_size_hash(source.family_record):
            request = Path(tmp) / "configs.json"
            request.write_text(json.dumps({"components": source.components}), encoding="utf-8")
            command += ["--configs", str(request)]
        cache_dir().mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout_s,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))})
        except subprocess.TimeoutExpired:
            log.warning("tracing the chunked peaks of %s at %s took over %.0f s: interpolating", source.name,
                        shape, timeout_s)
            return False
    if done.returncode != 0:
        log.warning("tracing the chunked peaks of %s failed: %s", source.name, done.stderr.strip()[-300:])
        return False
    return True

