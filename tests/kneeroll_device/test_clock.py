"""The scaled clock runs faster than life, and waits for the threads that fall behind.

Real time is a fake here: the tests move it by hand, so nothing sleeps.
"""

from __future__ import annotations

import threading

import pytest

from kneeroll_device import clock as clock_module
from kneeroll_device.clock import ManualClock, ScaledClock, SystemClock


class FakeRealTime:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def real(monkeypatch):
    fake = FakeRealTime()
    monkeypatch.setattr(clock_module.time, "monotonic", fake)
    return fake


class Participant:
    """A thread that checks in when told to and otherwise stays alive, doing nothing."""

    def __init__(self, clock: ScaledClock):
        self.clock = clock
        self._orders: list = []
        self._wake = threading.Event()
        self._done = threading.Event()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def do(self, order) -> None:
        self._done.clear()
        self._orders.append(order)
        self._wake.set()
        assert self._done.wait(5.0)

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self.thread.join(5.0)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            while self._orders:
                self._orders.pop(0)(self.clock)
                self._done.set()


@pytest.fixture
def participant():
    """Makes participants on a clock; each is stopped when the test ends."""
    made: list[Participant] = []

    def make(clock: ScaledClock) -> Participant:
        made.append(Participant(clock))
        return made[-1]

    yield make
    for one in made:
        one.stop()


def test_without_participants_it_runs_speed_times_real_time(real):
    clock = ScaledClock(20, start=-3.0)
    assert clock() == -3.0
    real.now += 0.5
    assert clock() == pytest.approx(7.0)


def test_a_thread_that_fell_behind_holds_the_world_back(real, participant):
    clock = ScaledClock(20, slack=0.3)
    reader = participant(clock)
    reader.do(lambda c: c.checkin())
    real.now += 10.0  # the reader does not get a turn for ten real seconds
    assert clock() == pytest.approx(0.3)
    real.now += 10.0
    assert clock() == pytest.approx(0.3), "time it could not use is not made up later"
    reader.do(lambda c: c.checkin())
    real.now += 0.01
    assert clock() == pytest.approx(0.5)


def test_a_waiting_thread_is_up_to_date_until_its_deadline_then_from_when_it_wakes(real, participant):
    clock = ScaledClock(10, slack=0.3)
    waiter = participant(clock)
    wake = threading.Event()
    waiter.do(lambda c: c.checkin())
    waiting = threading.Thread(target=lambda: waiter.do(lambda c: c.wait(wake, 2.0)), daemon=True)
    waiting.start()
    _until(lambda: clock._due[waiter.thread.ident][1] == 2.0)
    real.now += 1.0  # the waiter sleeps through it: it holds no one back before 2.0 + slack
    assert clock() == pytest.approx(2.3)
    wake.set()  # woken early, at 2.3: from now on it must keep up again
    waiting.join(5.0)
    real.now += 1.0
    assert clock() == pytest.approx(2.6)


def test_threads_that_checked_out_or_ended_hold_no_one_back(real, participant):
    clock = ScaledClock(10, slack=0.3)
    gone, ended = participant(clock), participant(clock)
    gone.do(lambda c: c.checkin())
    ended.do(lambda c: c.checkin())
    gone.do(lambda c: c.checkout())
    ended.stop()
    real.now += 1.0
    assert clock() == pytest.approx(10.0)


def test_threads_that_never_checked_in_are_not_waited_for(real, participant):
    clock = ScaledClock(10, slack=0.3)
    bystander = participant(clock)
    bystander.do(lambda c: c.wait(_set_event(), 0.1))
    real.now += 1.0
    assert clock() == pytest.approx(10.0)


def test_a_wait_lasts_its_clock_seconds_while_the_world_is_held_back(real, participant):
    clock = ScaledClock(10, slack=0.3)
    laggard = participant(clock)
    laggard.do(lambda c: c.checkin())
    done = threading.Event()
    sleeper = threading.Thread(target=lambda: (clock.wait(threading.Event(), 0.5), done.set()), daemon=True)
    sleeper.start()
    real.now += 10.0  # in real time the wait is long over, but the world stands at 0.3
    assert not done.wait(0.1) and clock() == pytest.approx(0.3)
    laggard.do(lambda c: c.checkin())  # the laggard catches up: time moves on
    real.now += 0.1
    assert done.wait(5.0) and clock() >= 0.5
    sleeper.join(5.0)


@pytest.mark.parametrize("speed, slack", [(0, 0.3), (-1, 0.3), (10, 0)])
def test_bad_speed_or_slack_is_refused(speed, slack):
    with pytest.raises(ValueError):
        ScaledClock(speed, slack=slack)


@pytest.mark.parametrize("make", [SystemClock, ManualClock])
def test_other_clocks_accept_checkins_and_ignore_them(make):
    clock = make()
    before = clock()
    clock.checkin()
    clock.checkin(until=before + 5)
    clock.checkout()
    assert clock() - before < 1.0


def _until(condition, timeout_s: float = 5.0) -> None:
    """Wait for another thread to get somewhere (it runs on its own; nothing here sleeps on purpose)."""
    done = threading.Event()
    for _ in range(int(timeout_s / 0.001)):
        if condition():
            return
        done.wait(0.001)
    raise AssertionError("the other thread never got there")


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event
