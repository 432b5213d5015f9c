"""Which models the page and the API offer, and whether a model the user asked for can run here.

The list never touches the network (a page load must not wait on the Hub): every family's tiny variant, and a
family's full-size model when its weights are in the local Hugging Face cache or the running --model names it.
A spec typed by a user (the API, the CLI) is checked as `--model` is (i2v.pipeline.choose_model), and a refusal
is a RequestError naming the field "model".
"""
from __future__ import annotations

import re
from pathlib import Path

from i2v.core.request import RequestError
from i2v.models import FAMILIES, interpret

FIELD = "model"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")    # owner/name, as the Hub spells repo ids


def known_names() -> list[str]:
    """Every name --model accepts besides a repo id or a folder: auto, the aliases, the tiny variants."""
    names = ["auto"]
    for family in FAMILIES:
        names += [family.name, *(a for a in family.aliases if a != family.name), family.tiny_alias]
    return names


def _cached(repo_id: str) -> bool:
    from i2v.model_source import _cached_snapshot      # local-only: never the network

    return _cached_snapshot(repo_id) is not None


def running_meaning(spec: str | None, report: dict | None, cached=_cached):
    """(family name, kind "tiny"|"full") of what runs: the load report once loaded, else the spec's meaning
    (`auto` before it loads: the full-size model when its weights are cached, else the tiny one it falls back
    to; the Hub is not asked)."""
    report = report or {}
    if report.get("kind"):
        return report.get("family") or FAMILIES[0].name, "tiny" if report["kind"] == "tiny" else "full"
    meaning = interpret(spec)
    if meaning.kind == "auto":
        return meaning.family.name, "full" if cached(meaning.family.repo_id) else "tiny"
    return meaning.family.name, "tiny" if meaning.kind == "tiny" else "full"


def choices(spec: str | None, report: dict | None = None, cached=_cached) -> list[dict]:
    """The models to choose from: name (what switch_model takes), title, family, kind, current."""
    running = running_meaning(spec, report, cached)
    meaning = interpret(spec)
    out = []
    for family in FAMILIES:
        out.append({"name": family.tiny_alias, "title": family.title, "family": family.name,
                    "kind": "tiny", "current": running == (family.name, "tiny")})
        named = meaning.family is family and meaning.kind != "tiny" and spec not in (None, "", "auto")
        if named and meaning.kind == "folder":      # a local folder the app was started with: offered as itself
            out.append({"name": spec, "title": f"{family.title} ({Path(spec).name})", "family": family.name,
                        "kind": "full", "current": running == (family.name, "full")})
        elif named or running == (family.name, "full") or cached(family.repo_id):
            name = spec if named and meaning.target != family.repo_id else family.name
            out.append({"name": name, "title": family.title, "family": family.name, "kind": "full",
                        "current": running == (family.name, "full")})
    return out


def check(spec) -> "object":
    """The ModelChoice a spec resolves to (i2v.pipeline.choose_model); RequestError naming "model" if this app
    does not know it or cannot use it here."""
    from i2v.model_source import ModelUnavailable, choose_model

    if not isinstance(spec, str) or not spec.strip():
        raise RequestError("model_unknown", field=FIELD, value=repr(spec)[:40], choices=", ".join(known_names()))
    spec = spec.strip()
    meaning = interpret(spec)
    if (meaning.kind == "repo" and spec not in known_names() and spec != meaning.family.repo_id
            and not REPO_ID.match(spec)):
        # neither a name we know nor owner/name nor an existing folder: a typo, not a Hub lookup
        raise RequestError("model_unknown", field=FIELD, value=spec[:80], choices=", ".join(known_names()))
    try:
        return choose_model(spec)
    except ModelUnavailable as exc:
        raise RequestError("model_unavailable", field=FIELD, value=spec[:80], detail=str(exc)) from None


