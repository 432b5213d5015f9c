"""Which weights `--model` / I2V_MODEL means and where they come from: auto, a family alias, a tiny variant, a
local diffusers folder, or a Hub repo id (the local cache first, then the Hub within a few seconds). A "hub"
choice is fetched by i2v.downloads (watched, resumed, verified) before from_pretrained reads the local snapshot.
Kept apart from i2v.pipeline so the loader stays about loading.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from i2v.core.errors import I2VError
from i2v.core.words import render
from i2v.core.settings import MODEL_REPO_ID
from i2v.models import DEFAULT_FAMILY, Family, UnknownFamily, by_name, family_of_folder, interpret

log = logging.getLogger(__name__)

DEFAULT_REPO_ID = MODEL_REPO_ID
HUB_PROBE_TIMEOUT_S = 3.0


def _hint_params(family: Family) -> dict:
    return {"alias": family.aliases[0], "repo": family.repo_id, "size_gib": f"{family.size_on_disk_gib:g}",
            "spec": "auto" if family is DEFAULT_FAMILY else family.aliases[0]}


def real_weights_hint(family: Family = DEFAULT_FAMILY, lang: str = "en") -> str:
    """How to get a family's real weights (the tiny model's banner and the unavailable-model message)."""
    return render("model_real_weights_hint", lang, **_hint_params(family))


GET_REAL_WEIGHTS_HINT = real_weights_hint()


class ModelUnavailable(I2VError, RuntimeError):
    """The requested model cannot be loaded here (not cached and the hub is unreachable)."""


# ----------------------------------------------------------------------------------------------------------
# Choosing the model
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    spec: str              # what the user asked for (auto / an alias / a tiny variant / repo id / folder)
    kind: str              # "tiny" | "local" | "hub"
    source: str            # path or repo id actually loaded (the tiny alias for a tiny model)
    banner: str | None = None   # shown in the UI and the log when the output will be noise
    family: str = DEFAULT_FAMILY.name   # the model family's name (i2v/models)
    repo: str | None = None             # the Hub repo id it stands for, when known

    @property
    def family_record(self) -> Family:
        return by_name(self.family)

    @property
    def is_placeholder(self) -> bool:
        return self.kind == "tiny"


def tiny_banner(reason: str, family: Family = DEFAULT_FAMILY, lang: str = "en") -> str:
    title = "" if family is DEFAULT_FAMILY else f"{family.title} "
    return render("model_tiny_banner", lang, title=title, reason=reason, **_hint_params(family))


def _cached_snapshot(repo_id: str) -> str | None:
    """Path of a complete local snapshot of repo_id in the HF cache, without touching the network."""
    try:
        from huggingface_hub import snapshot_download

        from i2v.download_state import READY, saved_plan, state_of
        from i2v.downloads import cache_root     # HF_HOME / HF_HUB_CACHE as they are now, as downloads reads them

        if saved_plan(repo_id) is not None:     # a download of ours: the variant's files only (the Hub's check
            ours = state_of(repo_id)             # would call that partial), each planned file whole
            if ours.state == READY and ours.snapshot:
                return ours.snapshot
        return snapshot_download(repo_id, local_files_only=True, cache_dir=str(cache_root()))
    except Exception:  # noqa: BLE001 - any failure means "not available locally"
        return None


def _hub_reachable(repo_id: str, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """True if the Hub answers about repo_id within timeout_s (never hangs; honours HF_HUB_OFFLINE)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        import requests

        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        response = requests.head(f"{endpoint}/api/models/{repo_id}", timeout=timeout_s, allow_redirects=True)
        return response.status_code < 500
    except Exception:  # noqa: BLE001 - unreachable for any reason
        return False


def _family_of_snapshot(snapshot: str, fallback: Family) -> Family:
    try:
        return family_of_folder(Path(snapshot))
    except UnknownFamily:
        return fallback


def choose_model(spec: str) -> ModelChoice:
    """Resolve --model / I2V_MODEL: auto, a family alias (wan2.2-ti2v-5b), a tiny variant (tiny,
    tiny-wan2.2-ti2v-5b), a local diffusers folder, or a Hub repo id; the family comes with it."""
    spec = (spec or "auto").strip()
    meaning = interpret(spec)
    family = meaning.family
    if meaning.kind == "tiny":
        return ModelChoice(spec, "tiny", meaning.target, tiny_banner(f"--model {spec}", family), family.name,
                           family.repo_id)
    path = Path(spec).expanduser()
    if meaning.kind == "folder":
        if not (path / "model_index.json").is_file():
            raise ModelUnavailable("model_not_a_folder", path=str(path))
        try:
            family = family_of_folder(path)
        except UnknownFamily as exc:
            raise ModelUnavailable(exc.key, **exc.params) from None
        return ModelChoice(spec, "local", str(path.resolve()), family=family.name)
    repo_id = meaning.target
    snapshot = _cached_snapshot(repo_id)
    if snapshot:
        return ModelChoice(spec, "local", snapshot, family=_family_of_snapshot(snapshot, family).name, repo=repo_id)
    if _hub_reachable(repo_id):
        return ModelChoice(spec, "hub", repo_id, family=family.name, repo=repo_id)
    if spec == "auto":
        reason = render("model_tiny_reason_offline", "en", repo=repo_id)
        return ModelChoice(spec, "tiny", family.tiny_alias, tiny_banner(reason, family), family.name, repo_id)
    raise ModelUnavailable("model_not_cached", target=repo_id, **_hint_params(family))


def fetch_if_hub(choice: ModelChoice, variant: str | None = None, on_progress: Callable | None = None) -> ModelChoice:
    """A "hub" choice downloaded through i2v.downloads (the variant the load plan reads; progress in the log,
    resumable, verified) and turned into the local snapshot it left in the Hugging Face cache; any other choice
    as it is."""
    if choice.kind != "hub":
        return choice
    from i2v import downloads

    snapshot = downloads.download(choice.source, variant=variant, on_progress=on_progress or downloads.log_progress)
    return replace(choice, kind="local", source=str(snapshot), repo=choice.repo or choice.source)
