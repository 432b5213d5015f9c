"""The model-agnostic part of tracing a model on the meta device: the live-bytes peak of a run (a
TorchDispatchMode with weakref release, SDPA as a fused kernel), its FLOPs, and weight figures. The families'
tracers (i2v/profile.py for I2VGen-XL, i2v/models/wan_trace.py) build on these. torch is imported inside.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable

FP8_STORAGE = "float8_e4m3fn"      # the storage dtype of fp8 weights (diffusers' layerwise casting)
TRACE_METHOD = ("meta-device trace: TorchDispatchMode live-storage bytes with weakref release, "
                "SDPA modelled as fused (output-sized), weights and inputs excluded; FLOPs by FlopCounterMode")
SMALL_MODEL_PARAMS = 50_000_000    # a denoiser below this many parameters (a tiny model) is traced on a small grid


def _torch_dtype(name: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def _storage_key(tensor) -> int:
    return tensor.untyped_storage()._cdata


def _fused_sdpa_mode():
    """A TorchFunctionMode that replaces SDPA by an output-sized result (what fused kernels allocate)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    class FusedSDPA(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                # positional (I2VGen-XL's processors) or by keyword (diffusers' attention dispatch, Wan)
                query = args[0] if args else kwargs["query"]
                value = args[2] if len(args) > 2 else kwargs["value"]
                shape = tuple(query.shape[:-1]) + (value.shape[-1],)
                return torch.empty(shape, dtype=query.dtype, device=query.device)
            return func(*args, **kwargs)

    return FusedSDPA()


def _peak_mode(excluded: set[int]):
    """A TorchDispatchMode counting live bytes of storages created under it; .peak is the running maximum."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class PeakTracker(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live = 0
            self.peak = 0
            self.tracked: set[int] = set()

        def _release(self, key: int, nbytes: int) -> None:
            self.tracked.discard(key)
            self.live -= nbytes

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in tree_flatten(out)[0]:
                if not isinstance(tensor, torch.Tensor):
                    continue
                storage = tensor.untyped_storage()
                key = storage._cdata
                if key in excluded or key in self.tracked:
                    continue
                nbytes = storage.nbytes()
                self.tracked.add(key)
                self.live += nbytes
                weakref.finalize(storage, self._release, key, nbytes)
            self.peak = max(self.peak, self.live)
            return out

    return PeakTracker()


def trace_peak(module, run: Callable[[], Any], inputs: Iterable = (), fused_sdpa: bool = True) -> int:
    """Activation peak in bytes of run() (weights and the given inputs excluded).

    fused_sdpa=False lets a real device run its own SDPA kernel (the slow test measures a real CPU run).
    """
    import contextlib

    import torch

    excluded = {_storage_key(t) for t in list(module.parameters()) + list(module.buffers())}
    excluded |= {_storage_key(t) for t in inputs if isinstance(t, torch.Tensor)}
    tracker = _peak_mode(excluded)
    with torch.no_grad(), (_fused_sdpa_mode() if fused_sdpa else contextlib.nullcontext()), tracker:
        result = run()
        del result
    return tracker.peak


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs of run(); SDPA runs as its composite here so attention FLOPs are counted (meta: no memory)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        run()
    return counter.get_total_flops()


def _zeros(shape, like):
    """Zeros of the module's dtype on the module's device (meta when tracing)."""
    import torch

    return torch.zeros(shape, dtype=like.dtype, device=like.device)


def weight_figures(module) -> dict[str, int]:
    """Bytes of all weights, and of the largest module holding weights directly (~what sequential offload keeps)."""
    total = sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))
    largest = 0
    for sub in module.modules():
        own = list(sub.parameters(recurse=False)) + list(sub.buffers(recurse=False))
        largest = max(largest, sum(t.numel() * t.element_size() for t in own))
    params = sum(p.numel() for p in module.parameters())
    return {"bytes": total, "largest_module_bytes": largest, "params": params}


def fp8_weight_bytes(module, compute_dtype: str) -> int:
    """Weight bytes after diffusers' layerwise casting to fp8 storage (its own rules for what is cast).
    Casts the module: call it last on a meta model."""
    import torch

    module.enable_layerwise_casting(storage_dtype=getattr(torch, FP8_STORAGE),
                                    compute_dtype=_torch_dtype(compute_dtype))
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def assemble_profile(method: str, family: dict, knobs: dict, grid: dict, dtypes: Iterable[str],
                     trace_dtype: Callable[[str], dict]) -> dict:
    """A family tracer's whole profile: the envelope every profile shares (format version, method, library
    versions, family section, knobs, phases, grid) around one traced section per dtype, timed."""
    import time

    import diffusers
    import torch
    import transformers

    from i2v.core.memory import PHASES, PROFILE_VERSION

    started = time.perf_counter()
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION, "method": method,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},
        "family": family, "knobs": knobs, "phases": list(PHASES), "grid": grid, "dtypes": {},
    }
    for dtype in dtypes:
        profile["dtypes"][dtype] = trace_dtype(dtype)
    profile["trace_seconds"] = round(time.perf_counter() - started, 1)
    return profile



TEXT_TRANSFORMER_VAE = ("text_encoder", "transformer", "vae")


def text_transformer_vae_section(name: str, denoise_calls_per_step: int, cfg_split_applies: bool,
                                 decoded_bytes_per_value: int) -> dict:
    """The family section (what core/memory.py needs beyond the tables) of a model of three parts run in the
    order text_encoder -> transformer -> vae, with no image encoder (Wan 2.2 TI2V, LTX-Video). Under
    enable_model_cpu_offload a hook offloads only its predecessor, so the text encoder stays through the VAE
    encode and the VAE, loaded for that encode, stays through the denoising loop. fp8 storage applies to the
    transformer; there is no decode_chunk_size to choose."""
    return {
        "name": name,
        "components": list(TEXT_TRANSFORMER_VAE),
        "active_component": {"text_encode": "text_encoder", "image_encode": None, "vae_encode": "vae",
                             "denoise": "transformer", "decode": "vae"},
        "model_offload_resident": {"text_encode": ["text_encoder"], "image_encode": ["text_encoder"],
                                   "vae_encode": ["text_encoder", "vae"], "denoise": ["transformer", "vae"],
                                   "decode": ["vae"]},
        "fp8_component": "transformer",
        "denoise_calls_per_step": denoise_calls_per_step,
        "cfg_split_applies": cfg_split_applies,
        "decode_chunk_applies": False,
        "decoded_bytes_per_value": decoded_bytes_per_value,
    }


def trace_family(tracer, configs: dict[str, dict], dtypes, log: Callable[[str], None] = lambda _: None) -> dict:
    """The profile of the model `configs` describe, traced by a family's tracing module (`Family.trace`).

    The module gives: METHOD; its grid (GRID_SIZES, GRID_FRAMES, CHUNK_BUDGETS, CHUNKED_POINTS, TILED_FRAMES) and
    SMALL_GRID for a transformer under SMALL_MODEL_PARAMS; its scales (VAE_TILE_SAMPLE_SIZE,
    VAE_SCALE_FACTOR, TEMPORAL_SCALE_FACTOR, SIZE_MULTIPLE); family_section(), transformer_params(configs),
    build_meta_model(dtype, configs) and profile_dtype(model, sizes, frames_grid, budgets, chunked_points,
    tiled_frames, log). The envelope, knobs and grid are written here, once for every family."""
    small = tracer.transformer_params(configs) < SMALL_MODEL_PARAMS
    g = {"sizes": tracer.GRID_SIZES, "frames_grid": tracer.GRID_FRAMES, "budgets": tracer.CHUNK_BUDGETS,
         "chunked_points": tracer.CHUNKED_POINTS, "tiled_frames": tracer.TILED_FRAMES,
         **(tracer.SMALL_GRID if small else {})}
    knobs = {"chunk_budgets": list(g["budgets"]), "fp8_storage": FP8_STORAGE,
             "vae_tile_sample_size": tracer.VAE_TILE_SAMPLE_SIZE, "vae_scale_factor": tracer.VAE_SCALE_FACTOR,
             "temporal_scale_factor": tracer.TEMPORAL_SCALE_FACTOR, "size_multiple": tracer.SIZE_MULTIPLE}
    grid = {"sizes": [list(s) for s in g["sizes"]], "frames": list(g["frames_grid"]),
            "tiled_frames": list(g["tiled_frames"]),
            "chunked_points": {d: [list(p) for p in g["chunked_points"]] for d in dtypes},
            "kind": "small" if small else "full"}
    return assemble_profile(
        tracer.METHOD, tracer.family_section(), knobs, grid, dtypes,
        lambda dtype: tracer.profile_dtype(tracer.build_meta_model(dtype, configs), g["sizes"], g["frames_grid"],
                                           g["budgets"], g["chunked_points"], g["tiled_frames"], log))
