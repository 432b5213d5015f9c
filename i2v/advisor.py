"""What fits on this device, answered in the web server without touching CUDA: the device (NVML/psutil), the
memory model, presets and tiers from configs/, the clamp before a job, and the live estimate for the UI.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from functools import cached_property

from i2v.core.clamp import Adjustment, DoesNotFit, clamp
from i2v.core.memory import for_device, predict
from i2v.core.presets import recommend_preset
from i2v.core.request import GenerationRequest, RequestError, build_request
from i2v.core.tiers import select_tier
from i2v.core.units import GIB

log = logging.getLogger(__name__)

DEVICE_CACHE_S = 2.0            # the live estimate re-reads the device at most this often
DEFAULT_IMAGE_SIZE = (1280, 720)  # aspect assumed before an image is uploaded (the model's 16:9)


class Advisor:
    def __init__(self, holder_pids=lambda: ()):
        self._holder_pids = holder_pids
        self._device = None
        self._device_at = 0.0
        self._lock = threading.Lock()

    # --- data, loaded once on first use -------------------------------------------------------------------
    @cached_property
    def _configs(self):
        from i2v import configs

        return configs.load_memory_model(), configs.load_presets(), configs.load_tiers()

    def device(self):
        from i2v import gpu

        with self._lock:
            if self._device is None or time.monotonic() - self._device_at > DEVICE_CACHE_S:
                self._device = gpu.probe_device_without_torch(0, tuple(self._holder_pids()))
                self._device_at = time.monotonic()
            return self._device

    def _context(self):
        """(memory model for this device kind, dtype, tier, budget bytes)."""
        model, _, tiers = self._configs
        device = self.device()
        dtype = "fp16" if device.kind == "cuda" else "fp32"
        return for_device(model, device.kind), dtype, select_tier(tiers, device.kind, device.total_bytes), device

    # --- answers -----------------------------------------------------------------------------------------
    def device_info(self) -> dict:
        device = self.device()
        _, dtype, tier, _ = self._context()
        return {**device.as_dict(), "dtype": dtype, "tier": tier.label, "tier_limits": {
            "max_resolution": tier.max_resolution, "max_frames": tier.max_frames, "max_steps": tier.max_steps}}

    def presets_status(self, image_size: tuple[int, int] | None = None) -> dict:
        model, dtype, tier, device = self._context()
        _, presets, _ = self._configs
        best, statuses = recommend_preset(presets, model, device.budget_bytes, dtype,
                                          image_size or DEFAULT_IMAGE_SIZE, tier)
        return {
            "recommended": best.preset.id if best else None,
            "device": device.kind,
            "presets": [{
                "name": s.preset.id, "label": f"{s.preset.label} / {s.preset.name}", "status": s.status,
                "status_label": s.label, "peak_gib": round(s.peak_gib, 2),
                "seconds_estimate": round(s.seconds_estimate, 1) if s.seconds_estimate else None,
                "values": s.preset.values(), "offload": s.request.offload,
            } for s in statuses],
        }

    def clamp(self, request: GenerationRequest) -> tuple[GenerationRequest, list[Adjustment]]:
        """Fit the request to the device (least offload first); raises RequestError if nothing fits."""
        model, dtype, tier, device = self._context()
        try:
            return clamp(request, device.budget_bytes, model, tier=tier, dtype=dtype)
        except DoesNotFit as exc:
            raise RequestError(f"this device cannot run it: {exc}") from None

    def estimate(self, values: dict, image_size: tuple[int, int] | None = None) -> dict:
        """The live 'predicted peak / available' line: pure Python, well under a millisecond when cached."""
        model, dtype, tier, device = self._context()
        try:
            request = build_request(image_size or DEFAULT_IMAGE_SIZE, **values)
        except RequestError as exc:
            return {"error": str(exc), "text": str(exc)}
        asked = predict(model, request, dtype=dtype)
        try:
            fitted, adjustments = clamp(request, device.budget_bytes, model, tier=tier, dtype=dtype)
            final = predict(model, fitted, dtype=dtype)
        except DoesNotFit as exc:
            fitted, adjustments, final = None, [], None
            log.info("estimate: %s", exc)
        available_gib = device.budget_bytes / GIB
        label = "calibrated" if asked.calibrated else "predicted"
        fits = asked.peak_bytes <= device.budget_bytes
        text = f"{label} peak {asked.peak_gib:.1f} GiB / {available_gib:.1f} GiB available"
        if not fits and final is not None:
            text += f" — will run as {final.peak_gib:.1f} GiB with: " + "; ".join(
                f"{a.field} {a.asked}→{a.got}" for a in adjustments)
        elif final is None:
            text += " — does not fit even at the smallest settings"
        return {"peak_gib": round(asked.peak_gib, 2), "available_gib": round(available_gib, 2), "fits": fits,
                "label": label, "offload": fitted.offload if fitted else None,
                "adjustments": [asdict(a) for a in adjustments], "text": text, "device": device.kind}
