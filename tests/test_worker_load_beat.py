"""The load heartbeat: a long model load (a first download) keeps the watchdog quiet only while it does work."""
import itertools
import threading
import time

import pytest

from i2v.worker import child as worker
from i2v.runner import LOADING, READY, ModelState


class FakeRunner:
    def __init__(self, status):
        self._state = ModelState(status=status)

    def state(self):
        return self._state


class Collector:
    def __init__(self, wanted=2):
        self.sent, self.wanted, self.done = [], wanted, threading.Event()

    def send(self, message):
        self.sent.append(message)
        if len(self.sent) >= self.wanted:
            self.done.set()


@pytest.fixture()
def stop(monkeypatch):
    monkeypatch.setattr(worker, "LOAD_BEAT_S", 0.02)
    event = threading.Event()
    yield event
    event.set()


def test_a_load_doing_work_beats(stop):
    working = itertools.count(step=1.0)            # CPU time grows by a second per look
    sink = Collector()
    worker._beat_while_loading(sink, FakeRunner(LOADING), clock=lambda: next(working), stop=stop)
    assert sink.done.wait(5)
    assert [m.phase for m in sink.sent[:2]] == ["load", "load"] and sink.sent[1].index == 2


@pytest.mark.parametrize("status, clock", [(LOADING, lambda: 42.0), (READY, itertools.count(step=1.0).__next__)])
def test_a_stuck_load_or_a_loaded_model_sends_nothing(stop, status, clock):
    looks = Collector(wanted=10**9)
    counting = threading.Event()
    calls = itertools.count()

    def watched_clock():
        if next(calls) >= 10:
            counting.set()
        return clock()

    worker._beat_while_loading(looks, FakeRunner(status), clock=watched_clock, stop=stop)
    assert counting.wait(5)                         # the thread looked ten times
    assert looks.sent == []
