"""The demo's own lines: what a user reads in the terminal."""

from __future__ import annotations

import pytest

from kneeroll_device.demo import over_the_limit


@pytest.mark.parametrize("kpa, limit, words", [
    (25.0, 20.0, "pressure 25 kPa, over the 20 kPa limit"),
    (20.4, 20.0, "pressure 20.4 kPa, over the 20 kPa limit"),  # not "20 kPa, over the 20 kPa limit"
    (35.2, 32.5, "pressure 35 kPa, over the 32.5 kPa limit"),
])
def test_a_pressure_warning_reads_as_the_pressure_and_the_limit_it_is_over(kpa, limit, words):
    assert over_the_limit(kpa, limit) == words
