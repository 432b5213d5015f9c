"""A memory budget that holds still, so the page's verdict changes only with the settings or a real change.

Free memory drifts by hundreds of MiB a minute (other programs, the page cache); the clamp picks the plan from
the budget, so a drifting budget made the same settings read 13.1 GiB "fits", then 12.0, then 21.5 "does not
fit". `BudgetHold` rounds the live budget down to STEP and keeps it until the live figure drops below it (a job
must never plan with memory that is gone) or rises by two steps (hysteresis: a reading wobbling around a step
boundary never flips the verdict). The held figure is always <= the live one.

`install(advisor)` puts the hold on one advisor instance (its `device()`), so the estimate, the preset list and
the clamp before a job all use the same held budget: the numbers agree. `uninstall` removes it.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

from i2v.core.units import GIB
from i2v.gpu import DeviceInfo

STEP_BYTES = GIB // 2        # the budget is told in half-GiB steps
RISE_STEPS = 2               # a rise counts only when it is this many steps above the held budget


class BudgetHold:
    """The held budget over a stream of live readings; `moved` is (old, new) of its last change."""

    def __init__(self, step: int = STEP_BYTES, rise_steps: int = RISE_STEPS):
        self.step, self.rise = int(step), int(rise_steps)
        self.held: int | None = None
        self.moved: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def settle(self, live: int) -> int:
        """The budget to plan with for this live reading (bytes)."""
        live = max(0, int(live))
        with self._lock:
            if self.held is None or live < self.held or live >= self.held + self.rise * self.step:
                new = live // self.step * self.step
                if self.held is not None and new != self.held:
                    self.moved = (self.held, new)
                self.held = new
            return self.held


@dataclass
class HeldDevice(DeviceInfo):
    """A device snapshot whose budget is the held one (its other figures stay live)."""

    held_budget_bytes: int = 0

    @property
    def budget_bytes(self) -> int:
        return self.held_budget_bytes


def held_device(device: DeviceInfo, hold: BudgetHold) -> DeviceInfo:
    if isinstance(device, HeldDevice):
        return device
    fields = asdict(device)
    return HeldDevice(**fields, held_budget_bytes=hold.settle(device.budget_bytes))


def install(advisor, hold: BudgetHold | None = None) -> BudgetHold | None:
    """Wrap advisor.device on this instance (once); returns the hold, or None for an object without device()."""
    if advisor is None or not callable(getattr(advisor, "device", None)):
        return None
    existing = getattr(advisor, "_i2v_budget_hold", None)
    if existing is not None:
        return existing
    hold = hold or BudgetHold()
    live = advisor.device

    def device():
        return held_device(live(), hold)

    advisor.device = device
    advisor._i2v_budget_hold = hold
    return hold


def uninstall(advisor) -> None:
    """Back to the live budget (the wrapper is an instance attribute: deleting it uncovers the method)."""
    if getattr(advisor, "_i2v_budget_hold", None) is not None:
        del advisor.device
        del advisor._i2v_budget_hold
