"""The generic driver of a model family's pipeline: take the chosen model (i2v.model_source), load it through its
family record (i2v/models), apply optimisations and report each one honestly, apply a plan, and run it with per-phase hooks
(progress, cancel, fault injection) and the family's own decode. No model is named here.
"""
from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from i2v.core.request import GenerationRequest
from i2v.core.words import render
from i2v.model_source import (  # noqa: F401 - re-exported: callers know them as pl.*
    DEFAULT_REPO_ID, GET_REAL_WEIGHTS_HINT, HUB_PROBE_TIMEOUT_S, ModelChoice, ModelUnavailable, _cached_snapshot,
    _hub_reachable, choose_model, fetch_if_hub, real_weights_hint, tiny_banner)
from i2v.models import DEFAULT_FAMILY, Family

log = logging.getLogger(__name__)
COMPONENTS = DEFAULT_FAMILY.components    # I2VGen-XL's (a family's own: Family.components)
# diffusers name, transformers 5 name, transformers 4 name (deprecated in 5)
CHECKPOINTING_METHODS = ("enable_gradient_checkpointing", "activation_checkpointing_enable", "gradient_checkpointing_enable")

# Optimisation outcome statuses (the load report's vocabulary).
APPLIED = "applied"
NOT_SUPPORTED = "not supported"
NO_EFFECT = "no effect at inference"
SKIPPED = "skipped"

# ----------------------------------------------------------------------------------------------------------
# Load plan and report
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadPlan:
    """What the loader will do on a device: decided from a device description alone (unit-testable)."""
    device: str            # "cuda" | "cpu"
    dtype: str             # "float16" | "bfloat16" | "float32"
    variant: str | None    # "fp16" on CUDA for Hub/local weights of a family that has that variant
    attention: str         # "xformers" | "sdpa"
    checkpoint_components: tuple[str, ...] = COMPONENTS


@dataclass(frozen=True)
class Outcome:
    """One optimisation and what loading did to it. The detail in English (logs, sidecar, API) and, when it is
    the app's own, its catalogue key and params (i2v.core.words.worker) to say it in another language."""
    name: str
    status: str
    detail: str
    key: str | None = None
    params: dict = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, status: str, key: str, **params) -> "Outcome":
        return cls(name, status, render(key, "en", **params), key, params)


@dataclass
class LoadReport:
    model: str
    kind: str
    device: str
    dtype: str
    outcomes: list[Outcome] = field(default_factory=list)
    load_seconds: float = 0.0
    banner: str | None = None
    family: str = DEFAULT_FAMILY.name     # the model family (i2v/models), recorded in every sidecar
    repo: str | None = None               # the Hub repo the weights stand for, when known

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        return [f"{o.name}: {o.status} — {o.detail}" for o in self.outcomes]


def xformers_importable() -> bool:
    return importlib.util.find_spec("xformers") is not None


TORCH_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def plan_load(device: str, has_xformers: bool, family: Family = DEFAULT_FAMILY) -> LoadPlan:
    """The family's half precision (fp16 or bf16) + xformers-or-SDPA on CUDA; float32 + SDPA on CPU."""
    if device == "cuda":
        return LoadPlan("cuda", TORCH_DTYPES[family.cuda_dtype], family.cuda_variant,
                        "xformers" if has_xformers else "sdpa", family.components)
    return LoadPlan("cpu", "float32", None, "sdpa", family.components)


def dtype_outcome(plan: LoadPlan) -> Outcome:
    if plan.dtype != "float32":
        if plan.variant:
            return Outcome.of("fp16", APPLIED, "load_half_weights_variant", dtype=plan.dtype, variant=plan.variant)
        return Outcome.of("fp16", APPLIED, "load_half_weights", dtype=plan.dtype)
    return Outcome.of("fp16", SKIPPED, "load_cpu_float32")


