"""The ``kneeroll`` command: thin; it parses, delegates and reports.

Exit codes: 0 done, 1 the job failed (a device missing, a check failed), 2 bad
usage or bad input. Errors are one or two lines on stderr naming the problem
and the fix; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from pathlib import Path

from .cliutil import PROG, Parser, add_common_options, fmt, json_out, load_for, number_in, package_version, whole_in
from .errors import InputError, KneerollError
from .scenarios import DEMO_ONLY_SCENARIOS, PERSON_SCENARIOS



def _routine(config):
    from .routine.spec import load_routine

    return load_routine(config.routine.file)


# --- demo --------------------------------------------------------------------------------


def cmd_demo(args) -> int:
    from .demo import describe_action, describe_cue, run_demo
    from .replay import step_json
    from .store import session_in_log
    from .sim.world import simulate_session

    if not args.debug:
        # the demo tells faults in its own lines; the drivers' log lines (such as the IMU
        # FIFO overflowing while the devices start up) are for --debug
        logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    config = load_for(args)
    routine = _routine(config)
    person_scenario = "normal" if args.scenario in DEMO_ONLY_SCENARIOS else args.scenario
    legs = 2 if config.routine.leg == "both" else 1
    session = simulate_session(routine, seed=args.seed, scenario=person_scenario, legs=legs)
    _check_fault_at(args, session.duration)
    live = not args.json
    # the daemon's loop and the cue player's thread both print: a line at a time, whole
    printing = threading.Lock()

    def say(line: str) -> None:
        with printing:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def on_action(action, daemon):
        line = describe_action(action, daemon)
        if live and line:
            say(line)

    def on_cue(record):
        if live and args.cues:
            say(describe_cue(record))

    site = _start_site(config, args) if args.web else None
    if live:
        print(f"kneeroll demo: seed {args.seed}, scenario {args.scenario}, {session.duration:.0f} s of routine "
              f"at {args.speed:g}x, log in {config.storage.data_dir}", flush=True)
    result, daemon = run_demo(config, routine, session, data_dir=config.storage.data_dir, speed=args.speed,
                              on_action=on_action, on_cue=on_cue, scenario=args.scenario, fault_at=args.fault_at)
    summary = result.summary if result else daemon.engine.session_summary()
    truth = {s["index"]: s for s in session.truth()["steps"]}
    steps = [step_json(s, truth.get(s["index"])) for s in summary["steps"]]
    lost = daemon.store.writes_lost
    logged = result is not None and result.session_id is not None and lost == 0 and session_in_log(daemon.store.path,
                                                                                                   result.session_id)
    document = {
        "completed": bool(result and result.outcome == "completed"),
        "outcome": result.outcome if result else None,
        "seed": args.seed, "scenario": args.scenario,
        "logged": logged,
        "writes_lost": lost,
        "session_id": result.session_id if result and logged else None,
        "log": str(daemon.store.path),
        "recording": result.recording if result else None,
        "recording_cut_short": result.recording_cut_short if result else None,
        "steps": steps,
        "cues": daemon.cue_log,
    }
    if args.json:
        json_out(document)
    else:
        _print_step_table(steps)
        if logged:
            print(f"log: {daemon.store.path} (session {document['session_id']})")
        if document["recording"]:
            cut = document["recording_cut_short"]
            print(f"recording: {document['recording']}" + (f", {cut_short_text(cut)}" if cut else ""))
        elif document["recording_cut_short"]:
            print(f"no recording kept: {document['recording_cut_short']['reason']}")
    if site is not None:
        _linger(site, live)
    if result is not None and not logged:
        sys.stderr.write(f"{PROG}: error: the session was not logged in full ({lost} writes lost) "
                         f"(fix: free space where the log lives, {daemon.store.path.parent}, and run again)\n")
    return 0 if result is not None and logged else 1


def cut_short_text(cut: dict) -> str:
    """Where and why a recording ends before its session: 'cut short at 95.0 s (why)'."""
    at = f" at {cut['at_s']:.1f} s" if isinstance(cut.get("at_s"), (int, float)) else ""
    return f"cut short{at} ({cut.get('reason', 'no reason given')})"


def _emulated():
    """The emulated hardware behind --emulate, built from the simulator only when asked for."""
    from . import emulated

    return emulated


def _check_fault_at(args, duration: float) -> None:
    """--fault-at only means something for a scenario with a fault, and within the routine."""
    from .demo import SCENARIO_FAULTS

    if args.fault_at is None:
        return
    if args.scenario not in SCENARIO_FAULTS and args.scenario != "imu-fault":
        raise InputError(f"--fault-at goes with a scenario that has a fault, not {args.scenario!r}",
                         "add --scenario sensor-fault or --scenario imu-fault")
    if args.fault_at >= duration:
        raise InputError(f"--fault-at {args.fault_at:g} is after the end of this routine ({duration:.0f} s)",
                         f"choose a time from 0 to {duration:.0f} s")


def _start_site(config, args):
    from .web.serve import start_in_thread, url_of

    bind, port = config.web.bind, args.port if args.port is not None else config.web.port
    server, thread = start_in_thread(config, bind, port)
    # on stderr with --json, so that stdout stays one JSON document
    out = sys.stderr if args.json else sys.stdout
    print(f"live view: {url_of(bind, port, '/live')}", file=out, flush=True)
    return server, thread


def _linger(site, live: bool) -> None:
    """After the demo the site stays up for a look at the session when a person is at the
    terminal (until Ctrl-C); a script's run ends with the demo."""
    server, thread = site
    if live and sys.stdin.isatty():
        print("the site stays up to look at the session: Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while thread.is_alive():
                thread.join(0.5)
    server.should_exit = True
    thread.join(5.0)


def _print_step_table(steps: list[dict]) -> None:
    from .insight import target_text

    legs = len({s["leg"] for s in steps}) > 1  # --leg both: say which leg each step was on
    width = max(len(s["name"]) for s in steps)
    leg_head = f" {'leg':<5}" if legs else ""
    header = (f"{'#':>2} {'step':<{width}}{leg_head} {'target':<26} {'result':<7} {'strokes':>7} {'reps':>7} "
              f"{'active s':>10} {'kPa mean/peak':>14} {'N mean/peak':>12}")
    print(header)
    print("-" * len(header))
    for s in steps:
        truth = s.get("truth") or {}
        result = "done" if s["completed"] else ("skipped" if s["skipped"] else "-")
        strokes = f"{s['strokes']}" + (f"/{truth['strokes']}" if truth else "")
        reps = f"{s['reps']}" + (f"/{truth['reps']}" if truth else "")
        active = fmt(s["active_s"], 1) + (f"/{fmt(truth.get('active_s'), 1)}" if truth else "")
        kpa = f"{fmt(s['mean_kpa'])}/{fmt(s['peak_kpa'])}"
        newtons = f"{fmt(s['mean_force_n'])}/{fmt(s['peak_force_n'])}"
        leg = f" {s['leg']:<5}" if legs else ""
        print(f"{s['index']:>2} {s['name']:<{width}}{leg} {target_text(s):<26} {result:<7} {strokes:>7} {reps:>7} "
              f"{active:>10} {kpa:>14} {newtons:>12}")
    if any(s.get("truth") for s in steps):
        print("(counts shown as measured/true: the simulated person's ground truth)")


# --- run -----------------------------------------------------------------------------------


def cmd_run(args) -> int:
    from .clock import SystemClock
    from .daemon import Daemon, systemd_bridge
    from .demo import stop_on_signals
    from .sensors.bus import open_bus
    from .sensors.imu import open_imu
    from .sensors.force import ForceCalibration, ForceSensor
    from firmware_bridge.link import ForceLink

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_for(args)
    routine = _routine(config)
    clock = SystemClock()
    data_dir = config.storage.data_dir
    bus_number = config.imu.bus
    with contextlib.ExitStack() as opened:  # whatever fails to open, what did open is closed
        imu = opened.enter_context(open_imu(
            open_bus(bus_number), address=None if config.imu.address == "auto" else config.imu.address,
            rate_hz=config.imu.rate_hz, chip=None if config.imu.chip == "auto" else config.imu.chip,
            accel_range_g=config.imu.accel_range_g, gyro_range_dps=config.imu.gyro_range_dps, clock=clock,
            calibration=data_dir, reopen=lambda: open_bus(bus_number)))
        calibration = ForceCalibration.load(data_dir, ForceCalibration.from_config(config.force))
        link = opened.enter_context(ForceLink(config.force.port, baudrate=config.force.baudrate, clock=clock).start())
        force = opened.enter_context(ForceSensor(link, calibration))
        daemon = Daemon(config, imu=imu, force=force, routine=routine, data_dir=data_dir, clock=clock,
                        notifier=systemd_bridge(clock))
        stop_on_signals(daemon)
        daemon.run()
    return 0


# --- recordings ----------------------------------------------------------------------------


def cmd_simulate(args) -> int:
    from .demo import emulated_quantiser
    from .sim.world import simulate_session, write_recording

    config = load_for(args)
    routine = _routine(config)
    session = simulate_session(routine, seed=args.seed, scenario=args.scenario)
    # the values as the emulated devices would deliver them, so a replay matches the demo
    out = write_recording(session, Path(args.out), imu_rate_hz=config.imu.rate_hz,
                          force_rate_hz=config.force.sample_rate_hz, gzip=args.gzip,
                          quantise=emulated_quantiser(config))
    if args.json:
        json_out({"out": str(out), "duration_s": round(session.duration, 2), "truth": session.truth()})
    else:
        total = session.truth()["steps"]
        print(f"wrote {out}: {session.duration:.0f} s, {len(total)} steps, "
              f"{sum(s['strokes'] for s in total)} strokes, {sum(s['reps'] for s in total)} reps (seed {args.seed})")
    return 0


def cmd_replay(args) -> int:
    from .pipeline import ContactModel
    from .recording import read_recording
    from .replay import replay_recording
    from .routine.engine import EngineSettings

    config = load_for(args)
    routine = _routine(config)
    rec = read_recording(args.path)
    result = replay_recording(rec, routine, leg=config.routine.leg, settings=EngineSettings.from_config(config),
                              contact=ContactModel.from_config(config.pressure), block_seconds=args.block_seconds)
    document = result.as_json()
    if rec.cut_short:
        document["cut_short"] = rec.cut_short
    if args.json:
        json_out(document)
    else:
        _print_step_table(document["steps"])
        print(f"outcome: {document['outcome']}")
        if rec.cut_short:
            print(f"the recording was {cut_short_text(rec.cut_short)}: the session went on past its end")
    return 0


def cmd_analyze(args) -> int:
    from .pipeline import ContactModel
    from .recording import read_recording
    from .replay import ANALYZE_BLOCK_S, analyze_recording

    config = load_for(args)
    rec = read_recording(args.path)
    result = analyze_recording(rec, ContactModel.from_config(config.pressure),
                               block_seconds=args.block_seconds or ANALYZE_BLOCK_S)
    if args.json:
        document = {k: result[k] for k in ("duration_s", "has_force", "strokes", "reps", "segments", "pressure", "events",
                                           "gaps")}
        json_out(dict(document, cut_short=rec.cut_short) if rec.cut_short else document)
        return 0
    reps = f"{result['reps']} reps" if result["has_force"] else "no reps counted (reps need the force sensor's force.csv)"
    print(f"{args.path}: {result['duration_s']:.1f} s, {result['strokes']} strokes, {reps}")
    if rec.cut_short:
        print(f"the recording was {cut_short_text(rec.cut_short)}: the session went on past its end")
    if result["pressure"]:
        print(f"pressure: {result['pressure']['mean_kpa']:.1f} kPa mean, {result['pressure']['peak_kpa']:.1f} kPa peak")
    for seg in result["segments"]:
        print(f"  {seg['kind']:<5} {seg['start']:8.1f} - {seg['end']:8.1f} s  strokes {seg['strokes']:>3}  reps {seg['reps']:>3}")
    for gap in result["gaps"]:
        print(f"  gap at {gap['t']:.1f} s: {gap['reason']}")
    return 0


# --- config, cues, log -------------------------------------------------------------------------


def cmd_config_show(args) -> int:
    import tomli_w

    config = load_for(args)
    document = config.as_dict()
    if args.json:
        json_out(document)
    else:
        sys.stdout.write(f"# effective config ({config.source})\n" + tomli_w.dumps(document))
    return 0


def cmd_cues(args) -> int:
    from .clock import SystemClock
    from .cues import CUE_NAMES, CuePlayer, describe, mock_pin_factory

    config = load_for(args)
    cues = [describe(name, config.cues) for name in CUE_NAMES]
    if args.json:
        json_out({"cues": cues, "quiet": config.cues.quiet})
        return 0
    if not args.preview:
        for cue in cues:
            print(f"{cue['name']:<17} {cue['means']}\n{'':<17} {cue['text']}")
        return 0
    factory = None if args.real_pins else mock_pin_factory()
    with CuePlayer(config.pins, config.cues, clock=SystemClock(), pin_factory=factory) as player:
        for cue in cues:
            name = cue["name"]
            print(f"{name}: {cue['means']}. {cue['text']}", flush=True)
            player.play(name, None)
            player.wait_idle(timeout=10.0)
            SystemClock().sleep(0.6)
    return 0


# --- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:

    parser = Parser(prog=PROG, description="Sensor companion for a handled foam roller.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    demo = commands.add_parser("demo", help="the daemon on emulated hardware, through a whole simulated routine")
    # above ~50x the emulated IMU's FIFO fills faster than a thread is sure to be scheduled
    demo.add_argument("--speed", type=number_in(0.1, 50), default=20.0,
                      help="times faster than life, 0.1 to 50 (default 20; 1 is real time)")
    demo.add_argument("--seed", type=whole_in(0, 2**32 - 1), default=1, help="the simulated person and session (default 1)")
    demo.add_argument("--scenario", choices=PERSON_SCENARIOS + DEMO_ONLY_SCENARIOS, default="normal",
                      help="what happens in the session")
    demo.add_argument("--fault-at", type=number_in(0, 100000), metavar="S",
                      help="when the sensor-fault or imu-fault scenario's fault starts (default: mid-routine)")
    demo.add_argument("--cues", action="store_true", help="print each cue as it plays")
    demo.add_argument("--leg", choices=("left", "right", "both"), help="which leg, or both in a row (overrides the config)")
    demo.add_argument("--routine", metavar="FILE", help="a routine file or built-in name (overrides the config)")
    demo.add_argument("--web", action="store_true", help="serve the phone site beside the demo, to watch its live view")
    demo.add_argument("--port", type=whole_in(1, 65535), help="the site's port with --web (default: web.port, 8080)")
    add_common_options(demo, data_dir=True, json_flag=True)
    demo.set_defaults(func=cmd_demo)

    run = commands.add_parser("run", help="the daemon on the configured hardware (what the service runs)")
    add_common_options(run, data_dir=True)
    run.add_argument("--routine", metavar="FILE", help="a routine file or built-in name (overrides the config)")
    run.add_argument("--leg", choices=("left", "right", "both"), help="which leg (overrides the config)")
    run.set_defaults(func=cmd_run)

    simulate = commands.add_parser("simulate", help="write a simulated session as a recording folder")
    simulate.add_argument("--out", required=True, metavar="DIR", help="the recording folder to write")
    simulate.add_argument("--seed", type=whole_in(0, 2**32 - 1), default=1, help="the simulated person and session (default 1)")
    simulate.add_argument("--scenario", choices=PERSON_SCENARIOS, default="normal")
    simulate.add_argument("--gzip", action="store_true", help="write .csv.gz")
    add_common_options(simulate, json_flag=True)
    simulate.set_defaults(func=cmd_simulate)

    replay = commands.add_parser("replay", help="run the pipeline and the routine engine over a recording")
    replay.add_argument("path", metavar="DIR", help="a recording folder")
    replay.add_argument("--block-seconds", type=number_in(0.01, 3600), default=10.0, metavar="S")
    replay.add_argument("--routine", metavar="FILE", help="a routine file or built-in name")
    replay.add_argument("--leg", choices=("left", "right", "both"))
    add_common_options(replay, json_flag=True)
    replay.set_defaults(func=cmd_replay)

    analyze = commands.add_parser("analyze", help="count strokes and reps in a recording or an IMU CSV")
    analyze.add_argument("path", metavar="PATH", help="a recording folder or an IMU CSV (t,ax,ay,az[,gx,gy,gz])")
    analyze.add_argument("--block-seconds", type=number_in(0.01, 3600), metavar="S",
                         help="seconds fed to the pipeline at a time (default: a minute; the result does not depend on it)")
    add_common_options(analyze, json_flag=True)
    analyze.set_defaults(func=cmd_analyze)

    config = commands.add_parser("config", help="the configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    config_commands.required = True
    show_config = config_commands.add_parser("show", help="print the effective config")
    add_common_options(show_config, json_flag=True)
    show_config.set_defaults(func=cmd_config_show)

    cues = commands.add_parser("cues", help="list the cues, or play each one")
    cues.add_argument("--preview", action="store_true", help="play every cue in turn")
    cues.add_argument("--real-pins", action="store_true", help="on a Pi: use the real pins, not mock ones")
    add_common_options(cues, json_flag=True)
    cues.set_defaults(func=cmd_cues)

    calibrate = commands.add_parser("calibrate", help="calibrate the IMU or the force sensor")
    calibrate_commands = calibrate.add_subparsers(dest="calibrate_command", metavar="SENSOR", parser_class=Parser)
    calibrate_commands.required = True
    _register_helpers(commands, calibrate_commands)
    return parser


def _register_helpers(commands, calibrate_commands) -> None:
    from firmware_bridge import cli as bridge_cli
    from firmware_bridge import firmware_cli

    from . import insight
    from .web import serve as web_cli
    from .sensors import imu_cli

    insight.register(commands)
    web_cli.register(commands)
    imu_cli.register_calibrate(calibrate_commands).set_defaults(emulated=_emulated)
    bridge_cli.register_calibrate(calibrate_commands)
    imu_cli.register_doctor(commands).set_defaults(emulated=_emulated)
    bridge_cli.register(commands)
    firmware_cli.register(commands)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG)
    try:
        return int(args.func(args) or 0)
    except KneerollError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"{PROG}: error: {exc}\n")  # the message, and the fix in brackets
        return 2 if isinstance(exc, InputError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, and the way to the traceback
        if args.debug:
            raise
        sys.stderr.write(f"{PROG}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
