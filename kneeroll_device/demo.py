"""The demo: the production daemon on emulated hardware, through a whole simulated session.

A seeded simulated person does the routine (sim/person.py, sim/world.py). What
the pod would sense drives a register-level MPU-6050 on a fake I2C bus, read by
the real IMU driver, and a software Pico on a pty, read by the real force link.
The LED, buzzer and button are gpiozero mock pins; the person's button presses
drive the mock button pin. Everything runs on a clock up to ``speed`` times
faster than life (it waits for a thread that falls behind), so the whole routine
takes seconds.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .clock import ScaledClock
from .cues import CueRecord, mock_pin_factory
from .daemon import Daemon, DaemonResult, systemd_bridge
from .routine.engine import Action
from .routine.spec import Routine
from .sim.world import SimulatedSession

IMU_ADDRESS = 0x68
SCENARIO_FAULTS = {"sensor-fault": "unplug@{t}+{span}"}
IMU_FAULT_S = 5.0
UNPLUG_S = 6.0
PRESS_S, HOLD_S = 0.15, 1.4  # how long the simulated thumb keeps the button down
SETUP_LEAD_S = 3.0


@dataclass
class DemoRig:
    """The emulated devices around the daemon, and what to close afterwards."""

    imu: object
    force: object
    closers: list


def build_rig(config, session: SimulatedSession, clock, faults: str | None = None,
              imu_gone: tuple[float, float] | None = None) -> DemoRig:
    from firmware_bridge.emulator import PicoEmulator
    from firmware_bridge.link import ForceLink

    from .sensors.force import ForceCalibration, ForceSensor
    from .sensors.imu import open_imu
    from .sim.imu_emulator import FakeSMBus, Mpu6050Emulator

    bus = FakeSMBus(config.imu.bus, clock=clock)
    # the sensor's clock keeps time here, so the demo sees what `kneeroll simulate` writes
    # (benchmarks/bench_imu.py shows the timestamps holding with a sensor clock 3 % off)
    bus.attach(IMU_ADDRESS, Mpu6050Emulator(session.imu_at, clock=clock, world_t0=0.0, clock_error_pct=0.0))
    if imu_gone is not None:
        bus.disappear(IMU_ADDRESS, *imu_gone)
    imu = open_imu(bus, address=IMU_ADDRESS, rate_hz=config.imu.rate_hz, accel_range_g=config.imu.accel_range_g,
                   gyro_range_dps=config.imu.gyro_range_dps, clock=clock)
    calibration = ForceCalibration.from_config(config.force)
    emulator_box: list = []

    def raw_counts(indices: np.ndarray) -> np.ndarray:
        # the Pico's sample i of its present boot is due at a clock time: read the
        # simulated load cell there, in the HX711's counts
        times = emulator_box[0].due_time(np.asarray(indices, dtype=float))
        newtons = session.force_at(times)
        return np.round(calibration.zero_offset + newtons * calibration.counts_per_newton).astype(np.int64)

    emulator = PicoEmulator.on_pty(signal=raw_counts, rate_hz=config.force.sample_rate_hz, clock=clock, faults=faults,
                                   seed=session.seed, sample_grid_origin=0.0)
    emulator_box.append(emulator)
    emulator.start()
    link = ForceLink(emulator.port_name, baudrate=config.force.baudrate, clock=clock).start()
    force = ForceSensor(link, calibration)
    return DemoRig(imu, force, [force, link, emulator, imu])


class ThumbOnTheButton(threading.Thread):
    """Presses the mock button when the simulated person does."""

    def __init__(self, pin, controls: list[tuple[float, str]], clock, stop: threading.Event):
        super().__init__(name="sim-button", daemon=True)
        self.pin, self.controls, self.clock, self.stop_event = pin, controls, clock, stop

    def run(self) -> None:
        for t, kind in self.controls:
            if not self._wait_until(t):
                return
            self.pin.drive_low()
            self._wait_until(t + (HOLD_S if kind == "hold" else PRESS_S))
            self.pin.drive_high()

    def _wait_until(self, t: float) -> bool:
        while not self.stop_event.is_set():
            remaining = t - self.clock()
            if remaining <= 0:
                return True
            self.clock.wait(self.stop_event, min(remaining, 0.05))
        return False


def run_demo(config, routine: Routine, session: SimulatedSession, *, data_dir: Path, speed: float,
             on_action=None, on_cue=None, scenario: str | None = None,
             fault_at: float | None = None, pin_factory=None) -> tuple[DaemonResult | None, Daemon]:
    # the devices and the daemon start up while the roller still lies on the table,
    # before the simulated world's time 0, as a real pod is on before it is used
    clock = ScaledClock(speed, start=-SETUP_LEAD_S)
    clock.checkin()  # the world waits while the rig is built (the daemon's loop checks in from here on)
    try:
        return _run_daemon(config, routine, session, clock, data_dir=data_dir, on_action=on_action, on_cue=on_cue,
                           scenario=scenario, fault_at=fault_at, pin_factory=pin_factory)
    finally:
        clock.checkout()


def _run_daemon(config, routine: Routine, session: SimulatedSession, clock: ScaledClock, *, data_dir: Path,
                on_action, on_cue, scenario: str | None, fault_at: float | None,
                pin_factory) -> tuple[DaemonResult | None, Daemon]:
    scenario = scenario or session.scenario
    middle = fault_at if fault_at is not None else session.script.steps[len(session.script.steps) // 2].start + 2.0
    faults = None
    if scenario in SCENARIO_FAULTS:
        # the force link drops in the middle of the routine, for a few seconds
        faults = SCENARIO_FAULTS[scenario].format(t=round(middle, 1), span=UNPLUG_S)
    imu_gone = (middle, middle + IMU_FAULT_S) if scenario == "imu-fault" else None
    rig = build_rig(config, session, clock, faults, imu_gone)
    factory = pin_factory or mock_pin_factory()
    meta = {"demo": {"seed": session.seed, "scenario": scenario, "speed": clock.speed}, "truth": session.truth()}
    thumb = None
    try:
        daemon = Daemon(config, imu=rig.imu, force=rig.force, routine=routine, data_dir=data_dir, clock=clock,
                        pin_factory=factory, source="demo", on_action=on_action, on_cue=on_cue, meta=meta,
                        one_session=True, notifier=systemd_bridge(clock))
        thumb = ThumbOnTheButton(factory.pin(config.pins.button), session.script.controls, clock, daemon.stop_event)
        thumb.start()
        stop_on_signals(daemon)
        end_of_world = session.duration + 2.0
        try:
            result = daemon.run(until=lambda d: clock() > end_of_world)
        finally:
            daemon.stop()
    finally:
        if thumb is not None:
            thumb.join(timeout=2.0)
        for part in rig.closers:
            try:
                part.close()
            except Exception:  # closing emulators must not hide the demo's result
                pass
    return result, daemon


def emulated_quantiser(config):
    """What the emulated devices do to the values: the IMU's 16-bit counts, the HX711's counts."""
    from .sensors.registers import accel_counts_per_g, counts_to_units, gyro_counts_per_dps, units_to_counts

    per_g = accel_counts_per_g("mpu6050", config.imu.accel_range_g)
    per_dps = gyro_counts_per_dps("mpu6050", config.imu.gyro_range_dps)
    per_n = config.force.counts_per_newton

    def quantise(accel, gyro, force):
        return (counts_to_units(units_to_counts(accel, per_g), per_g),
                counts_to_units(units_to_counts(gyro, per_dps), per_dps),
                np.round(force * per_n) / per_n)

    return quantise


def stop_on_signals(daemon: Daemon) -> None:
    """SIGINT and SIGTERM end the daemon cleanly: the session is logged as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: daemon.stop())


