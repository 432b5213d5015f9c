"""The record of one model family: what every other part of the app asks instead of naming a model.

A record is plain data (no torch): names and aliases, the diffusers pipeline class and how a folder is
recognised (its model_index.json), the settings rules, the compute dtype, the component configs the memory
profile is traced from, the plan parts that apply, and the module holding its torch side (`runtime`), imported
only where a pipeline is built.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from i2v.core.family import FamilyRules
from i2v.paths import configs_dir


@dataclass(frozen=True)
class Family:
    rules: FamilyRules
    repo_id: str                          # the full-size model on the Hugging Face Hub
    aliases: tuple[str, ...]              # names --model / I2V_MODEL / the page accept for the full-size model
    tiny_alias: str                       # the tiny random variant (real classes at tiny widths, offline)
    pipeline_class: str                   # the diffusers class that loads and runs it
    index_classes: tuple[str, ...]        # model_index.json `_class_name` values this family may carry
    components: tuple[str, ...]           # the components whose configs decide the memory profile
    denoiser: str                         # the pipeline attribute of the denoising model
    cuda_dtype: str                       # compute dtype on CUDA ("fp16" | "bf16"); CPU runs are fp32
    cuda_variant: str | None              # the weights variant loaded on CUDA ("fp16"), None: the repo's own
    runtime: str                          # module with the torch side (build, phase modules, call, decode)
    configs_folder: str                   # full-size component configs, relative to configs/
    profile_file: str                     # committed full-size profile, relative to configs/
    presets_file: str                     # the family's presets, relative to configs/
    size_on_disk_gib: float               # the weights as downloaded (the README's family table)
    index_keys: Mapping[str, Any] = field(default_factory=dict)   # model_index.json entries that must match
    arch_keys: Mapping[str, Mapping[str, Any]] | None = None      # per component: keys deciding its size
    preview_factors: tuple[tuple[float, ...], ...] | None = None  # latent channel -> RGB (live preview)
    preview_bias: tuple[float, float, float] | None = None         # added after the factors (RGB)
    trace: str | None = None              # module tracing its profile on meta (what i2v.trace_tools.trace_family reads)
    notes: str = ""

    @property
    def name(self) -> str:
        return self.rules.name

    @property
    def title(self) -> str:
        return self.rules.title

    def names(self) -> tuple[str, ...]:
        """Every spelling that selects this family's full-size model."""
        return (self.name, self.repo_id, *self.aliases)

    def configs_dir(self) -> Path:
        return configs_dir() / self.configs_folder

    def full_size_configs(self) -> dict[str, dict]:
        """The full-size model's component configs (what its committed profile was traced from)."""
        folder = self.configs_dir()
        return {name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
                for name in self.components}

    def profile_path(self) -> Path:
        return configs_dir() / self.profile_file

    def recognises(self, index: Mapping[str, Any]) -> bool:
        """Whether a diffusers folder's model_index.json describes this family."""
        return (index.get("_class_name") in self.index_classes
                and all(index.get(key) == value for key, value in self.index_keys.items()))

    def preview_rgb(self) -> tuple | None:
        """(factors, bias) of the live preview: the record's own, else its configs folder's preview_factors.json
        (long tables: one row per latent channel); None: no preview for this family."""
        if self.preview_factors is not None:
            return self.preview_factors, self.preview_bias
        path = self.configs_dir() / "preview_factors.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return tuple(map(tuple, data["factors"])), tuple(data["bias"]) if data.get("bias") else None

    def load_runtime(self):
        """The torch side (imports torch and diffusers: call only in the worker or a tool)."""
        return importlib.import_module(self.runtime)

    def tiny_configs(self) -> dict[str, dict]:
        """The tiny variant's component configs (plain data: the runtime module builds no model for this)."""
        return self.load_runtime().tiny_configs()



def three_part_family(rules: FamilyRules, module: str, **record: Any) -> Family:
    """The record of a text_encoder -> transformer -> vae family (Wan 2.2 TI2V, LTX-Video): a bf16 transformer
    denoiser, the repo's own weights variant, a tiny variant "tiny-<name>", its configs, profile and presets
    under configs/models/<name>/, its torch side in i2v/models/<module>_runtime.py and its tracer in
    i2v/models/<module>_trace.py. `record` gives the rest (repo_id, aliases, pipeline_class, ...) and may
    override any of these."""
    folder = f"models/{rules.name}"
    defaults = dict(tiny_alias=f"tiny-{rules.name}", components=("text_encoder", "transformer", "vae"),
                    denoiser="transformer", cuda_variant=None, cuda_dtype="bf16",
                    runtime=f"i2v.models.{module}_runtime", trace=f"i2v.models.{module}_trace",
                    configs_folder=folder, profile_file=f"{folder}/memory_profile.json",
                    presets_file=f"{folder}/presets.toml")
    return Family(rules=rules, **{**defaults, **record})

def denoise_call_kwargs(request, image, generator) -> dict:
    """The arguments every family's pipeline call shares (a runtime adds its own, e.g. I2VGen-XL's target_fps);
    the latents come back for the family's decode."""
    return dict(prompt=request.prompt, image=image, negative_prompt=request.negative_prompt or None,
                height=request.height, width=request.width, num_frames=request.num_frames,
                num_inference_steps=request.num_inference_steps, guidance_scale=request.guidance_scale,
                generator=generator, output_type="latent")

