"""Fault injection for tests (off unless an env var is set): parse `<phase>[:<n>]` or `always`, and decide
when a fault fires. Counts are kept over the server's life, so a fault fires once (the n-th occurrence of its
phase) and the job after it runs clean; `always` fires at the first occurrence of every attempt.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from i2v.core.phases import EVENT_PHASES

PHASES = EVENT_PHASES
FAULT_ENV = {"oom": "I2V_INJECT_OOM", "hang": "I2V_INJECT_HANG", "crash": "I2V_INJECT_CRASH"}
ALWAYS = "always"


@dataclass(frozen=True)
class FaultSpec:
    kind: str                  # oom | hang | crash
    phase: str | None          # None with always: the first phase of each attempt
    occurrence: int = 1
    always: bool = False


def parse_fault(kind: str, text: str | None) -> FaultSpec | None:
    """`denoise:3` -> fire at the 3rd denoise step; `always` or `denoise:always` -> fire every attempt."""
    if not text:
        return None
    phase, _, count = text.strip().partition(":")
    if phase == ALWAYS:
        return FaultSpec(kind, None, 1, True)
    if phase not in PHASES:
        raise ValueError(f"{FAULT_ENV[kind]}: unknown phase {phase!r}; use one of {', '.join(PHASES)} or {ALWAYS}")
    if count == ALWAYS:
        return FaultSpec(kind, phase, 1, True)
    try:
        occurrence = int(count) if count else 1
    except ValueError:
        raise ValueError(f"{FAULT_ENV[kind]}: {count!r} is not a number") from None
    if occurrence < 1:
        raise ValueError(f"{FAULT_ENV[kind]}: the occurrence must be at least 1")
    return FaultSpec(kind, phase, occurrence)


def faults_from_env(environ) -> list[FaultSpec]:
    return [spec for kind, var in FAULT_ENV.items() if (spec := parse_fault(kind, environ.get(var)))]


@dataclass
class FaultCounter:
    """Server-side bookkeeping: occurrences seen so far per phase, and which one-shot faults already fired."""
    specs: list[FaultSpec]
    seen: dict[str, int] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)

    def plan_for_attempt(self) -> dict[str, tuple[str | None, int]]:
        """kind -> (phase, occurrence within this attempt) for the faults still armed (None phase = any)."""
        plan = {}
        for spec in self.specs:
            if spec.always:
                plan[spec.kind] = (spec.phase, 1)
            elif spec.kind not in self.fired:
                remaining = spec.occurrence - self.seen.get(spec.phase, 0)
                if remaining >= 1:
                    plan[spec.kind] = (spec.phase, remaining)
        return plan

    def always_kinds(self) -> frozenset:
        return frozenset(spec.kind for spec in self.specs if spec.always)

    def record(self, phase: str) -> None:
        """Count one occurrence of phase; one-shot faults whose occurrence is reached are marked fired."""
        self.seen[phase] = self.seen.get(phase, 0) + 1
        for spec in self.specs:
            if not spec.always and spec.phase == phase and self.seen[phase] == spec.occurrence:
                self.fired.add(spec.kind)


def should_fire(plan: dict[str, tuple[str | None, int]], job_counts: dict[str, int],
                attempt_counts: dict[str, int], phase: str, always_kinds: frozenset = frozenset()) -> list[str]:
    """Inside a job: the fault kinds to fire now. One-shot faults count occurrences over the job (the server
    already subtracted what it saw before); `always` faults count within the current attempt."""
    kinds = []
    for kind, (fault_phase, occurrence) in plan.items():
        counts = attempt_counts if kind in always_kinds else job_counts
        if fault_phase is None:
            if sum(counts.values()) == 1:
                kinds.append(kind)
        elif fault_phase == phase and counts.get(phase, 0) == occurrence:
            kinds.append(kind)
    return kinds
