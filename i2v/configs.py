"""Read the config files (TOML/JSON) and hand parsed, validated data to i2v.core. The only file I/O for them."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

from i2v.core.memory import MemoryConstants, MemoryModel, load_model, parse_constants
from i2v.core.presets import Preset, parse_presets
from i2v.core.tiers import Tier, parse_tiers
from i2v.core.units import GIB
from i2v.paths import configs_dir

PROFILE_FILE = "memory_profile.json"
CALIBRATION_FILE = "calibration.json"
MEMORY_FILE = "memory.toml"
PRESETS_FILE = "presets.toml"
TIERS_FILE = "tiers.toml"


def _dir(folder: Path | None) -> Path:
    return Path(folder) if folder else configs_dir()


def read_toml(path: Path) -> dict:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_profile(folder: Path | None = None) -> dict:
    return read_json(_dir(folder) / PROFILE_FILE)


def load_calibration(folder: Path | None = None) -> dict | None:
    """The calibration table next to the profile, or None when the app has not been calibrated."""
    path = _dir(folder) / CALIBRATION_FILE
    return read_json(path) if path.exists() else None


def load_constants(folder: Path | None = None) -> MemoryConstants:
    """configs/memory.toml, with the CUDA context measured on a GPU (bench/gpu_truth.py stores it in the
    calibration's "measured_terms") in place of the assumed one: it belongs to the machine, so every model's
    predictions use it, calibrated or not."""
    data = dict(read_toml(_dir(folder) / MEMORY_FILE))
    measured = (load_calibration(folder) or {}).get("measured_terms") or {}
    context = measured.get("cuda_context_bytes")
    if isinstance(context, (int, float)) and not isinstance(context, bool) and context > 0:
        data["cuda_context_gib"] = round(context / GIB, 4)
    return parse_constants(data)


def load_memory_model(folder: Path | None = None) -> MemoryModel:
    """Profile + constants + optional calibration, ready for i2v.core.memory.predict."""
    return load_model(load_profile(folder), load_constants(folder), load_calibration(folder))


def memory_model_for(profile: dict, calibrated: bool = True, folder: Path | None = None) -> MemoryModel:
    """A memory model over another profile (i2v.profiles: the model that runs) with these constants; the
    calibration (measured on the full-size model) only where calibrated."""
    return load_model(profile, load_constants(folder), load_calibration(folder) if calibrated else None)


def full_size_model(family=None) -> MemoryModel:
    """A family's full-size memory model (i2v.models record; None: I2VGen-XL's): I2VGen-XL's with the
    calibration measured on it, another family's committed profile uncalibrated."""
    from i2v.models import DEFAULT_FAMILY

    if family is None or family is DEFAULT_FAMILY:
        return load_memory_model()
    return memory_model_for(read_json(family.profile_path()), calibrated=False)


def load_presets(folder: Path | None = None, family=None) -> tuple[Preset, ...]:
    """The presets of a model family (i2v.models record; I2VGen-XL's configs/presets.toml when None)."""
    if family is None:
        return parse_presets(read_toml(_dir(folder) / PRESETS_FILE))
    return parse_presets(read_toml(_dir(folder) / family.presets_file), family.rules)


def load_tiers(folder: Path | None = None) -> tuple[Tier, ...]:
    return parse_tiers(read_toml(_dir(folder) / TIERS_FILE))