def apply_attention(pipe, plan: LoadPlan) -> Outcome:
    """xformers where planned and working; otherwise PyTorch SDPA, which diffusers already uses by default."""
    if plan.attention == "xformers":
        try:
            pipe.enable_xformers_memory_efficient_attention()
            return Outcome.of("attention", APPLIED, "load_xformers")
        except Exception as exc:  # noqa: BLE001 - fall back to SDPA and say why
            log.warning("xformers could not be enabled: %s", exc)
            return Outcome.of("attention", APPLIED, "load_sdpa_xformers_failed", error=f"{type(exc).__name__}: {exc}")
    return Outcome.of("attention", APPLIED, "load_sdpa_cuda" if plan.device == "cuda" else "load_sdpa_cpu")


def apply_gradient_checkpointing(pipe, plan: LoadPlan) -> list[Outcome]:
    """Request checkpointing on every component and record what each did (docs/facts.md: nothing at inference)."""
    outcomes = []
    for name in plan.checkpoint_components:
        component = getattr(pipe, name, None)
        label = f"gradient checkpointing ({name})"
        enable = next((getattr(component, m) for m in CHECKPOINTING_METHODS if hasattr(component, m)), None)
        if enable is None:
            outcomes.append(Outcome.of(label, NOT_SUPPORTED, "load_no_checkpointing"))
            continue
        try:
            enable()
        except (ValueError, NotImplementedError, AttributeError) as exc:
            outcomes.append(Outcome.of(label, NOT_SUPPORTED, "load_checkpointing_refused",
                                       error=f"{type(exc).__name__}: {exc}"))
            continue
        outcomes.append(Outcome.of(label, NO_EFFECT, "load_checkpointing_no_effect"))
    return outcomes


def apply_optimisations(pipe, plan: LoadPlan, runtime=None) -> list[Outcome]:
    runtime = runtime or DEFAULT_FAMILY.load_runtime()
    outcomes = [dtype_outcome(plan), apply_attention(pipe, plan)]
    outcomes += apply_gradient_checkpointing(pipe, plan)
    fixes = getattr(runtime, "compatibility_fixes", None)
    for name, detail in (fixes(pipe) if fixes else []):
        outcomes.append(Outcome(name, APPLIED, detail))
    outcomes.append(Outcome.of("attention slicing", SKIPPED, "load_slicing_unused"))
    return outcomes


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------
@dataclass
class LoadedPipeline:
    pipe: object
    plan: LoadPlan
    report: LoadReport
    choice: ModelChoice
    hooks: "PhaseHooks"
    offload: str = "none"
    weights_dtype: str = "fp16"
    runtime: object = None          # the family's torch side (i2v/models/<family>_runtime.py)

    @property
    def family(self) -> Family:
        return self.choice.family_record

    @property
    def denoiser(self):
        return getattr(self.pipe, self.family.denoiser)


def detect_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _build_pipe(choice: ModelChoice, plan: LoadPlan, runtime):
    import torch

    return runtime.build_pipeline(choice.kind, choice.source, getattr(torch, plan.dtype), plan.variant)


def load_pipeline(choice: ModelChoice, device: str | None = None) -> LoadedPipeline:
    """Load the chosen model on the device with the planned optimisations; returns it with its report."""
    started = time.perf_counter()
    device = device or detect_device()
    family = choice.family_record
    runtime = family.load_runtime()
    plan = plan_load(device, device == "cuda" and xformers_importable(), family)
    choice = fetch_if_hub(choice, plan.variant)   # a Hub repo: the planned variant downloaded (watched, verified)
    pipe = _build_pipe(choice, plan, runtime)
    pipe.set_progress_bar_config(disable=True)
    outcomes = apply_optimisations(pipe, plan, runtime)
    pipe.to(plan.device)
    report = LoadReport(
        model=choice.source, kind=choice.kind, device=plan.device, dtype=plan.dtype,
        outcomes=outcomes, load_seconds=round(time.perf_counter() - started, 3), banner=choice.banner,
        family=family.name, repo=choice.repo or (choice.source if choice.kind == "hub" else None),
    )
    for line in report.lines():
        log.info("load report: %s", line)
    return LoadedPipeline(pipe=pipe, plan=plan, report=report, choice=choice, hooks=PhaseHooks(pipe, runtime),
                          runtime=runtime)


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------
PhaseListener = Callable[[str, int, int], None]   # (phase, occurrence within the run (1-based), total or 0)
CancelCheck = Callable[[], None]                  # raises to stop the run (the job's cancel check)


