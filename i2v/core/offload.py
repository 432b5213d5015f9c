"""The offload modes: where the weights live while a job runs, as one table the memory engine, the presets and
the CLI read (a new mode is a row here, its words in core/words/plan.py, its application in pipeline.py).

Fastest first: all on the GPU; each component moved in while it runs (model CPU offload); streamed from RAM
layer by layer on a side stream (diffusers group offloading); moved in module by module without overlap
(sequential CPU offload).
"""
from __future__ import annotations

from dataclasses import dataclass

# What stays on the device during a phase (i2v.core.memory_peak):
ALL = "all"             # every weight
PHASE = "phase"         # the components the family's model_offload_resident names for the phase
MODULES = "modules"     # a few modules of the running component (constants.sequential_module_copies)
# How the weights cross the host link (i2v.core.memory_time):
NEVER = "never"
ONCE_PER_JOB = "once_per_job"            # each component moved in once
PER_CALL_OVERLAPPED = "per_call_overlapped"   # the denoiser per call, overlapped with compute
PER_CALL = "per_call"                    # the denoiser per call, not overlapped (small synchronous copies)


@dataclass(frozen=True)
class OffloadMode:
    name: str
    resident: str           # ALL | PHASE | MODULES
    moves: str              # NEVER | ONCE_PER_JOB | PER_CALL_OVERLAPPED | PER_CALL
    pinned_copies: bool     # keeps page-locked host copies of the offloaded weights (constants.group_pinned_copies)
    preset_status: str      # a preset's status when its plan uses this mode (i2v.core.presets)


OFFLOADS = (
    OffloadMode("none", ALL, NEVER, False, "fits"),
    OffloadMode("model", PHASE, ONCE_PER_JOB, False, "fits_with_offload"),
    OffloadMode("group", MODULES, PER_CALL_OVERLAPPED, True, "fits_with_offload"),
    OffloadMode("sequential", MODULES, PER_CALL, False, "fits_sequential"),
)
OFFLOAD_MODES = tuple(mode.name for mode in OFFLOADS)
OFFLOAD_BY_NAME = {mode.name: mode for mode in OFFLOADS}
