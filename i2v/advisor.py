"""What fits on this device, answered in the web server without touching CUDA: the device (NVML/psutil), the
memory model, presets and tiers from configs/, the clamp before a job, and the live estimate for the UI.

The figures are those of the model that runs (`model_source`, i2v.profiles: the tiny model's own traced
profile, a folder's) and its family's rules, dtype and presets (i2v.models); when that is not the family's
full-size model, the estimate also says what the full-size model would need on this device (`full_size`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from functools import cached_property

from i2v.core.clamp import Adjustment, DoesNotFit, fit
from i2v.core.memory import estimate_seconds_per_step, flops_per_step, for_device, predict, with_tracer
from i2v.core.presets import DEFAULT_IMAGE_SIZE, STATUS_LABELS, recommended_index, status_from_estimate
from i2v.core.request import GenerationRequest, RequestError, build_request
from i2v.core.tiers import select_tier
from i2v.core.units import GIB

log = logging.getLogger(__name__)

DEVICE_CACHE_S = 2.0            # the live estimate re-reads the device at most this often
EXACT_TRACE_TIMEOUT_S = 90.0    # before a job: the exact shape's chunked peaks within this, else interpolated


class Advisor:
    def __init__(self, holder_pids=lambda: (), time_budget_s: float | None = None, model_source=None):
        self._holder_pids = holder_pids
        self._model_source = model_source or (lambda: None)   # -> i2v.profiles.ModelSource; None: full size
        self._models: dict[tuple, tuple] = {}                  # (source, dtype) -> (MemoryModel, info)
        self.time_budget_s = time_budget_s        # steps are capped so a job fits it (None: no budget)
        self._measured_tflops: float | None = None  # effective throughput seen on real weights
        self._device = None
        self._device_at = 0.0
        self._lock = threading.Lock()
        self.exact_trace_timeout_s = EXACT_TRACE_TIMEOUT_S

    # --- data, loaded once on first use -------------------------------------------------------------------
    @cached_property
    def _configs(self):
        from i2v import configs

        return configs.load_memory_model(), configs.load_presets(), configs.load_tiers()

    def device(self):
        from i2v import gpu

        with self._lock:
            if self._device is None or time.monotonic() - self._device_at > DEVICE_CACHE_S:
                self._device = gpu.with_limit(gpu.probe_device_without_torch(0, tuple(self._holder_pids())),
                                              gpu.vram_limit_bytes())
                self._device_at = time.monotonic()
            return self._device

    def family(self):
        """The family record of the model that runs (i2v.models; I2VGen-XL when none is named)."""
        from i2v.models import by_name

        source = self._model_source()
        return by_name(source.family if source is not None else None)

    def _kept(self, key: tuple, make):
        """A value kept per key (made once, outside the lock: reading a profile or presets takes a moment)."""
        with self._lock:
            found = self._models.get(key)
        if found is None:
            found = make()
            with self._lock:
                self._models[key] = found
        return found

    def full_size_model(self, family=None):
        """The family's full-size memory model (I2VGen-XL's with the calibration, when one was measured)."""
        from i2v import configs
        from i2v.models import DEFAULT_FAMILY

        family = family or self.family()
        if family is DEFAULT_FAMILY:
            return self._configs[0]
        return self._kept(("full", family.name), lambda: configs.full_size_model(family))

    def presets(self, family=None):
        """The family's presets (configs/presets.toml for I2VGen-XL; configs/models/<family>/presets.toml)."""
        from i2v import configs
        from i2v.models import DEFAULT_FAMILY

        family = family or self.family()
        if family is DEFAULT_FAMILY:
            return self._configs[1]
        return self._kept(("presets", family.name), lambda: configs.load_presets(family=family))

    def memory_model(self, dtype: str):
        """(memory model, info) of the model that runs, for a compute dtype; info names the model and where its
        profile came from (i2v.profiles.ModelProfile.info). Traced on first use for a model not seen before."""
        source = self._model_source()
        if source is None:
            return self._configs[0], dict(FULL_SIZE_INFO)
        key = (source.kind, source.name, source.hash, dtype)
        with self._lock:
            found = self._models.get(key)
        if found is None:
            from i2v import configs, profiles

            kept = profiles.profile_for(source, dtype)
            model = (self.full_size_model(source.family_record) if kept.full_size
                     else configs.memory_model_for(kept.profile, calibrated=False))
            if kept.hash is not None:     # chunked peaks traced at exact shapes so far (i2v/profile_points.py)
                model = with_tracer(model, None, profiles.read_chunk_points(source))
            found = (model, kept.info())
            with self._lock:
                self._models[key] = found
        return found

    def _context(self, device=None):
        """(memory model for this device kind, dtype, tier, the device): this machine's, or a given one."""
        _, _, tiers = self._configs
        device = device or self.device()
        dtype = self.family().cuda_dtype if device.kind == "cuda" else "fp32"
        model, _ = self.memory_model(dtype)
        return for_device(model, device.kind), dtype, select_tier(tiers, device.kind, device.total_bytes), device

    # --- answers -----------------------------------------------------------------------------------------
    def device_info(self) -> dict:
        device = self.device()
        _, dtype, tier, _ = self._context()
        return {**device.as_dict(), "dtype": dtype, "tier": tier.label, "tier_tflops": tier.tflops,
                "model": self.memory_model(dtype)[1]}

    def host_bytes(self, device) -> int | None:
        """RAM for plans that keep weights in host memory; None on CPU, where the budget already is RAM."""
        if device.kind != "cuda":
            return None
        from i2v import gpu

        return gpu.host_available_bytes()

    def _tflops(self, tier) -> float:
        return self._measured_tflops or tier.tflops

    def presets_status(self, image_size: tuple[int, int] | None = None, estimate=None) -> dict:
        """Each preset with the verdict of the live estimate for its settings (`estimate`, default this
        advisor's: the service passes its own, which knows the tiny model's measured speed), and the recommended
        one; the preset list and the estimate panel are one computation."""
        estimate = estimate or self.estimate
        presets = self.presets()
        verdicts = [estimate(p.values(), image_size) for p in presets]
        statuses = [status_from_estimate(v) for v in verdicts]
        best = recommended_index(statuses, [v.get("seconds_estimate") for v in verdicts])
        return {
            "recommended": None if best is None else presets[best].id,
            "device": self.device().kind,
            "presets": [{
                "name": p.id, "label": f"{p.label} / {p.name}", "status": status,
                "label_en": p.label, "label_zh": p.name, "status_label": STATUS_LABELS[status],
                "peak_gib": v.get("peak_gib"), "seconds_estimate": v.get("seconds_estimate"), "speed": v.get("speed"),
                "values": p.values(), "offload": v.get("offload"), "plan": v.get("plan"),
            } for p, v, status in zip(presets, verdicts, statuses)],
        }

    def record_denoise(self, request: GenerationRequest, seconds: float, steps: int) -> None:
        """Learn this device's real speed from a finished run, so time estimates stop being FLOP guesses."""
        model, dtype, _, _ = self._context()
        flops = flops_per_step(model, request, dtype)
        if flops and steps > 0 and seconds > 0:
            self._measured_tflops = flops * steps / seconds / 1e12 / model.constants.gpu_efficiency

    def seconds_per_step(self, request: GenerationRequest) -> float | None:
        """Measured throughput when a run has been seen, else the tier's nominal TFLOP/s."""
        model, dtype, tier, _ = self._context()
        return estimate_seconds_per_step(model, request, self._measured_tflops or tier.tflops, dtype)

    def trace_exact_shape(self, request: GenerationRequest) -> bool:
        """Before a job: trace the chunked peaks at the request's exact shape once (a subprocess, seconds;
        cached), so the clamp predicts chunked plans within a few percent instead of interpolating between
        traced points (-14 % .. +9 %). True when points were added."""
        from i2v import profiles
        from i2v.core.memory import chunk_budgets

        source = self._model_source()
        device = self.device()
        if source is None or source.hash is None or device.kind != "cuda":   # on a CPU the budget is RAM:
            return False                                                     # interpolated figures serve
        dtype = self.family().cuda_dtype
        model, info = self.memory_model(dtype)
        shape = (request.width, request.height, request.num_frames)
        budgets = chunk_budgets(model, dtype)
        wanted = [(dtype, f"denoise_cfg_chunk{b}{split}", *shape) for b in budgets for split in ("", "_split")]
        if all(key in model.exact_points for key in wanted):
            return False
        if not profiles.trace_chunk_points(source, dtype, shape, budgets, self.exact_trace_timeout_s):
            return False
        key = (source.kind, source.name, source.hash, dtype)
        with self._lock:
            self._models[key] = (with_tracer(model, None, profiles.read_chunk_points(source)), info)
        return True

    def fit(self, request: GenerationRequest, forced: dict | None = None, device=None, model=None,
            carry: bool = False):
        """The clamp's decision for this device, or another (a remote worker's card; i2v.core.clamp.fit), with
        the figures of the model that runs (or another memory model); raises DoesNotFit. carry: for a job, the
        request carries the ranking its worker falls back along (the worker never decides again)."""
        running, dtype, tier, device = self._context(device)
        model = for_device(model, device.kind) if model is not None else running
        per_step = self.seconds_per_step(request) if self.time_budget_s else None
        return fit(request, device.budget_bytes, model, dtype, tflops=self._tflops(tier),
                   seconds_per_step=per_step, time_budget_s=self.time_budget_s,
                   host_bytes=self.host_bytes(device), forced=forced, device_kind=device.kind,
                   rules=self.family().rules, carry=carry)

    def seconds_for(self, fitted: GenerationRequest, device) -> float | None:
        """Predicted seconds for the whole run of a fitted request on a device (routing between cards)."""
        model, dtype, tier, _ = self._context(device)
        per_step = estimate_seconds_per_step(model, fitted, self._tflops(tier), dtype)
        return None if per_step is None else per_step * fitted.num_inference_steps

    def clamp(self, request: GenerationRequest, forced: dict | None = None) -> tuple[GenerationRequest, list[Adjustment]]:
        """Fit the request to the device: the fastest plan that fits (forced plan parts kept), the user's
        settings changed only when no plan fits; raises RequestError if nothing fits. The request's exact
        shape is traced first when the model's chunked peaks there are not known yet (once per shape)."""
        self.trace_exact_shape(request)
        try:
            result = self.fit(request, forced, carry=True)     # the ranking travels: decided once
        except DoesNotFit as exc:
            raise RequestError("device_cannot_run", detail=str(exc)) from None
        return result.request, list(result.adjustments)

    def estimate(self, values: dict, image_size: tuple[int, int] | None = None, forced: dict | None = None) -> dict:
        """The live 'predicted peak / available' line: pure Python, a few milliseconds."""
        model, dtype, tier, device = self._context()
        try:
            request = build_request(image_size or DEFAULT_IMAGE_SIZE, self.family().rules, **values)
        except RequestError as exc:
            return {"error": str(exc), "text": str(exc)}
        try:
            result = self.fit(request, forced)
            fitted, adjustments, final = result.request, list(result.adjustments), result.prediction
        except DoesNotFit as exc:
            fitted, adjustments, final = None, [], None
            log.info("estimate: %s", exc)
        asked = final or predict(model, request, dtype=dtype, device_kind=device.kind)
        available_gib = device.budget_bytes / GIB
        label = "calibrated" if asked.calibrated else "predicted"
        fits = final is not None and not any(a.field in ("num_frames", "resolution") for a in adjustments)
        text = f"{label} peak {asked.peak_gib:.1f} GiB / {available_gib:.1f} GiB available"
        if final is not None and adjustments:
            text += " — will run with: " + "; ".join(f"{a.field} {a.asked}→{a.got}" for a in adjustments)
        elif final is None:
            text += " — does not fit even at the smallest settings"
        per_step = self.seconds_per_step(fitted or request)
        info = self.memory_model(dtype)[1]
        full_size = None if info["full_size"] else self._full_size_estimate(request, forced, dtype, device)
        if full_size:
            text += f" ({info['name']} model; {full_size['text']})"
        return {"model": info, "full_size": full_size,
                "peak_gib": round(asked.peak_gib, 2), "available_gib": round(available_gib, 2), "fits": fits,
                "host_ram_gib": round(asked.host_bytes / GIB, 2),
                "seconds_per_step": round(per_step, 3) if per_step else None,
                "seconds_estimate": round(per_step * (fitted or request).num_inference_steps, 1) if per_step else None,
                "speed": "measured" if self._measured_tflops else "estimated",
                "label": label, "offload": fitted.offload if fitted else None,
                "plan": fitted.plan.as_dict() if fitted else None,
                "adjustments": [asdict(a) for a in adjustments], "text": text, "device": device.kind}

    def _full_size_estimate(self, request: GenerationRequest, forced: dict | None, dtype: str, device) -> dict:
        """What the family's full-size model would need for this request on this device (when another model of
        the family runs: its tiny variant, a folder with other dimensions)."""
        family = self.family()
        full_model = self.full_size_model(family)
        full = for_device(full_model, device.kind)
        try:
            result = self.fit(request, forced, model=full_model)
            prediction = result.prediction
            fits = not any(a.field in ("num_frames", "resolution") for a in result.adjustments)
        except DoesNotFit:
            prediction, fits = predict(full, request, dtype=dtype, device_kind=device.kind), False
        peak = round(prediction.peak_gib, 2)
        verdict = "fits" if fits else "does not fit as asked"
        return {"peak_gib": peak, "fits": fits, "label": "calibrated" if prediction.calibrated else "predicted",
                "text": f"the full-size {family.title} would need {peak:.1f} GiB here: {verdict}"}


# What estimates say about the model when no other is named: the committed full-size profile.
FULL_SIZE_INFO = {"kind": "full", "name": "full-size I2VGen-XL", "profile": "full-size", "hash": None,
                  "full_size": True, "note": None, "family": "i2vgen-xl", "family_title": "I2VGen-XL",
                  "repo": "ali-vilab/i2vgen-xl"}
