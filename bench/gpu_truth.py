"""The GPU truth kit: every memory and speed claim measured on a real card in one run of <= 8 minutes.

Why: every GPU figure of this app is a prediction of the memory engine (i2v.core.memory). When a GPU machine
is lent, this one command measures them, through the app's own driver (i2v.pipeline, i2v.runner's OOM guard):

1. the CUDA context with cuBLAS/cuDNN loaded and a conv's workspace (the terms the model assumes);
2. each headline claim (I2VGen-XL 1024x1024x32 on 8 GiB, 1280x704x16 on 6, 512x512x16 on 4; Wan 2.2 TI2V-5B
   1280x704x121 on 12, 832x480x81 on 8; LTX-Video 768x512x121 on 6), on the card size and on what such a card really has free
   (8 -> 7.3, 6 -> 5.4, 4 -> 3.5, 12 -> 11.2 GiB): the plan `fit` chooses, run for 2 denoise steps and the
   decode with the caching allocator capped (`i2v.gpu.enforce_vram_limit`, the app's --vram-limit), peak
   allocated/reserved per phase beside the prediction;
3. an OOM drill: a plan the engine would never choose on a small cap, a real CUDA OOM, the guard's recovery
   down the ladder and the next plan succeeding (logs/oom.jsonl, in the app's format);
4. i2v.calibrate's factors (configs/calibration.json) plus the measured terms, then the -5 %/+15 % verdict
   on the calibrated predictions (exit status 1 when one is off);
5. seconds per step of plain / CFG split / chunked / group offload / sequential as ratios to plain.

Full-size components are built with random weights directly on the GPU (no download: the values do not change
memory or time). Work is ordered by value and guarded by a time budget (--budget-s, default 480); the results
file is rewritten after every row, so a stopped run leaves what it measured.

`--dry-run`: the same code path on the CPU with the tiny families, small shapes and simulated caps (the
plan must fit the cap by prediction; the OOM drill's OOM is simulated from the prediction): figures are CPU
RSS of the tiny models, labelled "dry run", never GPU figures. No CUDA call. tests/test_gpu_truth.py runs it.

Carry step (the GPU machine: Python 3.12 with torch, transformers, accelerate, psutil, Pillow, nvidia-ml-py;
no diffusers, no network). Tested here: the five wheels below are 36 MB (the carry limit is 64 MiB).
    here:  .venv/bin/pip download diffusers==0.42.1 imageio-ffmpeg ftfy wcwidth importlib_metadata --no-deps \
               --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .wheels
           echo /.wheels/ >> .git/info/exclude          (never commit wheels)
    there: the device tool's `run` with carry [".wheels"] and the command
           pip install --no-index --no-deps .wheels/*.whl && I2V_COMMIT=<sha> PYTHONPATH=. PYTHONUNBUFFERED=1 \
           timeout -s TERM 540 python3 bench/gpu_truth.py --out $OUT --logs $OUT --json $OUT/gpu_truth.json
           (SIGTERM at the limit still writes the results; copy $OUT/gpu_truth.md to bench/results/ and the
           written configs/calibration.json back here and commit them.)
Writes bench/results/gpu_truth.md (table, machine, commit) and, on a GPU only, configs/calibration.json.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, ROOT, machine_line, md_table  # noqa: E402
from i2v.core.units import GIB, MIB  # noqa: E402

NOT_MEASURED = "not measured on a GPU"
RESULT_NAME = "gpu_truth.md"
DEFAULT_BUDGET_S = 480.0
STEPS = 2
LOW, HIGH = -0.05, 0.15          # allowed prediction error: at most 5 % under the measurement, 15 % over it
I2VGEN, WAN, LTX = "i2vgen-xl", "wan2.2-ti2v-5b", "ltx-video"


@dataclass(frozen=True)
class Claim:
    family: str
    width: int
    height: int
    frames: int
    card_gib: float         # what the card is sold as
    free_gib: float         # what such a card really has free
    host_gib: float         # the host RAM the claim was made with

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}x{self.frames}"


CLAIMS = (
    Claim(I2VGEN, 1024, 1024, 32, 8, 7.3, 32), Claim(I2VGEN, 1280, 704, 16, 6, 5.4, 32),
    Claim(I2VGEN, 512, 512, 16, 4, 3.5, 32),
    Claim(WAN, 1280, 704, 121, 12, 11.2, 64), Claim(WAN, 832, 480, 81, 8, 7.3, 32),
    Claim(LTX, 768, 512, 121, 6, 5.4, 32),
)
DRY_SHAPE = {I2VGEN: (64, 64, 4), WAN: (64, 64, 5), LTX: (64, 64, 9)}     # the tiny models' stand-in shapes on the CPU
DRILL = Claim(I2VGEN, 512, 512, 16, 4, 4, 32)               # the OOM drill: this request, a plan never chosen
SPEED_SHAPE = (512, 512, 16)
SPEED_PLANS = ("plain", "cfg_split", "chunked", "group", "sequential")


def verdict(predicted: float, measured: float, low: float = LOW, high: float = HIGH) -> tuple[bool, float]:
    """(within the band?, error): error = predicted / measured - 1, allowed in [low, high]: a prediction may
    overstate the memory by up to 15 % (wasted headroom) but understate it by at most 5 % (an OOM)."""
    if measured <= 0:
        raise ValueError("measured must be positive")
    error = predicted / measured - 1.0
    return low <= round(error, 9) <= high, error        # rounded: 95 / 100 - 1 is -0.0500000000000000444


def gib(value) -> str:
    return "" if value is None else f"{value / GIB:.2f}"


def commit() -> str:
    found = os.environ.get("I2V_COMMIT")
    if found:
        return found
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "unknown"
    return "unknown"


# ---------------------------------------------------------------------------------------------------------
# time budget and results
# ---------------------------------------------------------------------------------------------------------
class Budget:
    """Seconds left of the run; each piece of work asks before it starts."""

    def __init__(self, seconds: float):
        self.seconds, self.started = seconds, time.monotonic()

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def allows(self, needed_s: float) -> bool:
        return self.left() >= needed_s


@dataclass
class Results:
    """Everything measured so far; rendered to Markdown after every row."""
    dry_run: bool
    path: Path
    machine: str = ""
    claims: list[dict] = field(default_factory=list)
    phases: list[list] = field(default_factory=list)
    drill: dict | None = None
    terms: dict = field(default_factory=dict)
    speed: list[dict] = field(default_factory=list)
    attention: str = ""
    calibration: dict | None = None
    progress: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    measured_terms: dict = field(default_factory=dict)     # raw figures for i2v.calibrate.store_measured_terms

    def note(self, line: str) -> None:
        stamp = f"[{time.strftime('%H:%M:%S')}] {line}"
        self.progress.append(stamp)
        print(stamp, flush=True)

    def render(self) -> str:
        label = (f"**DRY RUN — {NOT_MEASURED}.** CPU, tiny models at stand-in shapes, simulated caps: the "
                 "measured columns are CPU RSS of the tiny models (dry run), not GPU memory; predictions are the "
                 "full-size model's." if self.dry_run else
                 "**Measured on a GPU** (random full-size weights, caps via set_per_process_memory_fraction).")
        lines = ["# GPU truth", "", label, "", f"Commit: {commit()}", "", self.machine or machine_line(), ""]
        lines += ["## Headline claims", "",
                  "Predicted: the engine's peak (footprint + reserve) for the plan `fit` chose at the cap; "
                  "measured: max reserved (allocated) over the job + the measured CUDA context; error = predicted "
                  "footprint / measured - 1, allowed -5 %..+15 %.", ""]
        header = ["family", "request", "card", "cap GiB", "plan", "predicted peak GiB", "predicted footprint GiB",
                  "fits by prediction", "measured GiB", "allocated GiB", "error", "verdict"]
        lines += [md_table(header, [[c.get(k, "") for k in
                                    ("family", "request", "card", "cap", "plan", "predicted_peak",
                                     "predicted_footprint", "fits", "measured", "allocated", "error", "verdict")]
                                   for c in self.claims]), ""]
        lines += ["## Per phase", "", md_table(["family", "request", "cap GiB", "phase", "predicted GiB",
                                               "measured reserved GiB", "measured allocated GiB"], self.phases), ""]
        lines += ["## OOM drill", ""]
        if self.drill:
            lines += [f"- request: {self.drill['request']}, cap {self.drill['cap']} GiB, forced plan "
                      f"{self.drill['forced']} (predicted {self.drill['forced_peak']} GiB)",
                      f"- OOMs: {self.drill['ooms']} ({self.drill['kind']})",
                      f"- recovered: {'yes' if self.drill['recovered'] else 'no'}; plan that ran: "
                      f"{self.drill['final_plan']}",
                      f"- ladder: {' -> '.join(self.drill['ladder']) or 'none'}",
                      f"- log: {self.drill['log']}", ""]
        else:
            lines += ["not run", ""]
        lines += ["## Measured terms", "", md_table(["term", "assumed", "measured"],
                                                    [[k, *v] for k, v in self.terms.items()]), ""]
        lines += ["## Speed (seconds per denoise step, ratio to plain)", "",
                  f"Attention backend: {self.attention or 'unknown'}", "",
                  md_table(["plan", "s / step", "ratio to plain", "note"],
                           [[s["plan"], s["seconds"], s["ratio"], s["note"]] for s in self.speed]), ""]
        lines += ["## Calibration", ""]
        lines += ([f"```json\n{json.dumps(self.calibration, indent=1)}\n```"] if self.calibration
                  else ["not written (" + ("dry run" if self.dry_run else "not reached") + ")"]) + [""]
        if self.failures:
            lines += ["## Failures", ""] + [f"- {f}" for f in self.failures] + [""]
        lines += ["## Progress", ""] + [f"- {p}" for p in self.progress]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        from i2v.files import write_text_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, self.render())


# ---------------------------------------------------------------------------------------------------------
# the engine's side: memory models, the chosen plan, predictions (pure Python)
# ---------------------------------------------------------------------------------------------------------
def memory_model(family_name: str, calibrated: bool = True):
    from i2v import configs
    from i2v.models import DEFAULT_FAMILY, by_name

    family = by_name(family_name)
    if family is DEFAULT_FAMILY:
        return configs.load_memory_model() if calibrated else configs.memory_model_for(
            configs.read_json(family.profile_path()), calibrated=False)
    return configs.memory_model_for(configs.read_json(family.profile_path()), calibrated=False)


def claim_request(claim: Claim, steps: int = STEPS):
    from i2v.core.request import GenerationRequest
    from i2v.models import by_name

    rules = by_name(claim.family).rules
    return GenerationRequest(prompt="a truth run", width=claim.width, height=claim.height, num_frames=claim.frames,
                             fps=rules.setting("fps").default, num_inference_steps=steps,
                             guidance_scale=float(rules.setting("guidance_scale").default),
                             resolution=min(claim.width, claim.height))


def chosen_plan(claim: Claim, cap_gib: float):
    """The engine's decision for the claim at a cap: (fitted request, prediction, adjustments) or raises."""
    from i2v.core.clamp import fit
    from i2v.models import by_name

    family = by_name(claim.family)
    result = fit(claim_request(claim), int(cap_gib * GIB), memory_model(claim.family), family.cuda_dtype,
                 host_bytes=int(claim.host_gib * GIB), rules=family.rules)
    return result.request, result.prediction, result.adjustments