class PhaseHooks:
    """Forward pre-hooks on the modules the family names per phase (its runtime's phase_modules) that report
    each phase to the current listener.

    I2VGen-XL's pipeline has no step callback (docs/facts.md); the denoiser runs `calls_per_step` times a step
    (I2VGen-XL once, Wan twice: cond then uncond), so a step is reported at its first call and the listener
    (which may raise: cancel, injected faults) also runs at the others. The pipeline stays reusable.
    """

    def __init__(self, pipe, runtime=None):
        runtime = runtime or DEFAULT_FAMILY.load_runtime()
        self.listener: PhaseListener | None = None
        self.total_steps = 0
        self.calls_per_step = 1
        self._counts: dict[str, int] = {}
        self._calls = 0
        for phase, module in runtime.phase_modules(pipe).items():
            if module is None or phase == "decode":   # decode events come from the family's decode loop
                continue
            if phase == "denoise":
                module.register_forward_pre_hook(lambda *_: self.denoise_call())
            else:
                module.register_forward_pre_hook(lambda *_, phase=phase: self.fire(phase))

    def start(self, listener: PhaseListener | None, total_steps: int, calls_per_step: int = 1) -> None:
        self.listener, self.total_steps, self._counts = listener, total_steps, {}
        self.calls_per_step, self._calls = max(1, calls_per_step), 0

    def denoise_call(self) -> None:
        self._calls += 1
        if (self._calls - 1) % self.calls_per_step == 0:    # the step's later calls: cancel points act inside
            self.fire("denoise", self.total_steps)

    def fire(self, phase: str, total: int = 0) -> None:
        self._counts[phase] = self._counts.get(phase, 0) + 1
        if self.listener is not None:
            self.listener(phase, self._counts[phase], total)


FP8_STORAGE = "float8_e4m3fn"          # torch dtype name for fp8 weight storage (layerwise casting)
GROUP_OFFLOAD_TYPE = "leaf_level"        # leaf level + CUDA streams: almost no weights resident, transfers overlap


def configure_memory_knobs(loaded: LoadedPipeline, request: GenerationRequest) -> None:
    """Apply the request's plan to the loaded pipeline; one loaded model can run any plan.

    Reversible parts are switched in place (VAE tiling, the family's exact wrappers, model and sequential
    offload). fp8 storage and group offloading cannot be undone in diffusers: leaving them reloads the
    weights. The family's exact parts (CFG split and chunking, the text encoder on the CPU) go on last, over
    whatever hooks the offload and casting installed.
    """
    from i2v.core.memory import VAE_TILE_SAMPLE_SIZE

    pipe, runtime = loaded.pipe, loaded.runtime
    set_tiling = getattr(runtime, "set_vae_tiling", None)
    if set_tiling is not None:     # at the tile size the memory profile was traced with
        set_tiling(pipe, request.vae_tiling, VAE_TILE_SAMPLE_SIZE)
    elif request.vae_tiling:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()
    on_cuda = loaded.plan.device == "cuda"
    offload = request.offload if on_cuda else "none"   # on CPU every weight already lives in RAM
    irreversible = ((loaded.weights_dtype == "fp8" and request.weights_dtype != "fp8")
                    or (loaded.offload == "group" and offload != "group"))
    if irreversible:
        reload_weights(loaded)
        pipe = loaded.pipe
    runtime.remove_exact_parts(pipe)          # off while hooks underneath change
    if request.weights_dtype == "fp8" and loaded.weights_dtype != "fp8":
        import torch

        compute = getattr(torch, loaded.plan.dtype) if on_cuda else torch.float32
        loaded.denoiser.enable_layerwise_casting(storage_dtype=getattr(torch, FP8_STORAGE), compute_dtype=compute)
        loaded.weights_dtype = "fp8"
    if offload != loaded.offload:
        pipe.remove_all_hooks()
        if offload == "model":
            pipe.enable_model_cpu_offload()
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload()
        elif offload == "group":
            import torch

            pipe.to("cpu")
            pipe.enable_group_offload(onload_device=torch.device("cuda"), offload_type=GROUP_OFFLOAD_TYPE,
                                      use_stream=True)
        else:
            pipe.to("cuda")
        loaded.offload = offload
    runtime.apply_exact_parts(pipe, request)


