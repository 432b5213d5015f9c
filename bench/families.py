"""The README's table of model families: for each family, its repo, size on disk, and what the memory model
predicts fits on a 6, 8, 12 and 24 GB card (the family's presets, full-size model, 32 GiB of host RAM).

Predictions, not measurements: the full-size profiles are traced on the meta device; nothing here ran on a GPU.
A preset "fits" when the ladder finds a plan for its own settings without changing them and without a lossy
part (fp8, VAE tiling); the cell names the best such preset, its predicted peak and its plan in short.
Run: .venv/bin/python bench/families.py            (prints the Markdown; tests/test_readme.py compares)
"""
from __future__ import annotations

from _common import ROOT  # noqa: F401 - puts the repository on sys.path

# A card sold as N GB leaves about this much free for one process (a desktop on it takes a little more).
CARDS_GIB = {"6 GB": 5.4, "8 GB": 7.3, "12 GB": 11.2, "24 GB": 22.5}
HOST_GIB = 32.0
PLAN_SHORT = {"offload": {"none": "", "model": "model offload", "group": "group offload",
                          "sequential": "sequential offload"}}


def plan_short(plan: dict) -> str:
    parts = [PLAN_SHORT["offload"][plan["offload"]]]
    if plan.get("cfg_split"):
        parts.append("CFG split")
    if plan.get("chunk_tokens"):
        parts.append(f"chunk {plan['chunk_tokens']}")
    if plan.get("text_encoder_cpu"):
        parts.append("text encoder on CPU")
    return ", ".join(p for p in parts if p) or "all on the GPU"


def best_preset(family, budget_gib: float) -> str:
    from i2v import configs
    from i2v.core.clamp import DoesNotFit, fit
    from i2v.core.memory import for_device
    from i2v.core.presets import preset_request
    from i2v.core.units import GIB
    from i2v.models import DEFAULT_FAMILY

    profile = configs.load_profile() if family is DEFAULT_FAMILY else configs.read_json(family.profile_path())
    model = for_device(configs.memory_model_for(profile, calibrated=False), "cuda")
    found = "nothing (predicted)"
    for preset in configs.load_presets(family=family):
        request = preset_request(preset, (1280, 720), family.rules)
        try:
            result = fit(request, int(budget_gib * GIB), model, family.cuda_dtype, host_bytes=int(HOST_GIB * GIB),
                         rules=family.rules)
        except DoesNotFit:
            continue
        if result.adjustments:
            continue
        ran = result.request
        found = (f"{preset.label}: {ran.width}x{ran.height}x{ran.num_frames}, "
                 f"{result.prediction.peak_gib:.1f} GiB ({plan_short(ran.plan.as_dict())})")
    return found


def table() -> str:
    from i2v.models import FAMILIES

    header = ["family", "repo", "on disk", *(f"{card} card" for card in CARDS_GIB)]
    rows = []
    for family in FAMILIES:
        rows.append([family.title, f"`{family.repo_id}`", f"{family.size_on_disk_gib:g} GiB",
                     *(best_preset(family, budget) for budget in CARDS_GIB.values())])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
