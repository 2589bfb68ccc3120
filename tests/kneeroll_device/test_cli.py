"""The kneeroll command end to end: the demo on emulated hardware, replay, and clear errors."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys

import pytest

from kneeroll_device.cli import build_parser, main

SEED = 1


def kneeroll(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kneeroll_device.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    done = kneeroll("demo", "--json", "--seed", str(SEED), "--speed", "20", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), data_dir


def test_the_demo_completes_every_step_within_one_of_the_truth(demo):
    document, _ = demo
    assert document["completed"] is True
    assert len(document["steps"]) == 8
    for step in document["steps"]:
        assert step["completed"], step
        assert abs(step["strokes"] - step["truth"]["strokes"]) <= 1, step
        assert abs(step["reps"] - step["truth"]["reps"]) <= 1, step
        assert step["kind"] in ("roll", "release")
    assert {"t", "pattern", "step"} <= set(document["cues"][0])
    patterns = [c["pattern"] for c in document["cues"]]
    assert patterns[0] == "session_start" and patterns[-1] == "session_done"
    assert patterns.count("step_done") == 8


def test_the_demo_session_is_in_the_log(demo):
    document, data_dir = demo
    db = sqlite3.connect(data_dir / "kneeroll.db")
    outcome, steps_done = db.execute("SELECT outcome, steps_done FROM sessions WHERE id=?",
                                     (document["session_id"],)).fetchone()
    assert (outcome, steps_done) == ("completed", 8)
    strokes = db.execute("SELECT COUNT(*) FROM events WHERE kind='stroke' AND session_id=?",
                         (document["session_id"],)).fetchone()[0]
    assert strokes >= sum(s["strokes"] for s in document["steps"])


def counts(document) -> list[tuple[int, int]]:
    return [(s["strokes"], s["reps"]) for s in document["steps"]]


def test_simulate_then_replay_gives_the_demos_counts(demo, tmp_path):
    document, data_dir = demo
    assert kneeroll("simulate", "--out", str(tmp_path / "rec"), "--seed", str(SEED)).returncode == 0
    replayed = kneeroll("replay", str(tmp_path / "rec"), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert counts(json.loads(replayed.stdout)) == counts(document)
    kept = kneeroll("replay", document["recording"], "--json")  # the daemon's own recording
    assert counts(json.loads(kept.stdout)) == counts(document)


def test_analyze_counts_a_recording_the_same_whatever_the_block_size(tmp_path):
    assert kneeroll("simulate", "--out", str(tmp_path / "rec"), "--seed", "3").returncode == 0
    outputs = [kneeroll("analyze", str(tmp_path / "rec"), "--json", "--block-seconds", s).stdout for s in ("0.01", "10")]
    outputs.append(kneeroll("analyze", str(tmp_path / "rec"), "--json").stdout)  # a minute at a time
    assert outputs[0] == outputs[1] == outputs[2]
    result = json.loads(outputs[0])
    assert result["strokes"] > 40 and result["reps"] > 30 and result["pressure"]["peak_kpa"] > 0
    assert {seg["kind"] for seg in result["segments"]} >= {"roll", "hold", "rest"}
    assert result["has_force"] is True
    events = result["events"]
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    assert sum(e["kind"] == "stroke" for e in events) == result["strokes"]
    assert sum(e["kind"] == "rep" for e in events) == result["reps"]
    assert all(e["peak_t"] <= e["t"] for e in events if e["kind"] == "rep")


def one_line_error(capsys, *args: str, code: int) -> str:
    assert main(list(args)) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_an_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--bogus"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--bogus" in err


def test_a_bad_config_value_is_one_line_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[imu]\nrate_hz = 500\n")
    err = one_line_error(capsys, "config", "show", "--config", str(bad), code=2)
    assert "imu.rate_hz" in err and "50 to 400" in err


def test_a_malformed_recording_is_one_line(tmp_path, capsys):
    (tmp_path / "imu.csv").write_text("t,ax,ay,az\n0,0,0,1\n0.01,0,x,1\n")
    err = one_line_error(capsys, "analyze", str(tmp_path), code=2)
    assert "malformed" in err


def test_a_missing_column_is_one_line(tmp_path, capsys):
    (tmp_path / "imu.csv").write_text("t,ax,az\n0,0,1\n")
    err = one_line_error(capsys, "replay", str(tmp_path), code=2)
    assert "no column ay" in err


def test_config_show_prints_the_effective_config_as_json(capsys):
    assert main(["config", "show", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["imu"]["rate_hz"] == 100 and document["pins"]["button"] == 23


def test_the_common_options_work_after_the_subcommand_too(capsys):
    parser = build_parser()
    assert parser.parse_args(["run", "--debug"]).debug is True
    assert parser.parse_args(["--debug", "run"]).debug is True
    assert parser.parse_args(["run"]).debug is False


def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("kneeroll ")


def test_a_negative_seed_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--seed", "-1"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err and "-1" in err


@pytest.mark.parametrize("argv, said", [
    (["--fault-at", "50"], "goes with a scenario that has a fault"),
    (["--scenario", "sensor-fault", "--fault-at", "5000"], "after the end of this routine"),
])
def test_a_fault_time_that_would_be_ignored_is_refused(tmp_path, capsys, argv, said):
    assert main(["demo", "--data-dir", str(tmp_path), *argv]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "kneeroll.db").exists()  # refused before anything ran


def test_a_session_the_full_disk_kept_out_of_the_log_is_not_reported_as_logged(tmp_path, monkeypatch, capsys):
    import kneeroll_device.store as store

    @contextlib.contextmanager
    def disk_full(db):
        raise sqlite3.OperationalError("database or disk is full")
        yield  # pragma: no cover

    monkeypatch.setattr(store, "_transaction", disk_full)
    code = main(["demo", "--json", "--speed", "50", "--data-dir", str(tmp_path)])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == 1
    assert document["logged"] is False and document["session_id"] is None and document["writes_lost"] > 0
    assert "not logged in full" in captured.err and "free space" in captured.err


def test_production_modules_import_no_simulator():
    """Only the demo, the emulated hardware of --emulate and the simulator itself build on it."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "kneeroll_device"
    allowed = {"demo.py", "emulated.py", "cli.py"}
    offenders = []
    for path in package.rglob("*.py"):
        if "sim" in path.relative_to(package).parts[:-1] or path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n.split(".")[-1] == "sim" or ".sim." in n or n.startswith(("..sim", ".sim", "kneeroll_device.sim"))
                   for n in names):
                offenders.append(f"{path.relative_to(package)}: {names}")
    assert offenders == []