def over_the_limit(kpa: float, limit_kpa: float) -> str:
    """The warning's words: the pressure and the limit it is over, never rounded to look equal."""
    digits = 0 if round(kpa) > round(limit_kpa) else 1
    return f"pressure {kpa:.{digits}f} kPa, over the {limit_kpa:g} kPa limit"


def describe_action(action: Action, daemon: Daemon) -> str | None:
    """One readable line per step for the terminal, or None."""
    d = action.detail
    if action.kind == "session_start":
        return f"session started ({d.get('how')})"
    if action.kind == "step_start":
        return f"  step {action.step}: {d.get('name')} ({d.get('leg')}) started"
    if action.kind == "step_ended":
        what = "done" if d["completed"] else ("skipped" if d["skipped"] else "not completed")
        counts = f"{d['strokes']} strokes, {d['active_s']:.0f} s rolling" if d["kind"] == "roll" else f"{d['reps']} reps"
        kpa = f", {d['mean_kpa']:.0f} kPa mean" if d["mean_kpa"] is not None else ""
        return f"  step {action.step}: {what}: {counts}{kpa}"
    if action.kind == "pressure_warning":
        return f"  ! {over_the_limit(d['kpa'], d['limit_kpa'])}"
    if action.kind == "sensor_fault":
        return f"  ! sensor fault: {d.get('source')} {d.get('detail')}"
    if action.kind == "fault_cleared":
        return f"  sensor back: {d.get('source')}"
    if action.kind == "session_done":
        return f"session {d.get('outcome')}"
    if action.kind == "pause":
        return f"  paused ({d.get('why')})"
    if action.kind == "resume":
        return "  resumed"
    return None


def describe_cue(record: CueRecord) -> str:
    where = f" (step {record.step})" if record.step else ""
    return f"    cue: {record.pattern.replace('_', ' ')}{where}"
