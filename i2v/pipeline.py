"""The only module that knows I2VGenXLPipeline: choose the model, load it, apply optimisations and report
each one honestly, and run it with per-phase hooks (progress, cancel, fault injection) and our own decode loop.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from i2v.core.request import GenerationRequest
from i2v.core.settings import MODEL_REPO_ID
from i2v.core.errors import I2VError

log = logging.getLogger(__name__)

DEFAULT_REPO_ID = MODEL_REPO_ID
HUB_PROBE_TIMEOUT_S = 3.0
COMPONENTS = ("unet", "text_encoder", "image_encoder", "vae")
# diffusers name, transformers 5 name, transformers 4 name (deprecated in 5)
CHECKPOINTING_METHODS = ("enable_gradient_checkpointing", "activation_checkpointing_enable", "gradient_checkpointing_enable")

# Optimisation outcome statuses (the load report's vocabulary).
APPLIED = "applied"
NOT_SUPPORTED = "not supported"
NO_EFFECT = "no effect at inference"
SKIPPED = "skipped"

GET_REAL_WEIGHTS_HINT = (
    f"To use the real model, download it once with network access: "
    f"`huggingface-cli download {DEFAULT_REPO_ID}` (the fp16 weights alone are 4.6 GiB), or pass "
    f"`--model /path/to/a/diffusers/folder`, then restart with `--model auto` or `--model {DEFAULT_REPO_ID}`."
)


class ModelUnavailable(I2VError, RuntimeError):
    """The requested model cannot be loaded here (not cached and the hub is unreachable)."""


# ----------------------------------------------------------------------------------------------------------
# Choosing the model
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    spec: str              # what the user asked for (auto / tiny / repo id / folder)
    kind: str              # "tiny" | "local" | "hub"
    source: str            # path or repo id actually loaded ("tiny" for the tiny model)
    banner: str | None = None   # shown in the UI and the log when the output will be noise

    @property
    def is_placeholder(self) -> bool:
        return self.kind == "tiny"


def tiny_banner(reason: str) -> str:
    return (
        f"Running the built-in TINY test model ({reason}): its output is random noise, not a real video. "
        + GET_REAL_WEIGHTS_HINT
    )


def _cached_snapshot(repo_id: str) -> str | None:
    """Path of a complete local snapshot of repo_id in the HF cache, without touching the network."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
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


def choose_model(spec: str) -> ModelChoice:
    """Resolve --model / I2V_MODEL: auto, tiny, a local diffusers folder, or a Hub repo id."""
    spec = (spec or "auto").strip()
    if spec == "tiny":
        return ModelChoice(spec, "tiny", "tiny", tiny_banner("--model tiny"))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelUnavailable(f"{path} is not a diffusers model folder (no model_index.json)")
        return ModelChoice(spec, "local", str(path.resolve()))
    repo_id = DEFAULT_REPO_ID if spec == "auto" else spec
    snapshot = _cached_snapshot(repo_id)
    if snapshot:
        return ModelChoice(spec, "local", snapshot)
    if _hub_reachable(repo_id):
        return ModelChoice(spec, "hub", repo_id)
    if spec == "auto":
        return ModelChoice(spec, "tiny", "tiny", tiny_banner(f"{repo_id} is not in the local cache and the Hub is unreachable"))
    raise ModelUnavailable(f"{repo_id} is not in the local Hugging Face cache and the Hub is unreachable. " + GET_REAL_WEIGHTS_HINT)


# ----------------------------------------------------------------------------------------------------------
# Load plan and report
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadPlan:
    """What the loader will do on a device: decided from a device description alone (unit-testable)."""
    device: str            # "cuda" | "cpu"
    dtype: str             # "float16" | "float32"
    variant: str | None    # "fp16" on CUDA for Hub/local weights
    attention: str         # "xformers" | "sdpa"
    checkpoint_components: tuple[str, ...] = COMPONENTS


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    detail: str