def plan_text(request) -> str:
    plan = request.plan
    parts = [f"offload={plan.offload}"]
    parts += ["cfg_split"] if plan.cfg_split else []
    parts += [f"chunk={plan.chunk_tokens}"] if plan.chunk_tokens else []
    parts += [f"decode_chunk={plan.decode_chunk}", plan.weights_dtype]
    parts += ["vae_tiling"] if plan.vae_tiling else []
    parts += ["text_encoder_cpu"] if plan.text_encoder_cpu else []
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# memory meters: CUDA peak stats per phase, or (dry run) sampled CPU RSS
# ---------------------------------------------------------------------------------------------------------
class CudaMeter:
    """Per phase of a job: max_memory_allocated / max_memory_reserved, reset at each phase change."""

    label = "cuda"

    def __init__(self):
        self.phases: dict[str, tuple[int, int]] = {}
        self.current: str | None = None

    def _close(self) -> None:
        import torch

        if self.current is not None:
            allocated, reserved = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
            old = self.phases.get(self.current, (0, 0))
            self.phases[self.current] = (max(old[0], allocated), max(old[1], reserved))
        torch.cuda.reset_peak_memory_stats()

    def start(self) -> None:
        import torch

        torch.cuda.synchronize()
        self.phases, self.current = {}, None
        torch.cuda.reset_peak_memory_stats()

    def event(self, phase: str) -> None:
        if phase in ("attempt", "save") or phase == self.current:
            return
        self._close()
        self.current = phase

    def stop(self) -> dict[str, tuple[int, int]]:
        import torch

        torch.cuda.synchronize()
        self._close()
        self.current = None
        return dict(self.phases)


