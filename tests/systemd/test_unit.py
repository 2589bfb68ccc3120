"""systemd/kneeroll.service: parses, verifies, stays hardened, and still reaches the devices."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from unitfiles import exposure, read_unit, systemd_analyze

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "kneeroll.service"
DEFAULT_CONFIG = REPO / "kneeroll_device" / "default_config.toml"
MAX_EXPOSURE = 1.5




def values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in read_unit(UNIT) if s == section and k == key]


def value(key: str, section: str = "Service") -> str:
    found = values(key, section)
    assert len(found) == 1, f"{key}= should be set exactly once in [{section}], found {found}"
    return found[0]


def allowed_devices() -> dict[str, str]:
    """DeviceAllow= entries as node -> access."""
    allowed = {}
    for entry in values("DeviceAllow"):
        node, _, access = entry.partition(" ")
        allowed[node] = access.strip()
    return allowed


def default_config() -> dict:
    with DEFAULT_CONFIG.open("rb") as f:
        return tomllib.load(f)


# --- what the unit says -----------------------------------------------------------------


def test_is_a_notify_service_with_a_watchdog():
    assert value("Type") == "notify"
    assert value("NotifyAccess") == "main"
    assert value("WatchdogSec") == "10s"
    assert value("Restart") == "on-failure"
    assert value("StartLimitIntervalSec", "Unit")
    assert value("StartLimitBurst", "Unit")


def test_runs_the_installed_daemon_with_the_installed_config():
    assert value("ExecStart") == "/opt/kneeroll/bin/kneeroll run --config /etc/kneeroll/config.toml"


def test_runs_as_the_unprivileged_user_in_the_device_groups():
    assert value("User") == "kneeroll"
    assert set(value("SupplementaryGroups").split()) == {"i2c", "gpio", "dialout"}
    assert value("CapabilityBoundingSet") == ""
    assert value("NoNewPrivileges") == "yes"


def test_lgpio_gets_a_writable_working_directory():
    assert value("RuntimeDirectory") == "kneeroll"
    assert value("WorkingDirectory") == "%t/kneeroll"
    assert "LG_WD=%t/kneeroll" in values("Environment")


def test_state_and_configuration_directories():
    assert value("StateDirectory") == "kneeroll"
    assert value("ConfigurationDirectory") == "kneeroll"
    # the group (the phone site's user) may read the log, nobody else
    assert value("StateDirectoryMode") == "0750"
    assert value("UMask") == "0027"


def test_devices_of_the_default_config_are_allowed_and_nothing_else_is_open():
    config = default_config()
    allowed = allowed_devices()
    assert value("DevicePolicy") == "closed"
    assert values("PrivateDevices") in ([], ["no"]), "PrivateDevices=yes hides /dev/i2c-1 and the GPIO chips"
    assert allowed[f"/dev/i2c-{config['imu']['bus']}"] == "rw"
    assert allowed[config["force"]["port"]] == "rw"
    assert allowed["/dev/gpiochip0"] == "rw"
    # /dev/serial0 is a symlink to one of these on a Zero 2 W.
    assert allowed["/dev/ttyS0"] == allowed["/dev/ttyAMA0"] == "rw"
    assert not any(node.startswith("char-tty") for node in allowed), "char-ttyS is major 4: the consoles too"


def test_hardening_directives():
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "ProtectProc": "invisible",
        "PrivateNetwork": "yes",
        "IPAddressDeny": "any",
        "RestrictAddressFamilies": "AF_UNIX",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }
    assert {key: value(key) for key in expected} == expected
    assert values("SystemCallFilter") == ["@system-service", "~@privileged @resources"]


def test_proc_stays_complete_for_gpiozero():
    # gpiozero reads the board revision from /proc/device-tree or /proc/cpuinfo;
    # ProcSubset=pid hides both and the pin factory refuses to start.
    assert values("ProcSubset") in ([], ["all"])


# --- systemd's own checks ---------------------------------------------------------------




def runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointed at a binary that exists here (verify checks it)."""
    true = shutil.which("true")
    assert true, "no `true` executable on PATH"
    text = UNIT.read_text().replace("/opt/kneeroll/bin/kneeroll", true)
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def test_systemd_analyze_verify_is_clean(tmp_path):
    tool = systemd_analyze()
    unit = runnable_copy(tmp_path)
    result = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 even for unknown keys and bad values; it only warns.
    complaints = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_verify_would_notice_a_mistake(tmp_path):
    """The check above is only worth something if a typo shows up in it."""
    tool = systemd_analyze()
    unit = runnable_copy(tmp_path)
    unit.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilegez="))
    result = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert "NoNewPrivilegez" in result.stderr




def test_security_exposure_is_low():
    tool = systemd_analyze()
    score = exposure(tool, UNIT)
    print(f"systemd-analyze security exposure: {score}")
    assert score <= MAX_EXPOSURE


# --- MemoryDenyWriteExecute does not break the Python stack -----------------------------

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

# Runs in a child whose memory policy forbids writable+executable mappings,
# which is what MemoryDenyWriteExecute=yes enforces through seccomp.
MDWE_CHILD = textwrap.dedent(
    """
    import ctypes, mmap, sqlite3
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)
        raise SystemExit("policy not in force: a W+X mapping was allowed")
    except PermissionError:
        pass
    import numpy, serial, smbus2, gpiozero
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    signal = numpy.sin(numpy.linspace(0, 60, 4096))
    assert abs(numpy.fft.rfft(signal)).max() > 1
    assert numpy.allclose(numpy.linalg.solve(2 * numpy.eye(8), numpy.ones(8)), 0.5)
    db = sqlite3.connect(":memory:")
    db.execute("create table s (t real, f real)")
    db.executemany("insert into s values (?, ?)", [(0.0, 1.0), (0.1, 2.0)])
    assert db.execute("select sum(f) from s").fetchone() == (3.0,)
    led = gpiozero.PWMLED(17, pin_factory=MockFactory(pin_class=MockPWMPin))
    led.value = 0.5
    assert ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 7)() == 7
    print("ok")
    """
)

MDWE_LAUNCHER = textwrap.dedent(
    """
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl({set_mdwe}, {refuse}, 0, 0, 0) != 0:
        sys.exit(77)
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])
    """
).format(set_mdwe=PR_SET_MDWE, refuse=PR_MDWE_REFUSE_EXEC_GAIN)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_python_numpy_sqlite_and_gpiozero_run_without_writable_executable_memory():
    result = subprocess.run(
        [sys.executable, "-c", MDWE_LAUNCHER, MDWE_CHILD],
        capture_output=True, text=True, timeout=60,
        env={"GPIOZERO_MOCK_REVISION": "902120", "PATH": "/usr/bin:/bin"},
    )
    if result.returncode == 77:
        pytest.skip("kernel has no PR_SET_MDWE (Linux >= 6.3 needed)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
