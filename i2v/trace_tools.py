"""The model-agnostic part of tracing a model on the meta device: the live-bytes peak of a run (a
TorchDispatchMode with weakref release, SDPA as a fused kernel), its FLOPs, and weight figures. The families'
tracers (i2v/profile.py for I2VGen-XL, i2v/models/wan_trace.py) build on these. torch is imported inside.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable

FP8_STORAGE = "float8_e4m3fn"      # the storage dtype of fp8 weights (diffusers' layerwise casting)


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


def trace_by_size(build_profile: Callable[..., dict], small: bool, small_grid: dict, configs: dict[str, dict],
                  dtypes, log: Callable[[str], None]) -> dict:
    """A family's profile: its small grid for a small (tiny) model, its full grid otherwise, labelled."""
    profile = build_profile(configs, dtypes, log=log, **(small_grid if small else {}))
    profile["grid"]["kind"] = "small" if small else "full"
    return profile