class RssMeter(CudaMeter):
    """Dry run: the process's RSS sampled every 2 ms, its peak per phase (both columns the same figure)."""

    label = "dry run (CPU RSS)"

    def __init__(self):
        super().__init__()
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, process.memory_info().rss)

    def _close(self) -> None:
        import psutil

        peak = max(self._peak, psutil.Process().memory_info().rss)
        if self.current is not None:
            old = self.phases.get(self.current, (0, 0))
            self.phases[self.current] = (max(old[0], peak), max(old[1], peak))
        self._peak = 0

    def start(self) -> None:
        self.phases, self.current, self._peak = {}, None, 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, tuple[int, int]]:
        self._close()
        self.current = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return dict(self.phases)


# ---------------------------------------------------------------------------------------------------------
# the app's side: a loaded pipeline driven by i2v.pipeline and i2v.runner
# ---------------------------------------------------------------------------------------------------------
class TruthRuntime:
    """The family's runtime (i2v/models/*_runtime.py) with three additions, installed on the LoadedPipeline
    only: it builds the full-size random model on reloads, records the request each call runs, and in the dry
    run raises a simulated OOM when the request's predicted peak exceeds the simulated cap."""

    def __init__(self, inner, family, builder=None):
        self.inner, self.family, self.builder = inner, family, builder
        self.current = None
        self.simulated_cap: int | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def build_pipeline(self, kind, source, dtype, variant=None):
        if self.builder is not None:
            return self.builder()
        return self.inner.build_pipeline(kind, source, dtype, variant)

    def on_phase(self, phase: str) -> None:
        """At a phase event of the job (the runner's listener): the dry run's simulated OOM, raised inside the
        phase as a real one would be, when the running request's predicted peak exceeds the simulated cap."""
        if self.simulated_cap is None or self.current is None or phase not in ("denoise", "decode"):
            return
        import torch

        from i2v.core.memory import predict

        prediction = predict(memory_model(self.family.name), self.current, dtype=self.family.cuda_dtype)
        figures = [p.total_bytes for p in prediction.phases if (p.phase == "decode") == (phase == "decode")]
        need = max(figures) + prediction.reserve_bytes
        if need > self.simulated_cap:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory (simulated by the dry run: {phase} predicted {need / GIB:.2f} GiB "
                f"> cap {self.simulated_cap / GIB:.2f} GiB)")

    def call_kwargs(self, request, image, generator):
        self.current = request
        return self.inner.call_kwargs(request, image, generator)

    def decode(self, pipe, latents, request, listener=None, check=None):
        self.current = request
        return self.inner.decode(pipe, latents, request, listener, check)


