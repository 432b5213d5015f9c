"""The watchdog's rules, pure: no process, no pipe, time from an injected clock (unit-tested in milliseconds).

A job beats at every phase step. The allowed silence is max(floor_s, step_factor x the slowest gap seen
between two beats of a run) — a slow card earns a longer timeout from its own pace; a model load may be
silent for load_timeout_s between its load beats. After Stop, a worker that is still going after
cancel_grace_s is overdue. The supervisor acts on the verdicts (kill and replace the worker).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from i2v.core import env, words

UNTIMED_PHASES = ("start", "load")      # gaps after these are not step gaps (loading, a first message)


def _default(name: str) -> float:
    return float(env.ENV_BY_NAME[name].default)      # the defaults live in the environment table, once


@dataclass(frozen=True)
class WatchdogSettings:
    """timeout = max(floor_s, step_factor x the slowest gap between heartbeats seen); env overrides for tests."""
    floor_s: float = _default("I2V_WATCHDOG_FLOOR_S")
    step_factor: float = _default("I2V_WATCHDOG_STEP_FACTOR")
    load_timeout_s: float = _default("I2V_LOAD_TIMEOUT_S")   # between load beats: a load making no progress
    cancel_grace_s: float = _default("I2V_CANCEL_GRACE_S")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "WatchdogSettings":
        import os

        environ = os.environ if environ is None else environ
        return cls(
            floor_s=float(env.value("I2V_WATCHDOG_FLOOR_S", environ)),
            step_factor=float(env.value("I2V_WATCHDOG_STEP_FACTOR", environ)),
            load_timeout_s=float(env.value("I2V_LOAD_TIMEOUT_S", environ)),
            cancel_grace_s=float(env.value("I2V_CANCEL_GRACE_S", environ)),
        )


@dataclass(frozen=True)
class Verdict:
    """What the supervisor must do now: `silent` (kill: no heartbeat in time) or `cancel_overdue` (kill: Stop
    was not obeyed within the grace). Why, as a catalogue key and its params (the lost-worker message's
    detail, in the reader's language)."""
    kind: str
    key: str
    params: dict = field(default_factory=dict)

    @property
    def detail(self) -> str:
        """Why, in English (the logs)."""
        return words.render(self.key, "en", **self.params)


class Watchdog:
    """One per worker: remembers the slowest step gap across jobs; start() before each conversation."""

    def __init__(self, settings: WatchdogSettings, clock: Callable[[], float] = time.monotonic):
        self.settings, self.clock = settings, clock
        self.slowest_gap_s = 0.0
        self.last_beat, self.last_phase, self.cancel_seen = clock(), "start", None

    def start(self) -> None:
        self.last_beat, self.last_phase, self.cancel_seen = self.clock(), "start", None

    def beat(self, phase: str) -> None:
        """A heartbeat for this phase arrived now."""
        now = self.clock()
        if self.last_phase not in UNTIMED_PHASES and phase != "load":
            self.slowest_gap_s = max(self.slowest_gap_s, now - self.last_beat)
        self.last_beat, self.last_phase = now, phase

    def timeout_s(self) -> float:
        """The silence allowed after the latest beat."""
        if self.last_phase == "load":
            return self.settings.load_timeout_s
        return max(self.settings.floor_s, self.settings.step_factor * self.slowest_gap_s)

    def check(self, cancel_requested: bool) -> Verdict | None:
        """None while all is well; else what went wrong."""
        now = self.clock()
        if cancel_requested:
            self.cancel_seen = self.cancel_seen if self.cancel_seen is not None else now
            if now - self.cancel_seen > self.settings.cancel_grace_s:
                return Verdict("cancel_overdue", "lost_stop_ignored", {"seconds": f"{now - self.cancel_seen:.0f}"})
        if now - self.last_beat > self.timeout_s():
            return Verdict("silent", "lost_no_heartbeat", {"seconds": f"{now - self.last_beat:.0f}",
                                                           "phase": self.last_phase})
        return None
