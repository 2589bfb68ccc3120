"""`kneeroll doctor` and `kneeroll calibrate imu` against emulated hardware; nothing waits."""

import json
from types import SimpleNamespace

import pytest
import serial
from gpiozero import InputDevice
from gpiozero.pins.mock import MockFactory

from kneeroll_device import doctor, emulated
from kneeroll_device.clock import ManualClock
from kneeroll_device.config import load_config
from kneeroll_device.errors import ImuError
from kneeroll_device.sensors.calibration import ImuCalibration
from kneeroll_device.sim.imu_emulator import FakeSMBus, emulated_bus


def parser():
    from kneeroll_device.cli import build_parser

    return build_parser()  # with its wiring: --emulate gets the emulated hardware from cli.py


def run(argv):
    args = parser().parse_args(argv)
    return args.func(args)


def imu_config(**changes):
    values = dict(bus=1, address="auto", chip="auto", rate_hz=100, accel_range_g=4, gyro_range_dps=500)
    values.update(changes)
    return SimpleNamespace(**values)


# --- I2C ----------------------------------------------------------------------------------


def test_i2c_all_good_names_the_chip_and_checks_the_stream():
    clock = ManualClock()
    findings = doctor.check_i2c(imu_config(), lambda n: emulated_bus("lsm6dsox", clock=clock, bus=n), clock)
    assert all(f.ok for f in findings)
    checks = {f.check: f.detail for f in findings}
    assert checks["i2c 0x6A"] == "WHO_AM_I 0x6C = LSM6DSOX"
    assert checks["i2c 0x68"] == "no answer"
    assert checks["imu"] == "LSM6DSOX at 0x6A"
    assert checks["imu stream"].startswith("104 samples/s")


def test_i2c_missing_bus():
    def missing(number):
        raise ImuError(f"I2C bus {number} is not available: /dev/i2c-{number} does not exist",
                       "enable I2C with `sudo raspi-config nonint do_i2c 0` and reboot")

    [finding] = doctor.check_i2c(imu_config(), missing)
    assert not finding.ok and "raspi-config nonint do_i2c 0" in finding.fix


def test_i2c_permission_while_probing():
    class Forbidden(FakeSMBus):
        def read_byte_data(self, *args, **kwargs):
            raise PermissionError(13, "Permission denied")

    findings = doctor.check_i2c(imu_config(), lambda n: Forbidden(n, clock=ManualClock()))
    assert not findings[-1].ok and "adduser $USER i2c" in findings[-1].fix


def test_i2c_nothing_answers():
    bus = FakeSMBus(1, clock=ManualClock())
    findings = doctor.check_i2c(imu_config(), lambda n: bus)
    problem = [f for f in findings if not f.ok]
    assert [f.check for f in problem] == ["imu"]
    assert "0x68: no answer" in problem[0].detail and "i2cdetect" in problem[0].fix
    assert bus.closed


def test_i2c_unknown_who_am_i_is_a_problem_naming_the_value():
    clock = ManualClock()

    def clone_bus(number):
        bus = emulated_bus("mpu6050", clock=clock)
        bus.devices[0x68].who_am_i = 0x11
        bus.devices[0x68].power_on()
        return bus

    findings = doctor.check_i2c(imu_config(), clone_bus, clock)
    assert "WHO_AM_I 0x11" in findings[1].detail
    assert not findings[-1].ok and 'chip = "mpu6050"' in findings[-1].fix


# --- serial -------------------------------------------------------------------------------


def primed(data):
    def factory(port, **kwargs):
        link = serial.serial_for_url("loop://", **kwargs)
        link.write(data)
        return link

    return factory


def test_serial_frames_seen():
    finding = doctor.check_serial("/dev/serial0", 115200, primed(b"\x07\x01\x02\x00\x05"), ManualClock())
    assert finding.ok and "frames" in finding.detail


def test_serial_silence_waits_two_seconds_of_clock_time():
    clock = ManualClock()
    finding = doctor.check_serial("/dev/serial0", 115200, primed(b""), clock)
    assert not finding.ok and "no bytes" in finding.detail and "Pico" in finding.fix
    assert clock() == pytest.approx(2.0, abs=0.06)


def test_serial_bytes_without_delimiter_point_at_the_baud_rate():
    finding = doctor.check_serial("/dev/serial0", 115200, primed(b"\xff\xfe\xfd"), ManualClock())
    assert not finding.ok and "force.baudrate" in finding.fix


def test_serial_port_missing_or_forbidden():
    finding = doctor.check_serial("/dev/does-not-exist", 115200, clock=ManualClock())
    assert not finding.ok and "do_serial_hw 0" in finding.fix

    def forbidden(port, **kwargs):
        raise serial.SerialException(13, "could not open port: [Errno 13] Permission denied")

    finding = doctor.check_serial("/dev/serial0", 115200, forbidden, ManualClock())
    assert "adduser $USER dialout" in finding.fix


