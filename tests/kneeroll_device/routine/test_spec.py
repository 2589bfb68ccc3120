"""Routine files: the built-in routine, and errors that name the step and the key."""

from __future__ import annotations

import pytest

from kneeroll_device.errors import RoutineError
from kneeroll_device.routine.spec import builtin_routines, load_routine, parse_routine


def test_the_builtin_routine_has_the_eight_steps(routine):
    assert "runners-knee" in builtin_routines()
    assert [s.kind for s in routine.steps] == ["roll", "release"] * 3 + ["release", "roll"]
    tendon = routine.step(7)
    assert tendon.pressure_limit_kpa == min(s.pressure_limit_kpa for s in routine.steps)
    assert routine.step(8).orientation == "flipped"
    assert routine.sessions_per_day == 2 and routine.programme_days == 7


def minimal(**step):
    base = {"id": "a", "name": "A", "kind": "roll", "instruction": "roll", "roll_seconds": {"min": 10, "max": 20},
            "pressure_limit_kpa": 50, "colour": "green"}
    base.update(step)
    return {"routine": {"id": "r", "name": "R"}, "steps": [base]}


@pytest.mark.parametrize("change, words", [
    ({"kind": "rol"}, ["step 1 (a)", "'kind'", "roll, release"]),
    ({"colour": "red"}, ["step 1 (a)", "'colour'"]),
    ({"pressure_limit_kpa": -3}, ["'pressure_limit_kpa'", "from 1 to 300"]),
    ({"roll_seconds": {"min": 20, "max": 10}}, ["'roll_seconds'", "below min"]),
    ({"speed": 3}, ["unknown key 'speed'"]),
    ({"kind": "release"}, ["needs reps_per_point"]),
])
def test_errors_name_the_step_and_the_key(change, words):
    with pytest.raises(RoutineError) as caught:
        parse_routine(minimal(**change), "my.toml")
    text = str(caught.value)
    assert "my.toml" in text
    for word in words:
        assert word in text


def test_a_routine_file_by_path(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text('[routine]\nid = "short"\nname = "Short"\n[[steps]]\nid = "roll"\nname = "Roll"\nkind = "roll"\n'
                    'instruction = "Roll."\nroll_seconds = { min = 5, max = 10 }\npressure_limit_kpa = 40\ncolour = "cyan"\n')
    routine = load_routine(str(path))
    assert routine.id == "short" and routine.step(1).roll_seconds.min == 5


def test_a_missing_routine_lists_the_builtin_ones():
    with pytest.raises(RoutineError, match="runners-knee"):
        load_routine("no-such-routine")
