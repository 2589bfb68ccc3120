"""Each demo scenario ends the way the person's session did.

Two demos run at a time, one a core, at 20x. The emulated devices are real threads on
a fast clock; when they starve, the clock waits for them (clock.ScaledClock), so more
demos at once only run slower, never wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCENARIOS = ("heavy-tendon", "skip", "idle", "sensor-fault")
AT_ONCE = 2


def start_demo(name: str, data_dir) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kneeroll_device.cli", "demo", "--json", "--scenario", name, "--seed", "2",
         "--speed", "20", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    documents = {}
    for first in range(0, len(SCENARIOS), AT_ONCE):
        names = SCENARIOS[first:first + AT_ONCE]
        runs = {name: start_demo(name, tmp_path_factory.mktemp(name)) for name in names}
        for name, run in runs.items():
            out, err = run.communicate(timeout=240)
            assert run.returncode == 0, err
            documents[name] = json.loads(out)
    return documents


def patterns(document) -> list[str]:
    return [cue["pattern"] for cue in document["cues"]]


def test_heavy_tendon_warns_on_the_tendon_step_only(outcomes):
    document = outcomes["heavy-tendon"]
    assert document["completed"]
    tendon = next(s for s in document["steps"] if s["id"] == "patellar-tendon")
    assert tendon["warnings"] >= 1 and tendon["time_over_limit_s"] > 1.0
    assert all(s["warnings"] == 0 for s in document["steps"] if s["id"] != "patellar-tendon")
    warned_steps = {c["step"] for c in document["cues"] if c["pattern"] == "pressure_warning"}
    assert warned_steps == {tendon["index"]}


def test_skip_leaves_out_the_step_held_for(outcomes):
    document = outcomes["skip"]
    assert document["completed"]
    skipped = [s for s in document["steps"] if s["skipped"]]
    assert [s["id"] for s in skipped] == ["tfl-release"] and skipped[0]["truth"]["skipped"]


def test_idle_is_abandoned_after_a_reminder(outcomes):
    document = outcomes["idle"]
    assert document["outcome"] == "abandoned" and not document["completed"]
    assert "idle_reminder" in patterns(document)
    assert [s["completed"] for s in document["steps"]][:4] == [True] * 4


def test_sensor_fault_cues_the_fault_and_completes(outcomes):
    document = outcomes["sensor-fault"]
    assert document["completed"]
    assert "sensor_fault" in patterns(document)
    for step in document["steps"]:
        assert abs(step["strokes"] - step["truth"]["strokes"]) <= 1