@dataclass
class LoadReport:
    model: str
    kind: str
    device: str
    dtype: str
    outcomes: list[Outcome] = field(default_factory=list)
    load_seconds: float = 0.0
    banner: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        return [f"{o.name}: {o.status} — {o.detail}" for o in self.outcomes]


def xformers_importable() -> bool:
    return importlib.util.find_spec("xformers") is not None


def plan_load(device: str, has_xformers: bool) -> LoadPlan:
    """fp16 + xformers-or-SDPA on CUDA; float32 + SDPA on CPU."""
    if device == "cuda":
        return LoadPlan("cuda", "float16", "fp16", "xformers" if has_xformers else "sdpa")
    return LoadPlan("cpu", "float32", None, "sdpa")


def dtype_outcome(plan: LoadPlan) -> Outcome:
    if plan.dtype == "float16":
        return Outcome("fp16", APPLIED, "weights loaded as torch.float16 (fp16 variant) on CUDA")
    return Outcome("fp16", SKIPPED, "CPU run: float32, since fp16 kernels on CPU are slow or missing")


def apply_attention(pipe, plan: LoadPlan) -> Outcome:
    """xformers where planned and working; otherwise PyTorch SDPA, which diffusers already uses by default."""
    if plan.attention == "xformers":
        try:
            pipe.enable_xformers_memory_efficient_attention()
            return Outcome("attention", APPLIED, "xformers memory-efficient attention")
        except Exception as exc:  # noqa: BLE001 - fall back to SDPA and say why
            log.warning("xformers could not be enabled: %s", exc)
            return Outcome("attention", APPLIED, f"PyTorch SDPA (xformers failed: {type(exc).__name__}: {exc})")
    detail = "PyTorch SDPA (AttnProcessor2_0, the diffusers default"
    detail += "; memory-efficient/flash kernels on CUDA)" if plan.device == "cuda" else "; xformers is CUDA-only)"
    return Outcome("attention", APPLIED, detail)


def apply_gradient_checkpointing(pipe, plan: LoadPlan) -> list[Outcome]:
    """Request checkpointing on every component and record what each did (docs/facts.md: nothing at inference)."""
    outcomes = []
    for name in plan.checkpoint_components:
        component = getattr(pipe, name, None)
        label = f"gradient checkpointing ({name})"
        enable = next((getattr(component, m) for m in CHECKPOINTING_METHODS if hasattr(component, m)), None)
        if enable is None:
            outcomes.append(Outcome(label, NOT_SUPPORTED, "the component has no gradient checkpointing switch"))
            continue
        try:
            enable()
        except (ValueError, NotImplementedError, AttributeError) as exc:
            outcomes.append(Outcome(label, NOT_SUPPORTED, f"{type(exc).__name__}: {exc}"))
            continue
        outcomes.append(Outcome(
            label, NO_EFFECT,
            "accepted, but it only acts when gradients are computed; generation runs under torch.no_grad(), "
            "so it saves no memory",
        ))
    return outcomes


def fix_text_encoder_alias(pipe) -> Outcome | None:
    """transformers 5 dropped CLIPTextModel.text_model, which the pipeline's clip_skip path uses (docs/facts.md)."""
    encoder = pipe.text_encoder
    if hasattr(encoder, "text_model"):
        return None
    object.__setattr__(encoder, "text_model", encoder)  # non-registering alias: state dict unchanged
    return Outcome("text encoder compatibility", APPLIED, "aliased text_encoder.text_model for transformers 5")


def apply_optimisations(pipe, plan: LoadPlan) -> list[Outcome]:
    outcomes = [dtype_outcome(plan), apply_attention(pipe, plan)]
    outcomes += apply_gradient_checkpointing(pipe, plan)
    alias = fix_text_encoder_alias(pipe)
    if alias:
        outcomes.append(alias)
    outcomes.append(Outcome(
        "attention slicing", SKIPPED, "not used: it does nothing to this UNet; the plan of each job (CFG split, "
        "exact UNet chunking, offload, decode chunk, VAE tiling) is chosen by the memory model",
    ))
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


