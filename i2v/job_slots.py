"""The service's job slots: as many jobs at once as the runner has capacity, each with its owner (who may Stop
it) and its settings, so Stop, the queue panel and a model switch know what runs. No runner calls here: the
service asks this who to cancel and acts itself."""
from __future__ import annotations

import contextlib
import secrets
import threading
import time
from typing import Callable, Iterator

from i2v.core.errors import BusyError

BUSY_WAIT_S = 30.0          # a Generate arriving while a job finishes its Stop waits this long before "busy"


class JobSlots:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._slots = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self._active = 0
        self._owners: dict[str, str | None] = {}      # running job -> who started it (may Stop it)
        self._running: dict[str, dict] = {}           # running job -> when it started, its settings

    def is_busy(self) -> bool:
        return self._active > 0

    def has_job(self, owner: str | None) -> bool:
        with self._lock:
            return owner in self._owners.values()

    def jobs_where(self, chosen: Callable[[str | None], bool]) -> list[str]:
        """The running jobs whose owner is chosen."""
        with self._lock:
            return [job for job, who in self._owners.items() if chosen(who)]

    def knows(self, job: str) -> bool:
        with self._lock:
            return job in self._owners

    def running(self) -> list[dict]:
        with self._lock:
            return [{"job": job, "owner": who, **self._running.get(job, {})} for job, who in self._owners.items()]

    @contextlib.contextmanager
    def job(self, owner: str | None, values: dict, wait_s: float = BUSY_WAIT_S) -> Iterator[str]:
        """A slot for one job (BusyError after wait_s): yields its new id, freed however the job ends."""
        if not self._slots.acquire(timeout=wait_s):
            raise BusyError("busy")
        job = secrets.token_hex(8)
        with self._lock:
            self._active += 1
            self._owners[job] = owner
            self._running[job] = {"started": time.monotonic(), "values": values}
        try:
            yield job
        finally:
            with self._lock:
                self._active -= 1
                self._owners.pop(job, None)
                self._running.pop(job, None)
            self._slots.release()

    @contextlib.contextmanager
    def all_held(self) -> Iterator[None]:
        """Every slot held, so no job runs or starts meanwhile (a model switch); BusyError when one is busy."""
        held = 0
        try:
            while held < self.capacity and self._slots.acquire(blocking=False):
                held += 1
            if held < self.capacity or self.is_busy():
                raise BusyError("model_busy", field="model")
            yield
        finally:
            for _ in range(held):
                self._slots.release()
