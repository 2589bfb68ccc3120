"""Shared test set-up: mock pins everywhere, and real-hardware tests only on request."""

from __future__ import annotations

import os

import pytest

# gpiozero must never reach for real pins in the test suite, even on a Pi
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
os.environ.setdefault("GPIOZERO_MOCK_REVISION", "902120")


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