def build_random_full_size(family):
    """The family's full-size pipeline with random weights, built directly on the GPU in its dtype (the app's
    profile builders with device="cuda"); tokenizers are the tiny byte-level ones (ids fit any vocabulary)."""
    import torch

    if family.name == I2VGEN:
        import tempfile

        from diffusers import DDIMScheduler, I2VGenXLPipeline
        from transformers import CLIPTokenizer

        try:
            from transformers import CLIPImageProcessorPil as ImageProcessor     # transformers >= 5.2x
        except ImportError:
            from transformers import CLIPImageProcessor as ImageProcessor

        from i2v import profile
        from i2v.paths import model_config_dir
        from i2v.tiny_model import write_byte_level_tokenizer_files

        meta = profile.build_meta_model("fp16", device="cuda")
        size = meta.image_encoder.config.image_size
        with tempfile.TemporaryDirectory(prefix="i2v-truth-tok-") as tmp:
            tokenizer = CLIPTokenizer.from_pretrained(str(write_byte_level_tokenizer_files(Path(tmp))),
                                                      model_max_length=77)
        scheduler = DDIMScheduler.from_config(json.loads((model_config_dir() / "scheduler.json").read_text()))
        pipe = I2VGenXLPipeline(vae=meta.vae, text_encoder=meta.text_encoder, tokenizer=tokenizer,
                                image_encoder=meta.image_encoder, unet=meta.unet, scheduler=scheduler,
                                feature_extractor=ImageProcessor(crop_size={"height": size, "width": size},
                                                                 size={"shortest_edge": size}))
    elif family.name == LTX:
        from diffusers import FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline

        from i2v.models import ltx_trace, wan_runtime

        meta = ltx_trace.build_meta_model(family.cuda_dtype, family.full_size_configs(), device="cuda")
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            json.loads((family.configs_dir() / "scheduler.json").read_text()))
        pipe = LTXImageToVideoPipeline(scheduler=scheduler, vae=meta.vae, text_encoder=meta.text_encoder,
                                       tokenizer=wan_runtime._tiny_tokenizer(), transformer=meta.transformer)
    else:
        from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline

        from i2v.models import wan_runtime, wan_trace

        meta = wan_trace.build_meta_model(family.cuda_dtype, family.full_size_configs(), device="cuda")
        scheduler = UniPCMultistepScheduler.from_config(
            json.loads((family.configs_dir() / "scheduler.json").read_text()))
        pipe = WanImageToVideoPipeline(tokenizer=wan_runtime._tiny_tokenizer(), text_encoder=meta.text_encoder,
                                       vae=meta.vae, scheduler=scheduler, transformer=meta.transformer,
                                       expand_timesteps=True)
    pipe.set_progress_bar_config(disable=True)
    gc.collect()
    torch.cuda.empty_cache()
    return pipe


def load(family_name: str, dry_run: bool):
    """A LoadedPipeline as i2v.pipeline.load_pipeline makes it (same plan, optimisations and report), over the
    tiny model on the CPU (dry run) or the random full-size one on the GPU, with a TruthRuntime."""
    from i2v import pipeline as pl
    from i2v.models import by_name

    family = by_name(family_name)
    started = time.perf_counter()
    if dry_run:
        loaded = pl.load_pipeline(pl.choose_model(family.tiny_alias), "cpu")
        loaded.runtime = TruthRuntime(loaded.runtime, family)
        return loaded
    runtime = TruthRuntime(family.load_runtime(), family, builder=lambda: build_random_full_size(family))
    choice = pl.ModelChoice(f"random-{family.name}", "random", f"random full-size {family.title}",
                            family=family.name, repo=family.repo_id)
    plan = pl.plan_load("cuda", pl.xformers_importable(), family)
    pipe = runtime.build_pipeline(choice.kind, choice.source, None)
    outcomes = pl.apply_optimisations(pipe, plan, runtime)
    pipe.to("cuda")
    report = pl.LoadReport(model=choice.source, kind=choice.kind, device="cuda", dtype=plan.dtype,
                           outcomes=outcomes, load_seconds=round(time.perf_counter() - started, 3),
                           family=family.name, repo=family.repo_id)
    return pl.LoadedPipeline(pipe=pipe, plan=plan, report=report, choice=choice,
                             hooks=pl.PhaseHooks(pipe, runtime), runtime=runtime)


def runner_for(loaded):
    """A LocalRunner holding this pipeline (its run() is the app's: OOM guard, fallback ladder, MP4)."""
    from i2v.runner import READY, LocalRunner

    runner = LocalRunner(model_spec=loaded.choice.spec, device=loaded.plan.device)
    runner._loaded = loaded
    runner._state.status = READY
    return runner


def input_image(width: int, height: int):
    from PIL import Image

    return Image.new("RGB", (width, height), (120, 90, 60))