def detect_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _build_pipe(choice: ModelChoice, plan: LoadPlan):
    import torch
    from diffusers import I2VGenXLPipeline

    dtype = getattr(torch, plan.dtype)
    if choice.kind == "tiny":
        from i2v.tiny_model import build_tiny_components

        pipe = I2VGenXLPipeline(**build_tiny_components())
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    kwargs = {"torch_dtype": dtype}
    if plan.variant:
        kwargs["variant"] = plan.variant
    return I2VGenXLPipeline.from_pretrained(choice.source, **kwargs)


def load_pipeline(choice: ModelChoice, device: str | None = None) -> LoadedPipeline:
    """Load the chosen model on the device with the planned optimisations; returns it with its report."""
    started = time.perf_counter()
    device = device or detect_device()
    plan = plan_load(device, device == "cuda" and xformers_importable())
    pipe = _build_pipe(choice, plan)
    pipe.set_progress_bar_config(disable=True)
    outcomes = apply_optimisations(pipe, plan)
    pipe.to(plan.device)
    report = LoadReport(
        model=choice.source, kind=choice.kind, device=plan.device, dtype=plan.dtype,
        outcomes=outcomes, load_seconds=round(time.perf_counter() - started, 3), banner=choice.banner,
    )
    for line in report.lines():
        log.info("load report: %s", line)
    return LoadedPipeline(pipe=pipe, plan=plan, report=report, choice=choice, hooks=PhaseHooks(pipe))


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------
PhaseListener = Callable[[str, int, int], None]   # (phase, occurrence within the run (1-based), total or 0)
CancelCheck = Callable[[], None]                  # raises to stop the run (the job's cancel check)


class PhaseHooks:
    """Forward pre-hooks on the encoders and the UNet that report each phase to the current listener.

    The pipeline has no step callback (docs/facts.md); with CFG batched there is exactly one UNet forward per step.
    A listener may raise to stop the run (cancel, injected faults): the pipeline stays reusable.
    """

    def __init__(self, pipe):
        self.listener: PhaseListener | None = None
        self.total_steps = 0
        self._counts: dict[str, int] = {}
        pipe.text_encoder.register_forward_pre_hook(lambda *_: self.fire("text_encode"))
        pipe.image_encoder.register_forward_pre_hook(lambda *_: self.fire("image_encode"))
        pipe.unet.register_forward_pre_hook(lambda *_: self.fire("denoise", self.total_steps))

    def start(self, listener: PhaseListener | None, total_steps: int) -> None:
        self.listener, self.total_steps, self._counts = listener, total_steps, {}

    def fire(self, phase: str, total: int = 0) -> None:
        self._counts[phase] = self._counts.get(phase, 0) + 1
        if self.listener is not None:
            self.listener(phase, self._counts[phase], total)


FP8_STORAGE = "float8_e4m3fn"          # torch dtype name for fp8 weight storage (layerwise casting)
GROUP_OFFLOAD_TYPE = "leaf_level"        # leaf level + CUDA streams: almost no weights resident, transfers overlap


