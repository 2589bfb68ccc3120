"""sd_notify against a real Unix datagram socket; time comes from a ManualClock."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid

import pytest

from kneeroll_device.clock import ManualClock
from kneeroll_device.sdnotify import Notifier, Watchdog, socket_address, watchdog_interval


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: collects every datagram sent to it."""

    def __init__(self, sock: socket.socket, notify_socket: str):
        self.sock = sock
        self.notify_socket = notify_socket
        self.sock.setblocking(False)

    def environ(self, **extra: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.notify_socket, **extra}

    def messages(self) -> list[str]:
        """Every datagram received so far, oldest first (non-blocking: no waiting)."""
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return received


@pytest.fixture
def systemd(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield FakeSystemd(sock, path)
    sock.close()


@pytest.fixture
def abstract_systemd():
    if not sys.platform.startswith("linux"):
        pytest.skip("abstract Unix sockets are a Linux feature")
    name = f"kneeroll-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    yield FakeSystemd(sock, "@" + name)
    sock.close()


# --- the protocol -----------------------------------------------------------------------


def test_unset_notify_socket_makes_every_call_a_quiet_no_op():
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    assert notifier.watchdog_interval() is None


def test_messages_reach_a_socket_path(systemd):
    with Notifier(environ=systemd.environ()) as notifier:
        assert notifier.enabled
        assert notifier.ready()
        assert notifier.status("sampling IMU at 100 Hz")
        assert notifier.watchdog()
        assert notifier.stopping()
    assert systemd.messages() == [
        "READY=1",
        "STATUS=sampling IMU at 100 Hz",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_messages_reach_an_abstract_socket(abstract_systemd):
    with Notifier(environ=abstract_systemd.environ()) as notifier:
        assert notifier.ready("sensors open")
    assert abstract_systemd.messages() == ["READY=1\nSTATUS=sensors open"]


def test_status_with_newlines_stays_one_assignment(systemd):
    with Notifier(environ=systemd.environ()) as notifier:
        notifier.status("IMU missing\nforce ok")
    assert systemd.messages() == ["STATUS=IMU missing force ok"]


def test_extend_timeout_is_in_microseconds(systemd):
    with Notifier(environ=systemd.environ()) as notifier:
        notifier.extend_timeout(2.5)
    assert systemd.messages() == ["EXTEND_TIMEOUT_USEC=2500000"]


def test_a_vanished_socket_is_reported_once_not_raised(tmp_path, caplog):
    notifier = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="kneeroll_device.sdnotify"):
        assert notifier.watchdog() is False
        assert notifier.watchdog() is False
    assert len(caplog.records) == 1
    notifier.close()
    notifier.close()  # safe twice


def test_unsupported_socket_scheme_disables_notifications():
    assert socket_address("vsock:2:1234") is None
    assert not Notifier(environ={"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_abstract_address_starts_with_nul():
    assert socket_address("@name") == b"\0name"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("") is None
    assert socket_address(None) is None


# --- the watchdog interval from the environment -----------------------------------------


def test_interval_is_half_of_watchdog_usec():
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0


def test_interval_applies_to_the_named_pid_only():
    env = {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "4242"}
    assert watchdog_interval(env, pid=4242) == 5.0
    assert watchdog_interval(env, pid=4243) is None
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0


@pytest.mark.parametrize("usec", ["", "0", "-5", "ten"])
def test_no_or_bad_watchdog_usec_means_no_watchdog(usec):
    assert watchdog_interval({"WATCHDOG_USEC": usec}) is None
    assert watchdog_interval({}) is None


def test_bad_watchdog_pid_means_no_watchdog():
    assert watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "x"}) is None


def test_notifier_exposes_the_interval(systemd):
    notifier = Notifier(environ=systemd.environ(WATCHDOG_USEC="4000000", WATCHDOG_PID="7"), pid=7)
    assert notifier.watchdog_interval() == 2.0


# --- the Watchdog helper ----------------------------------------------------------------


def make_watchdog(systemd, clock, **kwargs):
    notifier = Notifier(environ=systemd.environ(WATCHDOG_USEC="10000000"))
    return Watchdog(notifier, clock, **kwargs)


def pings(systemd) -> int:
    return systemd.messages().count("WATCHDOG=1")


def test_pings_at_the_interval_while_samples_are_fresh(systemd):
    clock = ManualClock(100.0)
    dog = make_watchdog(systemd, clock)
    assert dog.interval == 5.0
    sent_at = []
    for _ in range(1500):  # 15 s in 10 ms steps
        dog.samples_arrived(clock())
        if dog.tick():
            sent_at.append(clock())
        clock.advance(0.01)
    assert sent_at == pytest.approx([100.0, 105.0, 110.0])
    assert pings(systemd) == 3


def test_tick_between_pings_sends_nothing(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock)
    assert dog.tick()
    clock.advance(4.9)
    dog.samples_arrived()
    assert not dog.tick()
    assert dog.seconds_until_due() == pytest.approx(0.1)
    clock.advance(0.1)
    assert dog.tick()
    assert pings(systemd) == 2


def test_startup_grace_then_silence_withholds_pings(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock, freshness_s=2.0)
    assert dog.tick()  # within the start-up grace
    clock.advance(5.0)  # no samples ever arrived
    assert not dog.tick()
    assert dog.stale_sources() == ["sensors"]
    messages = systemd.messages()
    assert "WATCHDOG=1" in messages[0]
    assert messages[1].startswith("STATUS=watchdog withheld")
    assert "sensors silent 5.0 s" in messages[1]


def test_stale_samples_withhold_and_fresh_ones_resume(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock, freshness_s=2.0)
    dog.samples_arrived(0.0)
    assert dog.tick()
    clock.advance(5.0)
    dog.samples_arrived(2.9)  # last samples 2.1 s old at the due time
    assert not dog.tick()
    assert not dog.tick()  # the status is sent once per episode
    clock.advance(0.5)
    dog.samples_arrived()
    assert dog.tick()  # overdue, so it goes out at once
    assert systemd.messages() == [
        "WATCHDOG=1",
        "STATUS=watchdog withheld: no fresh samples (sensors silent 2.1 s)",
        "WATCHDOG=1",
    ]


def test_samples_exactly_at_the_freshness_limit_still_count(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock, freshness_s=2.0)
    dog.samples_arrived(0.0)
    clock.advance(2.0)
    assert dog.healthy()
    clock.advance(0.001)
    assert not dog.healthy()


def test_declared_degraded_state_keeps_pinging_without_samples(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock)
    dog.declare_degraded("IMU not found on I2C bus 1")
    sent = 0
    for _ in range(4):
        sent += dog.tick()
        clock.advance(5.0)
    assert sent == 4
    assert dog.degraded == {"daemon": "IMU not found on I2C bus 1"}


def test_clearing_degraded_requires_samples_again(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock)
    dog.declare_degraded("no sensors")
    clock.advance(10.0)
    assert dog.tick()
    dog.clear_degraded()
    clock.advance(5.0)
    assert not dog.tick()


def test_each_source_must_be_fresh_or_declared_degraded(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock, sources=("imu", "force"))
    clock.advance(5.0)
    dog.samples_arrived(source="imu")
    assert dog.stale_sources() == ["force"]
    assert not dog.tick()
    dog.declare_degraded("Pico not answering on /dev/serial0", source="force")
    assert dog.tick()
    assert dog.degraded == {"force": "Pico not answering on /dev/serial0"}
    dog.clear_degraded("force")
    assert dog.stale_sources() == ["force"]


def test_an_unnamed_source_is_refused_when_there_are_several(systemd):
    dog = make_watchdog(systemd, ManualClock(), sources=("imu", "force"))
    with pytest.raises(ValueError, match="name the source"):
        dog.samples_arrived()
    with pytest.raises(ValueError, match="unknown sample source"):
        dog.samples_arrived(source="gps")


def test_old_timestamps_never_move_freshness_backwards(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock)
    dog.samples_arrived(10.0)
    dog.samples_arrived(3.0)  # a late report of an older block
    clock.advance(11.0)
    assert dog.healthy()


def test_without_watchdog_usec_the_watchdog_is_off(systemd):
    notifier = Notifier(environ=systemd.environ())
    dog = Watchdog(notifier, ManualClock())
    assert not dog.enabled
    assert dog.seconds_until_due() is None
    assert not dog.tick()
    assert systemd.messages() == []


def test_an_explicit_interval_overrides_the_environment(systemd):
    clock = ManualClock()
    dog = Watchdog(Notifier(environ=systemd.environ()), clock, interval=1.0)
    dog.samples_arrived()
    assert dog.tick()
    clock.advance(1.0)
    dog.samples_arrived()
    assert dog.tick()
    assert pings(systemd) == 2


def test_bad_arguments_are_refused(systemd):
    notifier = Notifier(environ=systemd.environ())
    with pytest.raises(ValueError):
        Watchdog(notifier, ManualClock(), sources=())
    with pytest.raises(ValueError):
        Watchdog(notifier, ManualClock(), freshness_s=0)


def test_withholding_is_logged_once_per_episode(systemd, caplog):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock)
    clock.advance(5.0)
    with caplog.at_level(logging.WARNING, logger="kneeroll_device.sdnotify"):
        dog.tick()
        dog.tick()
    assert [r.getMessage() for r in caplog.records] == [
        "watchdog withheld: no fresh samples (sensors silent 5.0 s)"
    ]


def test_sensor_threads_may_report_while_the_main_loop_ticks(systemd):
    clock = ManualClock()
    dog = make_watchdog(systemd, clock, sources=("imu", "force"))
    errors = []

    def report(source: str):
        try:
            for i in range(2000):
                dog.samples_arrived(source=source)
                if i % 50 == 0:
                    dog.declare_degraded("flaky", source=source)
                    dog.clear_degraded(source)
        except Exception as error:  # pragma: no cover - the assertion shows it
            errors.append(error)

    workers = [threading.Thread(target=report, args=(name,)) for name in ("imu", "force")]
    for worker in workers:
        worker.start()
    for _ in range(2000):
        dog.tick()
        dog.stale_sources()
    for worker in workers:
        worker.join(timeout=10)
    assert errors == []
    assert dog.healthy() and dog.degraded == {}


def test_stopping_with_a_status(systemd):
    with Notifier(environ=systemd.environ()) as notifier:
        notifier.stopping("session saved")
    assert systemd.messages() == ["STOPPING=1\nSTATUS=session saved"]
