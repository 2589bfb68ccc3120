"""The force adapter: calibration, blocks in newtons, tare, calibrate, and the whole chain over a pty."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from firmware_bridge.cli import register_calibrate
from firmware_bridge.emulator import PicoEmulator, squeeze_signal
from firmware_bridge.link import ForceLink, LinkBatch
from kneeroll_device.clock import ManualClock, ScaledClock
from kneeroll_device.errors import CalibrationError
from kneeroll_device.samples import DeviceEvent, ForceBlock, GapEvent
from kneeroll_device.sensors.force import (
    CALIBRATION_FILE,
    ForceCalibration,
    ForceSensor,
    calibrate_force,
    raw_to_newtons,
    saturated,
)


def test_raw_to_newtons_is_a_pure_affine_map():
    raw = np.array([1000, 1420, 580])
    assert np.allclose(raw_to_newtons(raw, 420.0, 1000), [0.0, 1.0, -1.0])
    assert np.allclose(ForceCalibration(-2.0, 10).to_newtons(np.array([0, 10])), [5.0, 0.0])


def test_saturation_is_flagged_at_both_rails():
    assert list(saturated(np.array([0x7FFFFF, 0, -0x800000, 5]))) == [True, False, True, False]


def test_calibration_saves_and_loads_from_the_state_directory(tmp_path):
    calibration = ForceCalibration(counts_per_newton=433.5, zero_offset=-1234.0)
    path = calibration.save(tmp_path / "state")
    assert path == tmp_path / "state" / CALIBRATION_FILE
    assert json.loads(path.read_text()) == {"counts_per_newton": 433.5, "zero_offset": -1234.0}
    assert ForceCalibration.load(tmp_path / "state") == calibration


def test_load_without_a_file_gives_the_default(tmp_path):
    default = ForceCalibration(400.0, 7.0)
    assert ForceCalibration.load(tmp_path, default) == default
    assert ForceCalibration.load(tmp_path) == ForceCalibration()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"counts_per_newton": 400}', '{"counts_per_newton": 0, "zero_offset": 0}'])
def test_a_bad_calibration_file_is_an_error_naming_it_and_the_fix(tmp_path, content):
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with pytest.raises(CalibrationError) as info:
        ForceCalibration.load(tmp_path)
    assert "calibrate force" in (info.value.fix or "")


def test_from_config_reads_the_force_section():
    class Section:
        counts_per_newton = 420.0
        zero_offset = 55

    assert ForceCalibration.from_config(Section()) == ForceCalibration(420.0, 55.0)


# --- ForceSensor on a stand-in link --------------------------------------------------------------


class FakeLink:
    """Delivers ``level`` counts (plus a little noise) at 80 Hz of its clock."""

    def __init__(self, clock=None, level=1000, noise=5):
        self.clock = clock or ManualClock()
        self.level = level
        self.noise = noise
        self.batches: list[LinkBatch] = []
        self.closed = 0
        self._next = 0
        self._rng = np.random.default_rng(0)

    def push(self, raw, t, events=()):
        n = len(raw)
        self.batches.append(
            LinkBatch(np.arange(n), np.arange(n) * 12_500, np.asarray(raw, np.int32), np.asarray(t, float), tuple(events))
        )

    def read(self) -> LinkBatch:
        if self.batches:
            return self.batches.pop(0)
        due = int(self.clock() * 80)
        n = max(0, due - self._next)
        idx = np.arange(self._next, self._next + n)
        self._next += n
        raw = self.level + self._rng.integers(-self.noise, self.noise + 1, n)
        return LinkBatch(idx, idx * 12_500, raw.astype(np.int32), idx / 80.0)

    def close(self):
        self.closed += 1


def test_read_gives_a_force_block_with_times_flags_gaps_and_events():
    link = FakeLink()
    gap = GapEvent(1.0, "force", 8, "corrupt frames")
    up = DeviceEvent(0.5, "force", "up", "receiving")
    link.push([1000, 1420, 0x7FFFFF], [1.0, 1.0125, 1.025], events=(up, gap))
    block = ForceSensor(link, ForceCalibration(420.0, 1000)).read()
    assert isinstance(block, ForceBlock)
    assert np.allclose(block.t, [1.0, 1.0125, 1.025])
    assert np.allclose(block.force[:2], [0.0, 1.0])
    assert list(block.saturated) == [False, False, True]
    assert block.gaps == (gap,) and block.events == (up,)


def test_tare_zeroes_at_the_median_of_recent_readings():
    link = FakeLink()
    sensor = ForceSensor(link, ForceCalibration(420.0, 0.0))
    link.push(np.full(100, 5000), np.linspace(0, 1, 100))
    sensor.read()
    assert sensor.tare().zero_offset == 5000.0
    assert sensor.calibration.zero_offset == 5000.0


def test_tare_refuses_too_few_readings_and_a_loaded_roller():
    link = FakeLink()
    sensor = ForceSensor(link, ForceCalibration(420.0, 0.0))
    with pytest.raises(CalibrationError):
        sensor.tare()
    link.push(np.linspace(0, 420 * 30, 100).astype(int), np.linspace(0, 1, 100))  # 30 N of squeeze
    sensor.read()
    with pytest.raises(CalibrationError) as info:
        sensor.tare()
    assert "keep it still" in info.value.fix


def test_close_closes_the_link_once():
    link = FakeLink()
    with ForceSensor(link, ForceCalibration()) as sensor:
        pass
    sensor.close()
    assert link.closed == 1


def test_calibrate_force_from_a_tare_and_a_known_mass():
    link = FakeLink(level=8000)
    prompts = []

    def ask(prompt):
        prompts.append(prompt)
        if len(prompts) == 2:  # the user puts 2 kg on: 2 * 9.80665 N at 420 counts/N
            link.level = 8000 + round(2 * 9.80665 * 420)

    calibration = calibrate_force(link, 2.0, ask=ask, say=lambda text: None, settle_s=1.0)
    assert len(prompts) == 2 and "2 kg" in prompts[1]
    assert calibration.zero_offset == pytest.approx(8000, abs=2)
    assert calibration.counts_per_newton == pytest.approx(420.0, rel=0.002)


def test_calibrate_force_refuses_a_mass_that_changed_nothing():
    with pytest.raises(CalibrationError) as info:
        calibrate_force(FakeLink(), 2.0, ask=lambda prompt: None, say=lambda text: None, settle_s=0.5)
    assert "wired" in info.value.fix


@pytest.mark.parametrize("mass", [0.0, -1.0, float("nan")])
def test_calibrate_force_refuses_a_bad_mass(mass):
    with pytest.raises(CalibrationError):
        calibrate_force(FakeLink(), mass, ask=lambda prompt: None, say=lambda text: None)


# --- the whole chain over a pty ---------------------------------------------------------------------


def test_emulated_pico_to_newtons_over_a_pty():
    clock = ScaledClock(10)
    signal = squeeze_signal(80.0, counts_per_newton=420.0, zero_offset=8000, noise_counts=0.0)
    emu = PicoEmulator.on_pty(signal=signal, clock=clock)
    link = ForceLink(emu.port_name, clock=clock).start()
    emu.start()
    sensor = ForceSensor(link, ForceCalibration(420.0, 8000))
    try:
        blocks = []
        assert link.wait_until(lambda: blocks.append(sensor.read()) or sum(map(len, blocks)) >= 800, 60.0)
        t = np.concatenate([b.t for b in blocks])
        force = np.concatenate([b.force for b in blocks])
        assert np.all(np.diff(t) >= 0)
        assert force.min() == pytest.approx(20.0, abs=0.5)  # the light hold
        assert force.max() > 150.0  # a squeeze
        events = [e.kind for b in blocks for e in b.events]
        assert events[0] == "up"
    finally:
        sensor.close()
        emu.close()


@pytest.mark.parametrize("as_json", [False, True])
def test_calibrate_force_command_saves_the_calibration(tmp_path, monkeypatch, capsys, as_json):
    level = {"counts": 8000}
    emu = PicoEmulator.on_pty(signal=lambda idx: np.full(len(idx), level["counts"]))
    emu.start()
    parser = argparse.ArgumentParser()
    register_calibrate(parser.add_subparsers())
    args = parser.parse_args(
        ["force", "--known-mass", "1.5", "--port", emu.port_name, "--data-dir", str(tmp_path), "--seconds", "0.3"]
        + (["--json"] if as_json else [])
    )
    answers = iter([8000, 8000 + round(1.5 * 9.80665 * 300)])

    def fake_input(prompt):
        level["counts"] = next(answers)
        return ""

    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.delenv("KNEEROLL_CONFIG", raising=False)
    try:
        assert args.func(args) == 0
    finally:
        emu.close()
    saved = ForceCalibration.load(tmp_path)
    assert saved.counts_per_newton == pytest.approx(300.0, rel=0.01)
    assert saved.zero_offset == pytest.approx(8000)
    out = capsys.readouterr().out
    if as_json:  # the document alone on stdout: the prompts went to stderr
        document = json.loads(out)
        assert document["counts_per_newton"] == pytest.approx(300.0, rel=0.01)
        assert document["known_mass_kg"] == 1.5 and document["saved_to"].endswith(".json")


def test_calibrate_force_command_names_a_missing_port(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register_calibrate(parser.add_subparsers())
    args = parser.parse_args(["force", "--known-mass", "1", "--port", str(tmp_path / "ttyNONE"), "--data-dir", str(tmp_path)])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "ttyNONE" in err and "dialout" in err