def configure_memory_knobs(loaded: LoadedPipeline, request: GenerationRequest) -> None:
    """Apply the request's plan to the loaded pipeline; one loaded model can run any plan.

    Reversible parts are switched in place (VAE tiling, CFG split and chunked UNet wrappers, model and
    sequential offload). fp8 storage and group offloading cannot be undone in diffusers: leaving them reloads
    the weights. The UNet wrappers go on last, over whatever hooks the offload and casting installed.
    """
    from i2v.chunking import apply_unet_plan
    from i2v.core.memory import VAE_TILE_SAMPLE_SIZE

    pipe = loaded.pipe
    if request.vae_tiling:   # the tile size the memory profile was traced with
        pipe.vae.enable_tiling()
        pipe.vae.tile_sample_min_size = VAE_TILE_SAMPLE_SIZE
        pipe.vae.tile_latent_min_size = VAE_TILE_SAMPLE_SIZE // 8
    else:
        pipe.vae.disable_tiling()
    on_cuda = loaded.plan.device == "cuda"
    offload = request.offload if on_cuda else "none"   # on CPU every weight already lives in RAM
    irreversible = ((loaded.weights_dtype == "fp8" and request.weights_dtype != "fp8")
                    or (loaded.offload == "group" and offload != "group"))
    if irreversible:
        reload_weights(loaded)
        pipe = loaded.pipe
    apply_unet_plan(pipe.unet, False, 0)          # off while hooks underneath change
    if request.weights_dtype == "fp8" and loaded.weights_dtype != "fp8":
        import torch

        compute = torch.float16 if on_cuda else torch.float32
        pipe.unet.enable_layerwise_casting(storage_dtype=getattr(torch, FP8_STORAGE), compute_dtype=compute)
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
    apply_unet_plan(pipe.unet, request.cfg_split, request.chunk_tokens)


def reload_weights(loaded: LoadedPipeline) -> None:
    """Load the pipeline again (same model, same load plan): the way back from fp8 storage or group offload."""
    log.info("reloading the weights to leave fp8 storage / group offloading")
    pipe = _build_pipe(loaded.choice, loaded.plan)
    pipe.set_progress_bar_config(disable=True)
    apply_optimisations(pipe, loaded.plan)
    pipe.to(loaded.plan.device)
    loaded.pipe, loaded.hooks = pipe, PhaseHooks(pipe)
    loaded.offload, loaded.weights_dtype = "none", "fp16"


def sample_latents(loaded: LoadedPipeline, image, request: GenerationRequest, seed: int, listener: PhaseListener | None,
                   check: CancelCheck | None = None):
    """Encode, then run the denoising loop; returns the latents (decode happens in decode_frames).

    `check` (the job's cancel check) also runs inside each step, before each attention, feed-forward and
    convolution of the UNet and VAE (i2v.cancel_points): a Stop takes effect within a layer, not at the step's end."""
    import torch

    from i2v import cancel_points

    configure_memory_knobs(loaded, request)
    loaded.hooks.start(listener, request.num_inference_steps)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)   # the pipeline samples the image latents from the global RNG (no generator)
    with cancel_points.installed(loaded.pipe, check):   # after configure: a reload replaces the modules
        output = loaded.pipe(
            prompt=request.prompt,
            image=image,
            negative_prompt=request.negative_prompt or None,
            height=request.height,
            width=request.width,
            num_frames=request.num_frames,
            target_fps=request.fps,
            num_inference_steps=request.num_inference_steps,
            guidance_scale=request.guidance_scale,
            generator=generator,
            output_type="latent",
        )
    return output.frames


def decode_frames(loaded: LoadedPipeline, latents, request: GenerationRequest, listener: PhaseListener | None,
                  check: CancelCheck | None = None):
    """Decode latents chunk by chunk (one 'decode' event per chunk) into uint8 frames of shape (F, H, W, 3);
    `check` runs inside the VAE as in sample_latents."""
    import numpy as np
    import torch

    from i2v import cancel_points

    configure_memory_knobs(loaded, request)
    num_frames = latents.shape[2]
    chunk = max(1, request.decode_chunk_size)
    total_chunks = -(-num_frames // chunk)
    pieces = []
    with torch.no_grad(), cancel_points.installed(loaded.pipe, check, models=[loaded.pipe.vae]):
        for index, start in enumerate(range(0, num_frames, chunk), start=1):
            if listener is not None:
                listener("decode", index, total_chunks)
            part = latents[:, :, start:start + chunk]
            pieces.append(loaded.pipe.decode_latents(part, decode_chunk_size=chunk))
        video = torch.cat(pieces, dim=2)
        frames = loaded.pipe.video_processor.postprocess_video(video=video, output_type="np")[0]
    return (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)


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
