"""The watchdog's rules without processes: a fake clock, milliseconds per test."""
import pytest

from i2v.worker.watchdog import Watchdog, WatchdogSettings

SETTINGS = WatchdogSettings(floor_s=10.0, step_factor=5.0, load_timeout_s=60.0, cancel_grace_s=3.0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def dog(clock):
    watchdog = Watchdog(SETTINGS, clock=clock)
    watchdog.start()
    return watchdog


def test_quiet_within_the_floor_silent_after_it(dog, clock):
    clock.advance(9.9)
    assert dog.check(cancel_requested=False) is None
    clock.advance(0.2)
    verdict = dog.check(cancel_requested=False)
    assert verdict.kind == "silent" and "during start" in verdict.detail


def test_a_slow_card_earns_a_longer_timeout_from_its_own_step_gaps(dog, clock):
    dog.beat("denoise")
    clock.advance(4.0)
    dog.beat("denoise")                      # a 4 s step: timeout becomes 5 x 4 = 20 s
    assert dog.slowest_gap_s == pytest.approx(4.0) and dog.timeout_s() == pytest.approx(20.0)
    clock.advance(19.0)
    assert dog.check(False) is None
    clock.advance(1.5)
    assert dog.check(False).kind == "silent"


def test_gaps_after_start_or_load_are_not_step_gaps(dog, clock):
    clock.advance(8.0)
    dog.beat("denoise")                      # the first beat after start: not a step gap
    dog.beat("load")
    clock.advance(50.0)
    dog.beat("load")                         # load beats: not step gaps either
    assert dog.slowest_gap_s == 0.0


def test_a_load_may_be_silent_for_the_load_timeout(dog, clock):
    dog.beat("load")
    clock.advance(59.0)
    assert dog.timeout_s() == SETTINGS.load_timeout_s and dog.check(False) is None
    clock.advance(2.0)
    assert dog.check(False).kind == "silent"


def test_stop_not_obeyed_within_the_grace_is_overdue(dog, clock):
    dog.beat("denoise")
    assert dog.check(cancel_requested=True) is None       # Stop seen now
    clock.advance(2.9)
    dog.beat("denoise")                                    # still beating: alive, but not stopping
    assert dog.check(True) is None
    clock.advance(0.2)
    verdict = dog.check(True)
    assert verdict.kind == "cancel_overdue" and "after Stop" in verdict.detail


def test_start_resets_the_conversation_but_keeps_the_pace(dog, clock):
    dog.beat("denoise")
    clock.advance(6.0)
    dog.beat("denoise")
    dog.check(True)
    clock.advance(100.0)
    dog.start()
    assert dog.check(False) is None and dog.cancel_seen is None
    assert dog.timeout_s() == pytest.approx(30.0)          # 5 x the 6 s step seen in an earlier job


def test_settings_from_the_environment_table():
    settings = WatchdogSettings.from_env({"I2V_WATCHDOG_FLOOR_S": "2.5", "I2V_CANCEL_GRACE_S": "1"})
    assert settings.floor_s == 2.5 and settings.cancel_grace_s == 1.0
    assert settings.step_factor == 5.0 and settings.load_timeout_s == 600.0