UNPLACED = "unplaced"     # LoadedPipeline.offload after a reload on CUDA: on the CPU until a plan places it


def reload_weights(loaded: LoadedPipeline) -> None:
    """Load the pipeline again (same model, same load plan): the way back from fp8 storage or group offload.

    The old pipeline is released first (two copies of Wan's ~22 GB would not fit most hosts), and on CUDA the new
    one stays on the CPU: configure_memory_knobs places it for the plan (all of it on a small card would not fit)."""
    import gc

    log.info("reloading the weights to leave fp8 storage / group offloading")
    old, loaded.pipe = loaded.pipe, None
    try:
        old.remove_all_hooks()
    except Exception:  # noqa: BLE001 - best effort: the old pipeline is dropped either way
        log.exception("removing the old pipeline's hooks failed")
    del old
    gc.collect()
    _empty_cuda_cache()
    pipe = _build_pipe(loaded.choice, loaded.plan, loaded.runtime)
    pipe.set_progress_bar_config(disable=True)
    apply_optimisations(pipe, loaded.plan, loaded.runtime)
    if loaded.plan.device == "cuda":
        loaded.offload = UNPLACED
    else:
        pipe.to(loaded.plan.device)
        loaded.offload = "none"
    loaded.pipe, loaded.hooks = pipe, PhaseHooks(pipe, loaded.runtime)
    loaded.weights_dtype = "fp16"


def _empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - nothing to hand back
        log.exception("empty_cache failed")


def sample_latents(loaded: LoadedPipeline, image, request: GenerationRequest, seed: int, listener: PhaseListener | None,
                   check: CancelCheck | None = None, preview=None):
    """Encode, then run the denoising loop; returns the latents (decode happens in decode_frames).

    `check` (the job's cancel check) also runs inside each step, before each attention, feed-forward and
    convolution of the UNet and VAE (i2v.cancel_points): a Stop takes effect within a layer, not at the step's end.
    `preview` (i2v.preview_tap.PreviewTap): the live preview's tap on the denoiser's input, every few steps."""
    import torch

    from i2v import cancel_points, preview_tap

    configure_memory_knobs(loaded, request)
    loaded.hooks.start(listener, request.num_inference_steps,
                       loaded.runtime.denoise_calls_per_step(request.guidance_scale))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)   # a pipeline may sample some latents from the global RNG (I2VGen-XL does)
    with cancel_points.installed(loaded.pipe, check), preview_tap.installed(loaded, request, preview):   # after configure
        output = loaded.pipe(**loaded.runtime.call_kwargs(request, image, generator))
    return output.frames


def decode_frames(loaded: LoadedPipeline, latents, request: GenerationRequest, listener: PhaseListener | None,
                  check: CancelCheck | None = None):
    """Decode latents into uint8 frames of shape (F, H, W, 3) the family's way (one 'decode' event per
    chunk or latent frame); `check` runs inside the VAE as in sample_latents."""
    configure_memory_knobs(loaded, request)
    return loaded.runtime.decode(loaded.pipe, latents, request, listener, check)


def release_after_cancel(loaded: LoadedPipeline) -> None:
    """After a Stop (the exception's traceback already dropped, so the interrupted step's tensors are freed by
    their reference counts): release the offload hooks and hand the freed CUDA blocks back, leaving the model
    loaded. No gc.collect(): nothing of the job is left in a cycle (tests/test_stop_latency.py checks it) and a
    full collection takes 0.4 s on a busy CPU, most of the time a Stop may take."""
    release_after_failure(loaded)
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()       # the kernels queued before the Stop finish here: then it is idle
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - a broken context shows up in the next job, not as a failed Stop
        log.exception("empty_cache after a cancel failed")


def release_after_failure(loaded: LoadedPipeline | None) -> None:
    """After an exception the pipeline skips maybe_free_model_hooks() (docs/facts.md): do it ourselves."""
    if loaded is None:
        return
    loaded.hooks.start(None, 0)
    if loaded.offload != "none":
        try:
            loaded.pipe.maybe_free_model_hooks()
        except Exception:  # noqa: BLE001 - best effort cleanup
            log.exception("maybe_free_model_hooks failed")
