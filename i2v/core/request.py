"""GenerationRequest: the validated, frozen description of one job, and how to build it from raw inputs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from i2v.core.errors import I2VError, RequestError, several
from i2v.core.family import DEFAULT_RULES, FamilyRules
from i2v.core.plans import PLAN_KEYS, Plan, Ranking
from i2v.core.settings import (
    MAX_ASPECT_RATIO,
    MAX_PROMPT_CHARS,
    SETTINGS,
    IMAGE_FIELD,
    SETTINGS_BY_NAME,
    SIZE_MULTIPLE,
)


# The plan parts under the names a flat request has on the wire (sidecar "parameters", logs, the worker's
# messages): the plan's own names, except decode_chunk, which keeps the pipeline's name there.
WIRE_NAMES = {key: ("decode_chunk_size" if key == "decode_chunk" else key) for key in PLAN_KEYS}
_PLAN_KEY = {wire: key for key, wire in WIRE_NAMES.items()}
# Settings that change no memory figure: a request keeps its carried ranking when only these (or its plan) change.
RANKING_NEUTRAL = frozenset({"seed", "prompt", "negative_prompt", "fps"})


@dataclass(frozen=True, init=False)
class GenerationRequest:
    """The user's settings and the plan that runs them (composition: the plan is a Plan, checked there).
    Plan parts read as attributes too (request.offload is request.plan.offload) for the code that runs it."""
    prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    num_inference_steps: int
    guidance_scale: float
    seed: int = -1
    negative_prompt: str = ""
    resolution: int = 512
    image_fit: str = "crop"      # an image wider than MAX_ASPECT_RATIO: crop its sides, or pad it (settings table)
    # How the job runs, chosen by the clamp / fallback ladder, not by sliders (i2v.core.plans.Plan).
    plan: Plan = Plan()
    # The server's decision carried to the worker (the ranked plans and notches; i2v.core.fallback): not a
    # setting, so outside equality, repr and as_dict; dropped when a setting that changes memory changes.
    ranking: Ranking | None = field(default=None, compare=False, repr=False)

    def __init__(self, prompt: str, width: int, height: int, num_frames: int, fps: int, num_inference_steps: int,
                 guidance_scale: float, seed: int = -1, negative_prompt: str = "", resolution: int = 512,
                 image_fit: str = "crop", plan: Plan | None = None, ranking: Ranking | None = None,
                 **plan_parts: Any):
        """plan_parts: plan parts by their wire names (as as_dict() writes them), over `plan`."""
        values = dict(prompt=prompt, width=width, height=height, num_frames=num_frames, fps=fps,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed,
                      negative_prompt=negative_prompt, resolution=resolution, image_fit=image_fit,
                      plan=_plan_with(plan or Plan(), plan_parts), ranking=ranking)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> "GenerationRequest":
        """A copy with settings and plan parts (by wire name, or a whole `plan`) changed."""
        parts = {name: changes.pop(name) for name in list(changes) if name in _PLAN_KEY}
        plan = _plan_with(changes.pop("plan", self.plan), parts)
        if "ranking" not in changes and set(changes) - RANKING_NEUTRAL:
            changes["ranking"] = None          # another size: the carried ranking no longer describes it
        return dataclasses.replace(self, plan=plan, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Flat: the settings and the plan parts under their wire names (GenerationRequest(**as_dict()) is equal)."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.name not in ("plan", "ranking")}
        return {**settings, **{WIRE_NAMES[key]: value for key, value in self.plan.as_dict().items()}}

    def with_plan(self, plan: Plan) -> "GenerationRequest":
        """Another plan for the same settings (the carried ranking still holds)."""
        return dataclasses.replace(self, plan=plan)

    def with_ranking(self, ranking: Ranking | None) -> "GenerationRequest":
        return dataclasses.replace(self, ranking=ranking)

    def __getattr__(self, name: str) -> Any:
        """A plan part by its wire name (request.decode_chunk_size, request.offload, ...)."""
        key = _PLAN_KEY.get(name)
        if key is None:
            raise AttributeError(name)
        return getattr(self.__dict__["plan"], key)


def _plan_with(plan: Plan, parts: Mapping[str, Any]) -> Plan:
    return plan.replace(**{_PLAN_KEY[name]: value for name, value in parts.items()}) if parts else plan


def round_to_multiple(value: float, multiple: int = SIZE_MULTIPLE) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def size_for_aspect(resolution: int, image_width: int, image_height: int,
                    multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """(width, height) with the short side = resolution and the image's aspect (capped), multiples of
    `multiple` (the family's size rule: 8 for I2VGen-XL, 32 for Wan 2.2)."""
    if image_width <= 0 or image_height <= 0:
        raise RequestError("image_damaged", field=IMAGE_FIELD)
    aspect = min(max(image_width, image_height) / min(image_width, image_height), MAX_ASPECT_RATIO)
    long_side = round_to_multiple(resolution * aspect, multiple)
    return (long_side, resolution) if image_width >= image_height else (resolution, long_side)


def validate_values(values: Mapping[str, Any], rules: FamilyRules = DEFAULT_RULES) -> list[I2VError]:
    """Every problem with the user-facing values, checked against the family's settings table and frame
    rule, each naming its field."""
    problems = []
    for setting in rules.settings():
        if setting.name in values:
            problem = setting.check(values[setting.name])
            if problem is None and setting.name == "num_frames":
                problem = rules.check_frames(values[setting.name])
            if problem:
                problems.append(problem)
    for key in ("prompt", "negative_prompt"):
        if isinstance(values.get(key), str) and len(values[key]) > MAX_PROMPT_CHARS:
            problems.append(I2VError("field_too_long", field=key, limit=MAX_PROMPT_CHARS, length=len(values[key])))
    unknown = sorted(set(values) - {s.name for s in SETTINGS})
    if unknown:
        problems.append(I2VError("field_unknown", names=", ".join(map(str, unknown))[:200]))
    return problems


# Characters removed from prompts: C0/C1 controls other than tab and newline, and Unicode direction overrides.
_STRIPPED = {c for c in range(0x20) if c not in (0x09, 0x0A)} | set(range(0x7F, 0xA0)) | \
    {0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
_STRIP_TABLE = dict.fromkeys(_STRIPPED)


def clean_text(text: str) -> str:
    """A prompt without control characters (NUL, escapes, direction overrides) and outer whitespace."""
    return text.translate(_STRIP_TABLE).strip()


def coerce(name: str, value: Any) -> Any:
    """API clients send numbers as text or as whole floats: '16' and 16.0 become 16 (anything else is left
    for validation to name)."""
    setting = SETTINGS_BY_NAME.get(name)
    if setting is None or setting.kind not in (int, float) or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return value
    if setting.kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_request(image_size: tuple[int, int], rules: FamilyRules | None = None, **values: Any) -> GenerationRequest:
    """Validate raw values (missing ones take the family's defaults) and size them to the image's aspect.
    rules: the family of the model that will run (default: I2VGen-XL's)."""
    rules = rules or DEFAULT_RULES
    merged = {**rules.defaults(), **{k: coerce(k, v) for k, v in values.items() if v is not None}}
    problems = validate_values(merged, rules)
    if problems:
        raise several(problems, RequestError) if len(problems) > 1 else RequestError(problems[0].key,
                                                                                     **problems[0].params)
    merged["prompt"], merged["negative_prompt"] = clean_text(merged["prompt"]), clean_text(merged["negative_prompt"])
    width, height = size_for_aspect(merged["resolution"], *image_size, rules.size_multiple)
    return GenerationRequest(
        prompt=merged["prompt"],
        negative_prompt=merged["negative_prompt"],
        resolution=merged["resolution"],
        width=width,
        height=height,
        num_frames=merged["num_frames"],
        fps=merged["fps"],
        num_inference_steps=merged["num_inference_steps"],
        guidance_scale=float(merged["guidance_scale"]),
        seed=merged["seed"],
        image_fit=merged["image_fit"],
    )


def check_size(request: GenerationRequest) -> None:
    """Reject a size no code path should produce (the plan parts are checked by Plan itself)."""
    if request.width % SIZE_MULTIPLE or request.height % SIZE_MULTIPLE:
        raise RequestError("size_not_multiple", multiple=SIZE_MULTIPLE, width=request.width, height=request.height)