class Cap:
    """The cap of one run: on a GPU the caching allocator's limit (i2v.gpu.enforce_vram_limit, as --vram-limit
    sets it) at the cap minus the measured CUDA context, which lives outside the allocator; in the dry run the
    TruthRuntime's simulated cap and I2V_SIMULATED_DEVICE (what the guard reads after an OOM)."""

    def __init__(self, dry_run: bool, context_bytes: int):
        self.dry_run, self.context_bytes = dry_run, context_bytes

    @contextlib.contextmanager
    def at(self, loaded, cap_bytes: int | None):
        if self.dry_run:
            previous = os.environ.get("I2V_SIMULATED_DEVICE")
            loaded.runtime.simulated_cap = cap_bytes
            if cap_bytes:
                os.environ["I2V_SIMULATED_DEVICE"] = f"cuda,{cap_bytes / GIB:.3f},{cap_bytes / GIB:.3f},64"
            try:
                yield
            finally:
                loaded.runtime.simulated_cap = None
                if previous is None:
                    os.environ.pop("I2V_SIMULATED_DEVICE", None)
                else:
                    os.environ["I2V_SIMULATED_DEVICE"] = previous
            return
        import torch

        from i2v import gpu

        try:
            if cap_bytes:
                gpu.enforce_vram_limit(max(GIB // 4, cap_bytes - self.context_bytes))
            yield
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)


def prepare(loaded, request) -> None:
    """Switch the pipeline to the request's plan before the cap goes on (offload moves, reloads), so the run
    measures the plan, not the switch; runner.run applies it again (then a no-op)."""
    from i2v import pipeline as pl

    pl.configure_memory_knobs(loaded, request)
    gc.collect()
    if loaded.plan.device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def run_job(loaded, request, cap_bytes, capper: Cap, meter, out_dir: Path, policy=None):
    """One job through LocalRunner.run under a cap: (RunOutput, per-phase peaks, seconds)."""
    prepare(loaded, request)
    runner = runner_for(loaded)

    def on_event(phase: str) -> None:
        meter.event(phase)
        loaded.runtime.on_phase(phase)

    meter.start()
    started = time.perf_counter()
    try:
        with capper.at(loaded, cap_bytes):
            output = runner.run(input_image(request.width, request.height), request, seed=0,
                                on_event=lambda phase, *_: on_event(phase), out_dir=out_dir, policy=policy)
    finally:
        phases = meter.stop()
    return output, phases, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------------
# the pieces of work, in order of value
# ---------------------------------------------------------------------------------------------------------
EVENT_COVERS = {"image_encode": ("image_encode", "vae_encode")}   # I2VGen's image event spans its VAE encode


def measure_context(results: Results, dry_run: bool) -> int:
    """The CUDA context with cuBLAS and cuDNN loaded (driver-used minus torch's reserve on a bare card), and a
    3x3 conv's cuDNN workspace (its peak allocation minus inputs, output and weights)."""
    assumed_ctx = f"{memory_model(I2VGEN).constants.cuda_context_gib:.2f} GiB"
    if dry_run:
        results.terms = {"cuda_context": [assumed_ctx, "dry run: not measured"],
                         "conv_workspace": ["in activations", "dry run: not measured"],
                         "allocator_overhead": [f"x{memory_model(I2VGEN).constants.activation_overhead:.2f}",
                                                "dry run: not measured"]}
        return 0
    import torch

    def used() -> int:
        torch.cuda.synchronize()
        free, total = torch.cuda.mem_get_info()
        return total - free - torch.cuda.memory_reserved()

    torch.zeros(1, device="cuda")
    bare = used()
    for dtype in (torch.float16, torch.bfloat16):
        a = torch.randn(1024, 1024, device="cuda", dtype=dtype)
        (a @ a).sum().item()
    blas = used()
    conv = torch.nn.Conv2d(512, 512, 3, padding=1).to("cuda", torch.float16)
    x = torch.randn(1, 512, 256, 256, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        conv(x)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        y = conv(x)
        torch.cuda.synchronize()
    workspace = max(0, torch.cuda.max_memory_allocated() - base - y.numel() * y.element_size())
    conv3 = torch.nn.Conv3d(128, 128, 3, padding=1).to("cuda", torch.float16)
    with torch.no_grad():
        conv3(torch.randn(1, 128, 8, 64, 64, device="cuda", dtype=torch.float16))
    context = used()
    del a, conv, x, y, conv3
    gc.collect()
    torch.cuda.empty_cache()
    results.terms = {"cuda_context (bare)": [assumed_ctx, gib(bare) + " GiB"],
                     "cuda_context (+cuBLAS)": [assumed_ctx, gib(blas) + " GiB"],
                     "cuda_context (+cuBLAS +cuDNN)": [assumed_ctx, gib(context) + " GiB"],
                     "conv_workspace (512ch 256x256 fp16 3x3)": ["in activations", f"{workspace / MIB:.0f} MiB"]}
    results.measured_terms = {"cuda_context_bytes": context, "cuda_context_bare_bytes": bare,
                               "cuda_context_cublas_bytes": blas, "conv_workspace_bytes": workspace}
    return context


OFFLOAD_ORDER = {"none": 0, "model": 1, "sequential": 2, "group": 3}   # group last: leaving it reloads weights


def plan_claims(results: Results, family_name: str) -> list[tuple[Claim, float, dict, object]]:
    """A row per claim at its card size and its free memory with the engine's plan and prediction; returns
    the runnable ones (claim, cap GiB, row, fitted request), ordered so no run has to leave group offload."""
    from i2v.models import by_name

    family = by_name(family_name)
    todo = []
    for claim in [c for c in CLAIMS if c.family == family_name]:
        for card, cap_gib in ((f"{claim.card_gib:g} GB card", claim.card_gib),
                              (f"{claim.card_gib:g} GB card, free", claim.free_gib)):
            row = {"family": family.title, "request": claim.label, "card": card, "cap": f"{cap_gib:g}"}
            results.claims.append(row)
            try:
                fitted, prediction, adjustments = chosen_plan(claim, cap_gib)
            except Exception as exc:  # noqa: BLE001 - DoesNotFit: the claim fails by prediction
                row.update(plan="none fits", fits="no", verdict=f"FAIL: {exc}")
                results.failures.append(f"{family.title} {claim.label} on {cap_gib:g} GiB: {exc}")
                continue
            row.update(plan=plan_text(fitted), predicted_peak=gib(prediction.peak_bytes),
                       predicted_footprint=gib(prediction.footprint_bytes),
                       fits="yes" if prediction.peak_bytes <= cap_gib * GIB and not adjustments else
                       f"changed: {', '.join(a.field for a in adjustments)}")
            todo.append((claim, cap_gib, row, fitted))
    results.write()
    return sorted(todo, key=lambda item: OFFLOAD_ORDER.get(item[3].offload, 0))


def measure_claims(results: Results, family_name: str, loaded, capper: Cap, budget: Budget, out_dir: Path,
                   dry_run: bool, per_run_s: float) -> list[dict]:
    """Each claim of the family at its card size and its free memory: the chosen plan, run and measured."""
    from i2v.core.memory import predict
    from i2v.models import by_name

    family = by_name(family_name)
    meter = RssMeter() if dry_run else CudaMeter()
    runs = []
    for claim, cap_gib, row, fitted in plan_claims(results, family_name):
        if not budget.allows(per_run_s):
            row["verdict"] = "skipped: time budget"
            results.note(f"skip {family.title} {claim.label} @ {cap_gib:g} GiB: time budget")
            results.write()
            continue
        request = fitted
        if dry_run:
            width, height, frames = DRY_SHAPE[family_name]
            request = fitted.replace(width=width, height=height, num_frames=frames, resolution=min(width, height))
        results.note(f"run {family.title} {claim.label} @ {cap_gib:g} GiB: {plan_text(fitted)}")
        try:
            output, phases, seconds = run_job(loaded, request, None if dry_run else int(cap_gib * GIB),
                                              capper, meter, out_dir)
        except Exception as exc:  # noqa: BLE001 - an OOM past the guard's attempts is a finding, not a crash
            row["verdict"] = f"FAIL: {type(exc).__name__}: {str(exc)[:160]}"
            results.failures.append(f"{family.title} {claim.label} @ {cap_gib:g} GiB: {row['verdict']}")
            results.write()
            continue
        ran = output.request
        ran_prediction = predict(memory_model(family_name), fitted.with_plan(ran.plan), dtype=family.cuda_dtype)
        context = capper.context_bytes
        reserved = max(r for _, r in phases.values()) if phases else 0
        allocated = max(a for a, _ in phases.values()) if phases else 0
        row.update(measured=gib(reserved + context), allocated=gib(allocated + context))
        if output.attempts:      # the engine's own choice ran out of memory: the claim failed as stated
            row["plan"] += f" -> OOM x{len(output.attempts)}, ran {plan_text(ran)}"
            results.failures.append(f"{family.title} {claim.label} @ {cap_gib:g} GiB: the chosen plan ran out of "
                                    f"memory ({output.attempts[0]['phase']}); the guard ran {plan_text(ran)}")
        if dry_run:
            row.update(error="", verdict=f"dry run ({request.width}x{request.height}x{request.num_frames} tiny, "
                                         f"{seconds:.1f} s)")
        else:
            ok, error = verdict(ran_prediction.footprint_bytes, reserved + context)
            row.update(error=f"{error:+.1%}", verdict=("ok" if ok else "OFF") + f" ({seconds:.0f} s)")
        by_phase = {p.phase: p.total_bytes for p in ran_prediction.phases}
        for phase, (alloc, res) in phases.items():
            covered = [by_phase[p] for p in EVENT_COVERS.get(phase, (phase,)) if p in by_phase]
            results.phases.append([family.title, claim.label, f"{cap_gib:g}", phase,
                                   gib(max(covered)) if covered else "", gib(res + context), gib(alloc + context)])
        runs.append({"claim": claim, "cap_gib": cap_gib, "request": fitted.with_plan(ran.plan),
                     "reserved": reserved, "allocated": allocated, "row": row, "phases": phases})
        results.write()
    return runs


def oom_drill(results: Results, loaded, capper: Cap, out_dir: Path, logs_dir: Path, dry_run: bool) -> None:
    """A plan the engine would never choose (no offload, no split, no chunking, the whole clip decoded at once)
    on a small cap: a real CUDA OOM (simulated from the prediction in the dry run), the guard's retries down the
    ladder, the run finishing; each OOM appended to logs/oom.jsonl the way the service does it."""
    from types import SimpleNamespace

    from i2v.core import fallback
    from i2v.core.memory import predict
    from i2v.models import by_name
    from i2v.runner import FallbackPolicy
    from i2v.service import GenerationService

    family = by_name(DRILL.family)
    model = memory_model(DRILL.family)
    request = claim_request(DRILL)
    if dry_run:
        width, height, frames = DRY_SHAPE[DRILL.family]
        request = request.replace(width=width, height=height, num_frames=frames, resolution=min(width, height))
    forced = request.replace(offload="none", cfg_split=False, chunk_tokens=0, decode_chunk_size=request.num_frames,
                             vae_tiling=False, text_encoder_cpu=False)
    forced_peak = predict(model, forced, dtype=family.cuda_dtype).peak_bytes
    cap = int(DRILL.card_gib * GIB)
    if dry_run:        # a cap just under the forced plan: its first ladder notch fits, the forced plan does not
        notch = fallback.next_fallback(forced, model, family.cuda_dtype, rules=family.rules)
        cap = predict(model, notch[0], dtype=family.cuda_dtype).peak_bytes if notch else forced_peak - 1
    results.note(f"OOM drill: {forced.width}x{forced.height}x{forced.num_frames} {plan_text(forced)} "
                 f"(predicted {gib(forced_peak)} GiB) on a {gib(cap)} GiB cap")
    meter = RssMeter() if dry_run else CudaMeter()
    drill = {"request": f"{family.title} {forced.width}x{forced.height}x{forced.num_frames}", "cap": gib(cap),
             "forced": plan_text(forced), "forced_peak": gib(forced_peak), "ooms": 0,
             "kind": "simulated from the prediction (dry run)" if dry_run else "real CUDA OOM",
             "recovered": False, "final_plan": "", "ladder": [], "log": str(logs_dir / "oom.jsonl")}
    results.drill = drill
    forced = fallback.ranked_request(forced, model, family.cuda_dtype, rules=family.rules)   # what the clamp carries
    try:
        output, _, _ = run_job(loaded, forced, cap, capper, meter, out_dir,
                               policy=FallbackPolicy(auto=True, max_attempts=12))
    except Exception as exc:  # noqa: BLE001 - the guard gave up: record it
        attempts = getattr(exc, "report", {}).get("attempts", [])
        drill.update(ooms=len(attempts), final_plan=f"failed: {type(exc).__name__}: {str(exc)[:200]}",
                     ladder=[a.get("fallback", "") for a in attempts])
        GenerationService._log_ooms(SimpleNamespace(logs_dir=logs_dir), attempts, "failed")
        results.failures.append("OOM drill did not recover: " + drill["final_plan"])
        results.write()
        return
    GenerationService._log_ooms(SimpleNamespace(logs_dir=logs_dir), output.attempts, "recovered")
    drill.update(ooms=len(output.attempts), recovered=bool(output.attempts), final_plan=plan_text(output.request),
                 ladder=[a.get("fallback", "") for a in output.attempts])
    if not output.attempts:
        results.failures.append("OOM drill: the forced plan did not run out of memory")
    results.write()


def measure_speed(results: Results, loaded, dry_run: bool, budget: Budget, per_run_s: float) -> None:
    """Seconds per denoise step (the last of STEPS, after the first's warm-up) for each plan, uncapped."""
    from i2v import pipeline as pl
    from i2v.core.memory import chunk_budgets

    for outcome in loaded.report.outcomes:
        if outcome.name == "attention":
            results.attention = outcome.detail
    if not dry_run:
        import torch

        results.attention += (f"; SDPA flash {torch.backends.cuda.flash_sdp_enabled()}, efficient "
                              f"{torch.backends.cuda.mem_efficient_sdp_enabled()}, xformers "
                              f"{'importable' if pl.xformers_importable() else 'absent'}")
    width, height, frames = DRY_SHAPE[I2VGEN] if dry_run else SPEED_SHAPE
    base = claim_request(Claim(I2VGEN, width, height, frames, 0, 0, 0), steps=STEPS)
    smallest = min(chunk_budgets(memory_model(I2VGEN), "fp16") or (4096,))
    plans = {"plain": {}, "cfg_split": {"cfg_split": True}, "chunked": {"chunk_tokens": smallest},
             "group": {"offload": "group"}, "sequential": {"offload": "sequential"}}
    plain = None
    for name in SPEED_PLANS:
        if dry_run and name in ("group", "sequential"):
            results.speed.append({"plan": name, "seconds": "", "ratio": "", "note": "dry run: no offload on a CPU"})
            continue
        if not budget.allows(per_run_s):
            results.speed.append({"plan": name, "seconds": "", "ratio": "", "note": "skipped: time budget"})
            continue
        request = base.replace(**plans[name])
        marks: list[float] = []
        sync = (lambda: None) if dry_run else __import__("torch").cuda.synchronize
        try:
            prepare(loaded, request)
            sync()
            started = time.perf_counter()
            pl.sample_latents(loaded, input_image(width, height), request, 0,
                              lambda phase, *_: marks.append(time.perf_counter()) if phase == "denoise" else None)
            sync()
        except Exception as exc:  # noqa: BLE001 - one plan failing must not end the run
            results.speed.append({"plan": name, "seconds": "", "ratio": "", "note": f"FAIL: {exc!r:.160}"})
            results.failures.append(f"speed {name}: {exc!r:.200}")
            pl.release_after_failure(loaded)
            continue
        seconds = time.perf_counter() - (marks[-1] if len(marks) >= STEPS else started)
        plain = plain or seconds       # the first plan that ran is plain (or the nearest to it)
        results.speed.append({"plan": name, "seconds": f"{seconds:.3f}", "ratio": f"{seconds / plain:.2f}",
                              "note": ("dry run (tiny, CPU)" if dry_run else f"{width}x{height}x{frames}")
                              + (f", chunk {smallest}" if name == "chunked" else "")})
        results.note(f"speed {name}: {seconds:.3f} s/step")
        results.write()
    prepare(loaded, base)


def allocator_overhead(runs: list[dict]) -> float | None:
    """max reserved / max allocated over the measured jobs (the caching allocator's rounding and cache)."""
    ratios = [r["reserved"] / r["allocated"] for r in runs if r["allocated"] > 0]
    return max(ratios) if ratios else None


def calibrate_and_judge(results: Results, runs: list[dict], context: int) -> None:
    """i2v.calibrate's factors + the measured terms into configs/calibration.json, then the verdict of the
    calibrated predictions (measured context in place of the assumed one) for every job that ran."""
    import torch

    from i2v import calibrate

    torch.cuda.set_per_process_memory_fraction(1.0)
    path = calibrate.calibrate(log=results.note)
    overhead = allocator_overhead(runs)
    terms = {**results.measured_terms, "allocator_overhead": overhead}
    results.terms["allocator_overhead (reserved / allocated)"] = [
        f"x{memory_model(I2VGEN).constants.activation_overhead:.2f} on activations",
        f"x{overhead:.3f} on the whole job" if overhead else "no job ran"]
    calibrate.store_measured_terms(terms, path)
    if results.path.parent.resolve() != Path(path).parent.resolve():     # e.g. the device's $OUT: bring it back
        import shutil

        shutil.copy(path, results.path.parent / "calibration.json")
    gc.collect()
    torch.cuda.empty_cache()
    results.calibration = json.loads(Path(path).read_text(encoding="utf-8"))
    judge_runs(results, runs, context, "calibrated")


def free_memory() -> None:
    """After the last reference to a pipeline is dropped: collect it and hand its CUDA blocks back."""
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------
def run(args) -> int:
    dry_run = args.dry_run
    out = Path(args.out) if args.out else RESULTS_DIR
    results = Results(dry_run=dry_run, path=out / RESULT_NAME)
    budget = Budget(args.budget_s)
    logs_dir = Path(args.logs) if args.logs else Path(os.environ.get("I2V_LOGS", "logs"))
    per_run = {I2VGEN: 5.0 if dry_run else 25.0, WAN: 5.0 if dry_run else 75.0, LTX: 5.0 if dry_run else 40.0}

    def stop(signum, _frame):
        results.note(f"stopped by signal {signum}: writing what was measured")
        results.write()
        raise SystemExit(124)

    signal.signal(signal.SIGTERM, stop)
    if not dry_run:
        from i2v import gpu

        gpu.prepare_cuda_environment(os.environ)      # the worker's allocator settings, before CUDA starts
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device: run with --dry-run on a CPU", file=sys.stderr)
            return 2
        props = torch.cuda.get_device_properties(0)
        results.machine = (f"GPU: {props.name}, {props.total_memory / GIB:.1f} GiB, torch {torch.__version__}, "
                           f"CUDA {torch.version.cuda}; " + machine_line())
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="i2v-truth-") as tmp:
            measure_all(args, results, budget, Path(tmp), logs_dir, per_run)
    except Exception as exc:  # noqa: BLE001 - write what was measured, then fail loudly
        results.failures.append(f"the run stopped: {exc!r:.300}")
        results.write()
        raise
    results.note(f"done in {budget.seconds - budget.left():.0f} s")
    results.write()
    print(f"wrote {results.path}")
    if args.json:
        Path(args.json).write_text(json.dumps({"claims": results.claims, "drill": results.drill,
                                               "terms": results.terms, "speed": results.speed,
                                               "failures": results.failures}, indent=1), encoding="utf-8")
    return 1 if (results.failures and not dry_run) else 0


def measure_all(args, results: Results, budget: Budget, videos: Path, logs_dir: Path, per_run: dict) -> None:
    """The pieces of work in order of value, each asking the budget first."""
    dry_run = args.dry_run
    results.note(f"start ({'dry run' if dry_run else 'GPU'}), budget {args.budget_s:.0f} s")
    context = measure_context(results, dry_run)
    capper = Cap(dry_run, context)
    results.write()
    runs: list[dict] = []
    families = [f for f in (I2VGEN, WAN, LTX) if f in args.families]
    i2vgen = None
    if I2VGEN in families:
        i2vgen = load(I2VGEN, dry_run)
        results.note(f"loaded {i2vgen.report.model} in {i2vgen.report.load_seconds:.1f} s")
        runs += measure_claims(results, I2VGEN, i2vgen, capper, budget, videos, dry_run, per_run[I2VGEN])
        if budget.allows(per_run[I2VGEN] * 2):
            oom_drill(results, i2vgen, capper, videos, logs_dir, dry_run)
        if not dry_run and budget.allows(45):
            calibrate_and_judge(results, runs, context)
        later = (per_run[WAN] * 4 if WAN in families else 0) + (per_run[LTX] * 2 if LTX in families else 0)
        wan_reserve = later + 60 if later else 0        # the later families' claim runs come first
        if "speed" not in args.skip:
            measure_speed(results, i2vgen, dry_run, budget, per_run[I2VGEN] + wan_reserve)
        i2vgen = None
        free_memory()             # its weights must not count against the later families' caps
    for name in (WAN, LTX):           # families without calibration factors: judged with the measured context
        if name not in families or not budget.allows(per_run[name]):
            continue
        loaded = load(name, dry_run)
        results.note(f"loaded {loaded.report.model} in {loaded.report.load_seconds:.1f} s")
        family_runs = measure_claims(results, name, loaded, capper, budget, videos, dry_run, per_run[name])
        loaded = None
        free_memory()                 # its weights must not count against the next family's caps
        if not dry_run and family_runs:
            judge_with_measured_context(results, family_runs, context)
        runs += family_runs
    if not dry_run and not results.calibration:
        results.note("calibration not reached within the time budget")


def judge_with_measured_context(results: Results, runs: list[dict], context: int) -> None:
    """Wan's predictions take no calibration factors (i2v.calibrate measures I2VGen-XL): the verdict with the
    measured context in place of the assumed one."""
    judge_runs(results, runs, context, "measured context")


def judge_runs(results: Results, runs: list[dict], context: int, label: str) -> None:
    """Each run's prediction, with the measured CUDA context in place of the assumed one (and whatever
    calibration is stored by now), against what it reserved plus that context: the verdict appended to its
    row under `label`, a failure listed for each one outside the band."""
    from dataclasses import replace

    from i2v.core.memory import predict
    from i2v.models import by_name

    for run in runs:
        family = by_name(run["claim"].family)
        model = memory_model(run["claim"].family)
        model = replace(model, constants=replace(model.constants, cuda_context_gib=context / GIB))
        predicted = predict(model, run["request"], dtype=family.cuda_dtype).footprint_bytes
        ok, error = verdict(predicted, run["reserved"] + context)
        run["row"]["verdict"] += f"; {label} {error:+.1%} {'ok' if ok else 'OFF'}"
        if not ok:
            results.failures.append(f"{family.title} {run['claim'].label} @ {run['cap_gib']:g} GiB: {label} "
                                    f"prediction {gib(predicted)} GiB vs measured {gib(run['reserved'] + context)} "
                                    f"GiB ({error:+.1%}, allowed {LOW:+.0%}..{HIGH:+.0%})")
    results.write()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models, simulated caps; no CUDA call")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="time budget in seconds")
    parser.add_argument("--out", help="results folder (default bench/results)")
    parser.add_argument("--logs", help="folder for oom.jsonl (default $I2V_LOGS or logs)")
    parser.add_argument("--json", help="also write the figures as JSON here")
    parser.add_argument("--families", nargs="+", default=[I2VGEN, WAN, LTX], choices=[I2VGEN, WAN, LTX])
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed"])
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
