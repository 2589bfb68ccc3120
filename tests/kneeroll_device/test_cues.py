"""Cues on mock pins: each pattern leaves its own history on the LED and buzzer pins."""

from __future__ import annotations

import pytest

from kneeroll_device.clock import ManualClock
from kneeroll_device.config import load_config
from kneeroll_device.cues import CUE_NAMES, PATTERNS, CuePlayer, mock_pin_factory


def play(name: str, *, buzzer_kind="tonal", quiet=False):
    config = load_config().replace(pins={"buzzer_kind": buzzer_kind}, cues={"quiet": quiet})
    factory = mock_pin_factory()
    player = CuePlayer(config.pins, config.cues, clock=ManualClock(), pin_factory=factory)
    try:
        player.play(name, step=3)
        assert player.wait_idle(timeout=5.0)
        buzzer = [s.state for s in factory.pin(config.pins.buzzer).states]
        red = [s.state for s in factory.pin(config.pins.led_red).states]
        return player, buzzer, red
    finally:
        player.close()


def beeps(states) -> int:
    """How many times the buzzer pin went from silent to sounding."""
    count, previous = 0, 0
    for state in states:
        if state and not previous:
            count += 1
        previous = state
    return count


@pytest.mark.parametrize("name", CUE_NAMES)
def test_each_cue_beeps_as_often_as_its_pattern_says(name):
    player, buzzer, _ = play(name)
    assert beeps(buzzer) == len(PATTERNS[name])
    assert player.history[0].pattern == name and player.history[0].step == 3
    assert buzzer[-1] == 0  # silent afterwards


def test_patterns_differ_by_rhythm_so_an_active_buzzer_tells_them_apart():
    rhythms = {name: tuple((n.on_s, n.off_s) for n in PATTERNS[name]) for name in CUE_NAMES}
    assert len(set(rhythms.values())) == len(CUE_NAMES)
    _, buzzer, _ = play("pressure_warning", buzzer_kind="active")
    assert set(buzzer) <= {0, 1, False, True} and beeps(buzzer) == 4


def test_the_pressure_warning_lights_red():
    _, _, red = play("pressure_warning")
    assert max(red) == 1.0


def test_quiet_mode_keeps_the_led_and_drops_the_sound():
    player, buzzer, red = play("step_done", quiet=True)
    assert player.buzzer is None and beeps(buzzer) == 0
    assert player.history[0].pattern == "step_done"


def test_a_warning_goes_ahead_of_waiting_cues():
    config = load_config()
    clock = ManualClock()
    player = CuePlayer(config.pins, config.cues, clock=clock, pin_factory=mock_pin_factory(), autostart=False)
    try:
        player.play("session_start")
        player.play("step_start")
        player.play("pressure_warning")
        player.start()
        player.wait_idle(timeout=5.0)
        assert [r.pattern for r in player.history] == ["pressure_warning", "session_start", "step_start"]
    finally:
        player.close()


def test_every_cue_is_described_for_someone_without_the_pod():
    from kneeroll_device.config import load_config
    from kneeroll_device.cues import CUE_NAMES, MEANINGS, PATTERNS, describe

    config = load_config(None)
    assert set(MEANINGS) == set(PATTERNS)
    warning = describe("pressure_warning", config.cues)
    assert warning["means"].startswith("pressing too hard")
    assert warning["text"] == "4 notes: 0.06 s at 1760 Hz, 0.06 s at 1760 Hz, 0.06 s at 1760 Hz, 0.06 s at 1760 Hz; LED red"
    quiet = config.replace(cues={"quiet": True}).cues
    assert "silent" in describe("step_done", quiet)["text"]
    assert all(describe(name, config.cues)["notes"] for name in CUE_NAMES)


def test_cues_json_lists_each_cue_with_its_notes(capsys):
    import json

    from kneeroll_device.cli import main

    assert main(["cues", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in document["cues"]][:2] == ["session_start", "step_start"]
    assert {"on_s", "off_s", "hz", "led"} == set(document["cues"][0]["notes"][0])
