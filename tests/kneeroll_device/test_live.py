"""The daemon's live feed: sent when someone listens, dropped at once when not."""

from __future__ import annotations

import json
import socket

import pytest

from kneeroll_device.live import MAX_DATAGRAM, LivePublisher


@pytest.fixture
def listener_and_publisher(tmp_path):
    """A bound datagram socket, as the web process has, and the daemon's publisher to it."""
    path = tmp_path / "live.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    publisher = LivePublisher(path)
    yield listener, publisher
    publisher.close()
    listener.close()


def test_with_no_listener_a_snapshot_is_dropped_without_waiting(tmp_path):
    publisher = LivePublisher(tmp_path / "live.sock")
    publisher.publish({"state": "idle"}, now=0.0)
    assert (publisher.sent, publisher.dropped) == (0, 1)
    publisher.close()


def test_a_listener_gets_each_snapshot_with_its_send_time(listener_and_publisher):
    listener, publisher = listener_and_publisher
    publisher.publish({"state": "active", "seq": 1}, now=0.0)
    got = json.loads(listener.recv(MAX_DATAGRAM))
    assert got["state"] == "active" and got["sent_at"] > 0
    assert not publisher.due(0.1) and publisher.due(0.2)


def test_a_listener_that_does_not_read_never_blocks_the_daemon(listener_and_publisher):
    _, publisher = listener_and_publisher
    for k in range(2000):  # far more than the socket's buffer holds
        publisher.publish({"seq": k, "pad": "x" * 500}, now=float(k))
    assert publisher.dropped > 0 and publisher.sent + publisher.dropped == 2000
