"""Model families behind one seam: a registry from what the user typed (an alias, a repo id, a folder, a
tiny variant) to a family record (i2v/models/base.py). Adding a family = its module here, its configs under
configs/models/<family>/, its tests, and one line in FAMILIES; nothing else names a family.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from i2v.core.errors import I2VError
from i2v.models.base import Family
from i2v.models.i2vgen_xl import FAMILY as I2VGEN_XL
from i2v.models.ltx import FAMILY as LTX_VIDEO
from i2v.models.wan import FAMILY as WAN22_TI2V_5B

FAMILIES: tuple[Family, ...] = (I2VGEN_XL, WAN22_TI2V_5B, LTX_VIDEO)
DEFAULT_FAMILY = I2VGEN_XL          # `--model auto` and `--model tiny` stay I2VGen-XL's


class UnknownFamily(I2VError, LookupError):
    """A folder whose model_index.json no family recognises: a catalogue key (family_no_index, family_unknown)
    and its params, so whoever shows it says it in the reader's language."""


def by_name(name: str | None) -> Family:
    """The family record named `name` (its name, an alias or repo id); the default family for None."""
    if not name:
        return DEFAULT_FAMILY
    for family in FAMILIES:
        if name == family.name or name in family.names() or name == family.tiny_alias:
            return family
    raise KeyError(f"no model family named {name!r}")


@dataclass(frozen=True)
class SpecMeaning:
    """What a --model value names: a family, and whether it is the tiny variant, a repo id or a folder."""
    family: Family
    kind: str            # "auto" | "tiny" | "repo" | "folder"
    target: str          # the repo id (auto/repo), the tiny alias, or the folder path


def read_index(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def family_of_folder(folder: Path) -> Family:
    """The family of a diffusers folder, from its model_index.json."""
    index = read_index(folder)
    if index is None:
        raise UnknownFamily("family_no_index", folder=str(folder))
    for family in FAMILIES:
        if family.recognises(index):
            return family
    if "_class_name" not in index:        # a hand-made folder: taken as the default family's until it loads
        return DEFAULT_FAMILY
    raise UnknownFamily("family_unknown", folder=str(folder), class_name=str(index.get("_class_name", "unknown")),
                        families=", ".join(f.title for f in FAMILIES))


def family_of_repo(repo_id: str) -> Family:
    """The family of a Hub repo id (its name among the known ones; other repos are taken as I2VGen-XL
    checkpoints until their folder says otherwise)."""
    for family in FAMILIES:
        if repo_id == family.repo_id:
            return family
    return DEFAULT_FAMILY


def interpret(spec: str | None) -> SpecMeaning:
    """Read a --model value without touching the disk beyond a folder's model_index.json or the network."""
    spec = (spec or "auto").strip()
    if spec == "auto":
        return SpecMeaning(DEFAULT_FAMILY, "auto", DEFAULT_FAMILY.repo_id)
    for family in FAMILIES:
        if spec == family.tiny_alias:
            return SpecMeaning(family, "tiny", spec)
        if spec in family.aliases or spec == family.name:
            return SpecMeaning(family, "repo", family.repo_id)
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            return SpecMeaning(family_of_folder(path), "folder", str(path))
        except UnknownFamily:
            return SpecMeaning(DEFAULT_FAMILY, "folder", str(path))
    return SpecMeaning(family_of_repo(spec), "repo", spec)


def tiny_choices() -> tuple[str, ...]:
    return tuple(f.tiny_alias for f in FAMILIES)