# --- GPIO ---------------------------------------------------------------------------------


def test_pins_free_and_in_use():
    factory = MockFactory()
    holder = InputDevice(27, pin_factory=factory)
    findings = doctor.check_pins({"led_red": 17, "led_green": 27}, factory)
    assert [f.ok for f in findings] == [True, False]
    assert "GPIO27" in findings[1].detail and "systemctl stop kneeroll" in findings[1].fix
    holder.close()


def test_pins_without_any_gpio_library(monkeypatch):
    from gpiozero.exc import BadPinFactory

    def no_factory(*args, **kwargs):
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.setattr("gpiozero.InputDevice", no_factory)
    [finding] = doctor.check_pins({"button": 23})
    assert not finding.ok and "lgpio" in finding.fix


# --- the whole command --------------------------------------------------------------------


def test_run_doctor_on_emulated_hardware_is_all_ok():
    config = load_config(None)
    findings = doctor.run_doctor(config, emulated.hardware(config.imu))
    assert all(f.ok for f in findings), [f.line() for f in findings if not f.ok]
    checks = [f.check for f in findings]
    assert "imu stream" in checks and "serial" in checks and "gpio button" in checks


def test_doctor_command_json(capsys):
    assert run(["doctor", "--emulate", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"findings"}
    assert all(set(f) == {"check", "ok", "detail", "fix"} for f in document["findings"])


def test_doctor_command_text_and_exit_code_on_a_problem(capsys, monkeypatch):
    working = emulated.hardware

    def broken(imu_cfg=None):
        hardware = working(imu_cfg)
        hardware.bus_factory = lambda n: FakeSMBus(n, clock=hardware.clock)
        return hardware

    monkeypatch.setattr(emulated, "hardware", broken)
    monkeypatch.setenv(doctor.EMULATE_ENV, "1")
    assert run(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("problem imu:") and "->" in line for line in lines)
    assert any(line.startswith("ok      serial:") for line in lines)


def test_doctor_bad_config_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "config.toml"
    bad.write_text("[imu]\nrate_hz = 5000\n")
    assert run(["doctor", "--emulate", "--config", str(bad)]) == 2
    assert "imu.rate_hz" in capsys.readouterr().err


# --- calibrate imu ------------------------------------------------------------------------


def test_calibrate_imu_command_saves_the_bias(tmp_path, capsys):
    assert run(["calibrate", "imu", "--emulate", "--seconds", "2", "--data-dir", str(tmp_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["path"] == str(tmp_path / "imu_calibration.json")
    saved = ImuCalibration.load(tmp_path)
    # emulated_bus's still sensor has a bias of (0.8, -0.5, 0.3) deg/s
    assert saved.gyro_bias_dps == pytest.approx((0.8, -0.5, 0.3), abs=0.02)


def test_calibrate_imu_command_without_a_bus_is_exit_1(capsys, monkeypatch):
    from kneeroll_device.sensors import bus as bus_module

    def missing(number):
        raise ImuError(f"I2C bus {number} is not available: /dev/i2c-{number} does not exist", bus_module.FIX_ENABLE_I2C)

    monkeypatch.delenv(doctor.EMULATE_ENV, raising=False)
    monkeypatch.setattr(bus_module, "open_bus", missing)
    assert run(["calibrate", "imu", "--seconds", "1"]) == 1
    err = capsys.readouterr().err
    assert "/dev/i2c-1" in err and "raspi-config nonint do_i2c 0" in err


def test_calibrate_imu_command_rejects_a_bad_duration(capsys):
    assert run(["calibrate", "imu", "--emulate", "--seconds", "0"]) == 2


def _hello(version=(1, 0, 0), rate_hz=10) -> bytes:
    from firmware_bridge import protocol

    return protocol.encode_frame(protocol.HELLO, 0, {
        "fw_major": version[0], "fw_minor": version[1], "fw_patch": version[2], "board_id": bytes(8),
        "rate_hz": rate_hz, "gain": 128, "batch": 8, "reset_cause": 1, "boot_id": 7, "next_seq": 0,
        "device_time_us": 0})


def test_doctor_reports_the_firmware_version_and_rate_the_pico_names():
    from firmware_bridge.installer import package_version

    major, minor, patch = (int(x) for x in package_version().split("."))
    finding = doctor.check_firmware(_hello((major, minor, patch), 10))
    assert finding.ok and finding.detail == f"firmware {package_version()} at 10 samples/s"


def test_a_firmware_out_of_step_names_the_install_command():
    finding = doctor.check_firmware(_hello((0, 9, 0)))
    assert not finding.ok and "0.9.0" in finding.detail and finding.fix == "kneeroll firmware install"
    silent = doctor.check_firmware(b"\x07\x01\x02\x00")
    assert not silent.ok and "firmware status" in silent.fix
