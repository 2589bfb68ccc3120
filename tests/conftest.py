"""Shared test set-up: mock pins everywhere, and real-hardware tests only on request."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# gpiozero must never reach for real pins in the test suite, even on a Pi
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
os.environ.setdefault("GPIOZERO_MOCK_REVISION", "902120")


def pytest_addoption(parser):
    parser.addoption("--busy", type=int, default=int(os.environ.get("KNEEROLL_TEST_BUSY", "0")), metavar="N",
                     help="run the suite beside N processes that keep a core busy each (CPU contention; "
                          "also $KNEEROLL_TEST_BUSY): the tests must pass on a starved machine too")


@pytest.fixture(scope="session", autouse=True)
def cpu_contention(request):
    """N busy processes for the whole session when --busy N is given, stopped at the end."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(request.config.getoption("--busy"))]
    yield len(hogs)
    for hog in hogs:
        hog.kill()
        hog.wait()


def pytest_report_header(config):
    busy = config.getoption("--busy")
    return f"cpu contention: {busy} busy process(es)" if busy else None


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KNEEROLL_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a Raspberry Pi with the sensors wired: set KNEEROLL_HARDWARE=1")
    for item in items:
        if item.get_closest_marker("hardware") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def routine():
    from kneeroll_device.routine.spec import load_routine

    return load_routine("runners-knee")


@pytest.fixture(scope="session")
def session1():
    from simhelpers import simulated

    return simulated(1)
