"""Trace an I2VGen-XL on the meta device and write the memory profile table.

The committed configs/memory_profile.json is the full-size model's (configs/model/*.json); another model (the
tiny one, a diffusers folder with other dimensions) is traced from its own configs (`trace_configs`, run in a
subprocess by i2v/profiles.py, which caches the result by the configs' hash). Small models get a small grid.

Method (docs/facts.md, "Measuring memory without a GPU"; the machinery is i2v/trace_tools.py): build each component from its config on ``torch.device("meta")`` (no weights),
run one phase under a TorchDispatchMode that adds the bytes of every new output storage and subtracts them
when the storage dies (weakref finalizer); the running maximum is the activation peak of that phase.
Storages that existed before the trace (weights, inputs) are excluded. SDPA is modelled as a fused kernel
(output-sized result) with a TorchFunctionMode, as the CUDA flash / memory-efficient kernels behave.
FLOPs per UNet step are counted with FlopCounterMode in the same pass.

This runs only from the ``profile-memory`` command, never at app run time. torch/diffusers/transformers are
imported inside functions.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from i2v.core.memory import (
    PHASES,
    PROFILE_VERSION,
    VAE_SCALE_FACTOR,
    VAE_TILE_SAMPLE_SIZE,
)
from i2v.core.phases import DECODE, DECODE_TILED
from i2v.core.units import GIB
from i2v.configs import PROFILE_FILE
from i2v.paths import configs_dir, model_config_dir
from i2v.trace_tools import (  # noqa: F401  (re-exported: the tracers' one import)
    FP8_STORAGE, SMALL_MODEL_PARAMS, TRACE_METHOD, _fused_sdpa_mode, _torch_dtype, _zeros, count_flops,
    fp8_weight_bytes, trace_family, trace_peak, weight_figures,
)

DTYPES = ("fp16", "fp32")
CLIP_IMAGE_SIZE = 224          # the pipeline resizes the conditioning image to the CLIP crop size
TEXT_TOKENS = 77               # CLIP context length
LATENT_CHANNELS = 4
DEFAULT_FPS = 16

# The grid traced by `profile-memory`: (width, height) x frames. Activations are ~linear in
# batch x frames x pixels, so a spread of sizes is enough; memory.py interpolates in between.
GRID_SIZES = ((256, 256), (512, 512), (768, 768), (1024, 1024), (1280, 704))
GRID_FRAMES = (8, 16, 32)
# VAE decode: frames per vae.decode call (decode_chunk_size) x sizes.
DECODE_CHUNKS = (1, 2, 4, 8)
# Variants of one denoise step traced over the grid: (name, batch). FLOPs are counted for "cfg".
UNET_VARIANTS = (("cfg", 2), ("nocfg", 1))
# The exact chunked UNet (i2v/chunking.py) at these token budgets, each with and without CFG split, traced at
# these points (width, height, frames); the peak after chunking is close to linear in frames x pixels, and
# memory.py interpolates between points. A chunked trace at 1024x1024x32 takes about a minute (many chunks).
CHUNK_BUDGETS = (4096, 16384, 65536)
CHUNKED_POINTS = {"fp16": ((256, 256, 8), (512, 512, 16), (1280, 704, 16), (1024, 1024, 32)),
                  "fp32": ((256, 256, 8), (512, 512, 16), (1280, 704, 16))}
# The grid for a small model (the tiny one): meta tracing costs per operation, not per byte, so a small grid is
# what keeps it to seconds; activations are ~linear in work, which memory.py interpolates. No chunked traces:
# a chunk budget forced on a small model is predicted by the plain trace (an upper bound, core/memory.py).
SMALL_GRID = dict(sizes=((256, 256), (1024, 1024)), frames_grid=(4, 16), chunks=(1, 4), chunked_points=(),
                  budgets=())
COMPONENT_NAMES = ("unet", "vae", "text_encoder", "image_encoder")


def default_profile_path() -> Path:
    return configs_dir() / PROFILE_FILE


# ---------------------------------------------------------------- the components on meta
@dataclass
class MetaModel:
    dtype: str
    unet: Any
    vae: Any
    text_encoder: Any
    image_encoder: Any

    def components(self) -> dict[str, Any]:
        return {"text_encoder": self.text_encoder, "image_encoder": self.image_encoder,
                "unet": self.unet, "vae": self.vae}


def _read_config(name: str, folder: Path | None = None) -> dict:
    return json.loads(((folder or model_config_dir()) / f"{name}.json").read_text(encoding="utf-8"))


def build_meta_model(dtype: str = "fp16", folder: Path | None = None, device: str = "meta",
                     configs: dict[str, dict] | None = None) -> MetaModel:
    """The four components on the meta device (or, random, on a real one): from `configs` (name -> config
    dict, as in a diffusers folder's */config.json) when given, else the full-size ones in configs/model."""
    import torch
    from diffusers import AutoencoderKL
    from diffusers.models.unets import I2VGenXLUNet
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    def clean(config: dict) -> dict:
        return {k: v for k, v in config.items() if not k.startswith("_")}

    torch_dtype = _torch_dtype(dtype)
    if configs is None:
        configs = {name: _read_config(name, folder) for name in COMPONENT_NAMES}
    configs = {name: dict(configs[name]) for name in COMPONENT_NAMES}
    with torch.device(device):
        unet = I2VGenXLUNet.from_config(configs["unet"])
        vae = AutoencoderKL.from_config(configs["vae"])
        text_cfg = CLIPTextConfig(**clean(configs["text_encoder"]))
        image_cfg = CLIPVisionConfig(**clean(configs["image_encoder"]))
        for cfg in (text_cfg, image_cfg):
            cfg._attn_implementation = "sdpa"
        text_encoder = CLIPTextModel(text_cfg)
        image_encoder = CLIPVisionModelWithProjection(image_cfg)
    model = MetaModel(dtype, unet, vae, text_encoder, image_encoder)
    for component in model.components().values():
        component.to(torch_dtype).eval()
    return model


# ---------------------------------------------------------------- one phase each
# Each takes peak_fn(module, run, inputs) -> bytes: trace_peak on meta; calibrate passes a CUDA measurement.
def trace_text_encode(model: MetaModel, peak_fn=None) -> int:
    import torch

    tokens = min(TEXT_TOKENS, model.text_encoder.config.max_position_embeddings)
    ids = torch.zeros((1, tokens), dtype=torch.long, device=model.text_encoder.device)
    return (peak_fn or trace_peak)(model.text_encoder, lambda: model.text_encoder(ids), [ids])


def clip_image_size(model: MetaModel) -> int:
    """The conditioning image's size: the CLIP crop the pipeline resizes to (224 for the full-size model)."""
    return int(getattr(model.image_encoder.config, "image_size", CLIP_IMAGE_SIZE))


def trace_image_encode(model: MetaModel, peak_fn=None) -> int:
    size = clip_image_size(model)
    pixels = _zeros((1, 3, size, size), model.image_encoder)
    return (peak_fn or trace_peak)(model.image_encoder, lambda: model.image_encoder(pixels).image_embeds, [pixels])


def trace_vae_encode(model: MetaModel, width: int, height: int, peak_fn=None) -> int:
    image = _zeros((1, 3, height, width), model.vae)
    return (peak_fn or trace_peak)(model.vae, lambda: model.vae.encode(image).latent_dist.sample(), [image])


def _unet_inputs(model: MetaModel, width: int, height: int, frames: int, batch: int):
    import torch

    unet = model.unet
    lh, lw = height // VAE_SCALE_FACTOR, width // VAE_SCALE_FACTOR
    sample = _zeros((batch, LATENT_CHANNELS, frames, lh, lw), unet)
    image_latents = _zeros((batch, LATENT_CHANNELS, frames, lh, lw), unet)
    tokens = min(TEXT_TOKENS, model.text_encoder.config.max_position_embeddings)
    text = _zeros((batch, tokens, unet.config.cross_attention_dim), unet)
    image_embeds = _zeros((batch, 1, unet.config.cross_attention_dim), unet)
    fps = torch.full((batch,), DEFAULT_FPS, dtype=torch.long, device=unet.device)
    timestep = torch.tensor(999, dtype=torch.long, device=unet.device)
    return dict(sample=sample, timestep=timestep, fps=fps, image_latents=image_latents,
                image_embeddings=image_embeds, encoder_hidden_states=text, return_dict=False)


def trace_unet_step(model: MetaModel, width: int, height: int, frames: int, batch: int,
                    cfg_split: bool = False, chunk_tokens: int = 0, flops: bool = False,
                    peak_fn=None) -> tuple[int, int | None]:
    """(activation peak bytes, FLOPs or None) of one UNet forward, under a CFG split / chunk budget."""
    from i2v.chunking import apply_unet_plan

    unet = model.unet
    kwargs = _unet_inputs(model, width, height, frames, batch)
    apply_unet_plan(unet, cfg_split, chunk_tokens)
    try:
        run = lambda: unet(**kwargs)[0]  # noqa: E731
        peak = (peak_fn or trace_peak)(unet, run, kwargs.values())
        flop_count = count_flops(run) if flops else None
    finally:
        apply_unet_plan(unet, False, 0)
    return peak, flop_count


def plan_table(budget: int, cfg_split: bool) -> str:
    """The profile's name for a traced denoise plan (memory.py reads these names)."""
    if not budget:
        return "denoise_cfg_split" if cfg_split else "denoise_cfg"
    return f"denoise_cfg_chunk{budget}" + ("_split" if cfg_split else "")


def trace_vae_decode(model: MetaModel, width: int, height: int, chunk: int, tiling: bool = False,
                     peak_fn=None) -> int:
    """Activation peak of one vae.decode of `chunk` frames (the output of that call included)."""
    vae = model.vae
    latents = _zeros((chunk, LATENT_CHANNELS, height // VAE_SCALE_FACTOR, width // VAE_SCALE_FACTOR), vae)
    saved = (vae.use_tiling, vae.tile_sample_min_size, vae.tile_latent_min_size)
    if tiling:
        vae.enable_tiling()
        vae.tile_sample_min_size = VAE_TILE_SAMPLE_SIZE
        vae.tile_latent_min_size = VAE_TILE_SAMPLE_SIZE // VAE_SCALE_FACTOR
    try:
        return (peak_fn or trace_peak)(vae, lambda: vae.decode(latents).sample, [latents])
    finally:
        vae.use_tiling, vae.tile_sample_min_size, vae.tile_latent_min_size = saved


# ---------------------------------------------------------------- the table
def _point(width, height, frames, peak, **extra) -> dict:
    return {"width": width, "height": height, "frames": frames, "bytes": int(peak), **extra}


def profile_dtype(model: MetaModel, sizes=GRID_SIZES, frames_grid=GRID_FRAMES, chunks=DECODE_CHUNKS,
                  chunked_points=None, budgets=CHUNK_BUDGETS, log: Callable[[str], None] = lambda _: None) -> dict:
    """All phases of one dtype: weights and activation points."""
    section: dict[str, Any] = {
        "weights": {name: weight_figures(module) for name, module in model.components().items()},
        "phases": {},
    }
    phases = section["phases"]
    chunked_points = CHUNKED_POINTS[model.dtype] if chunked_points is None else chunked_points
    phases["text_encode"] = [_point(0, 0, 1, trace_text_encode(model))]
    clip = clip_image_size(model)
    phases["image_encode"] = [_point(clip, clip, 1, trace_image_encode(model))]
    phases["vae_encode"] = [_point(w, h, 1, trace_vae_encode(model, w, h)) for w, h in sizes]
    for name, batch in UNET_VARIANTS:
        points = []
        for w, h in sizes:
            for f in frames_grid:
                started = time.perf_counter()
                peak, flops = trace_unet_step(model, w, h, f, batch, flops=(name == "cfg"))
                extra = {"flops": flops} if flops is not None else {}
                points.append(_point(w, h, f, peak, **extra))
                log(f"{model.dtype} denoise_{name} {w}x{h}x{f}: {peak / GIB:.3f} GiB "
                    f"({time.perf_counter() - started:.1f} s)")
        phases[f"denoise_{name}"] = points
    phases[plan_table(0, True)] = [_point(w, h, f, trace_unet_step(model, w, h, f, 2, cfg_split=True)[0])
                                   for w, h in sizes for f in frames_grid]
    for budget in budgets:
        for split in (False, True):
            points = []
            for w, h, f in chunked_points:
                started = time.perf_counter()
                peak = trace_unet_step(model, w, h, f, 2, cfg_split=split, chunk_tokens=budget)[0]
                points.append(_point(w, h, f, peak))
                log(f"{model.dtype} {plan_table(budget, split)} {w}x{h}x{f}: {peak / GIB:.3f} GiB "
                    f"({time.perf_counter() - started:.1f} s)")
            phases[plan_table(budget, split)] = points
    phases[DECODE] = [_point(w, h, c, trace_vae_decode(model, w, h, c)) for w, h in sizes for c in chunks]
    phases[DECODE_TILED] = [_point(w, h, c, trace_vae_decode(model, w, h, c, tiling=True))
                                  for w, h in sizes for c in chunks]
    if model.dtype == "fp16":   # fp8 storage is planned for fp16 compute only
        section["weights"]["unet"]["fp8_bytes"] = fp8_weight_bytes(model.unet, model.dtype)
    return section


def build_profile(dtypes=DTYPES, sizes=GRID_SIZES, frames_grid=GRID_FRAMES, chunks=DECODE_CHUNKS,
                  chunked_points=None, budgets=CHUNK_BUDGETS, log: Callable[[str], None] = lambda _: None,
                  configs: dict[str, dict] | None = None) -> dict:
    """The whole profile dict (what configs/memory_profile.json holds); `configs` as in build_meta_model."""
    import diffusers
    import torch
    import transformers

    started = time.perf_counter()
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "method": TRACE_METHOD,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},
        "knobs": {"chunk_budgets": list(budgets), "fp8_storage": FP8_STORAGE,
                  "vae_tile_sample_size": VAE_TILE_SAMPLE_SIZE, "vae_scale_factor": VAE_SCALE_FACTOR},
        "phases": list(PHASES),
        "grid": {"sizes": [list(s) for s in sizes], "frames": list(frames_grid), "decode_chunks": list(chunks),
                 "chunked_points": {d: [list(p) for p in (CHUNKED_POINTS[d] if chunked_points is None
                                                          else chunked_points)] for d in dtypes}},
        "dtypes": {},
    }
    for dtype in dtypes:
        model = build_meta_model(dtype, configs=configs)
        profile["dtypes"][dtype] = profile_dtype(model, sizes, frames_grid, chunks, chunked_points, budgets, log)
    profile["trace_seconds"] = round(time.perf_counter() - started, 1)
    return profile


def main_build(out: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Trace the default grid and write it (the `profile-memory` command)."""
    return write_profile(build_profile(log=log), out)


def write_profile(profile: dict, path: Path | None = None) -> Path:
    """Atomic write (tmp + rename)."""
    from i2v.files import write_json_atomic

    return write_json_atomic(Path(path or default_profile_path()), profile, indent=1)


def is_small(configs: dict[str, dict]) -> bool:
    """Whether the UNet of these configs is small enough for SMALL_GRID (counted on meta: no memory)."""
    unet = build_meta_model("fp32", configs=configs).unet
    return sum(p.numel() for p in unet.parameters()) < SMALL_MODEL_PARAMS


def trace_configs(configs: dict[str, dict], dtypes=DTYPES, log: Callable[[str], None] = lambda _: None) -> dict:
    """The profile of the model these configs describe, for these dtypes: SMALL_GRID for a small UNet, the full
    grid otherwise."""
    small = is_small(configs)
    profile = build_profile(dtypes, log=log, configs=configs, **(SMALL_GRID if small else {}))
    profile["grid"]["kind"] = "small" if small else "full"
    return profile


I2VGEN_XL_FAMILY = "i2vgen-xl"


def family_dtypes(family: str) -> tuple[str, ...]:
    """The dtypes a family's profile holds by default: its CUDA compute dtype and fp32 (CPU runs)."""
    tracer = _family_tracer(family)
    return tuple(tracer.DTYPES) if tracer is not None else DTYPES


def _family_tracer(family: str):
    """The tracing module a family record names (Family.trace), None for a family traced here."""
    import importlib

    from i2v.models import by_name

    try:
        module = by_name(family).trace
    except KeyError:
        return None
    return importlib.import_module(module) if module else None


def trace_family_profile(family: str, configs: dict[str, dict], dtypes=None,
                         log: Callable[[str], None] = lambda _: None) -> dict:
    """The profile of a model of `family` described by `configs` (name -> config dict), for these dtypes
    (default: the family's): I2VGen-XL here, every other family by the tracer its record names."""
    dtypes = tuple(dtypes or family_dtypes(family))
    tracer = _family_tracer(family)
    if tracer is not None:
        return trace_family(tracer, configs, dtypes, log)
    if family != I2VGEN_XL_FAMILY:
        raise ValueError(f"no profile tracer for model family {family!r}")
    return trace_configs(configs, dtypes, log=log)


def main(argv=None) -> int:
    """`python -m i2v.profile --configs IN.json --out OUT.json`: trace the model of IN (name -> config dict;
    "family" names the model family, I2VGen-XL when absent) and write its profile (what i2v/profiles.py runs
    in a subprocess; the web server never imports torch)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m i2v.profile")
    parser.add_argument("--configs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dtype", action="append", choices=("fp16", "bf16", "fp32"),
                        help="default: the family's (I2VGen-XL: fp16 and fp32; Wan: bf16 and fp32)")
    args = parser.parse_args(argv)
    configs = json.loads(args.configs.read_text(encoding="utf-8"))
    profile = trace_family_profile(configs.get("family", I2VGEN_XL_FAMILY), configs["components"],
                                   tuple(args.dtype or ()), log=lambda line: print(line, flush=True))
    profile["model"] = {k: v for k, v in configs.items() if k != "components"}
    write_profile(profile, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
