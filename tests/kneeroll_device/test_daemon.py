"""The daemon under systemd's eyes: a fake NOTIFY_SOCKET on a real datagram socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

SPEED = 5.0
FAULT_AT, FAULT_S = 8.0, 5.0  # demo seconds: the IMU leaves the bus at 8 s for 5 s


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    yield sock, str(path)
    sock.close()


def collect(sock: socket.socket, seconds: float, into: list[tuple[float, str]], until: str | None = None) -> None:
    """Datagrams for a while, each line with the (demo-clock) time it arrived."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            continue
        for line in data.splitlines():
            into.append((time.monotonic(), line))
            if until and line.startswith(until):
                return


def test_ready_then_watchdog_only_while_imu_samples_flow_then_stopping(tmp_path, notify_socket):
    sock, path = notify_socket
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")  # a ping due every 1 s of demo time
    started = time.monotonic()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "kneeroll_device.cli", "demo", "--scenario", "imu-fault", "--fault-at", str(FAULT_AT),
         "--speed", str(SPEED), "--data-dir", str(tmp_path / "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[tuple[float, str]] = []
    try:
        collect(sock, 30, seen, until="READY=1")
        ready_at = seen[-1][0]
        collect(sock, (FAULT_AT + FAULT_S + 6.0) / SPEED, seen)
        daemon.send_signal(signal.SIGTERM)
        collect(sock, 20, seen, until="STOPPING=1")
        assert daemon.wait(timeout=30) == 0, daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    lines = [line for _, line in seen]
    assert "READY=1" in lines and "STOPPING=1" in lines, lines
    pings = [(t - ready_at) * SPEED for t, line in seen if line == "WATCHDOG=1"]  # in demo seconds since ready
    assert len([p for p in pings if p < FAULT_AT]) >= 3  # fed while samples flow
    withheld = [line for line in lines if line.startswith("STATUS=watchdog withheld")]
    assert withheld and "imu" in withheld[0]
    # no ping from shortly after the IMU went quiet until it came back
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) > FAULT_S - 2.5, pings
    assert any(p > FAULT_AT + FAULT_S for p in pings)  # and pings resume once samples flow again
    assert time.monotonic() - started < 60
