"""systemd/kneeroll-web.service: verifies, is hardened, reads the log and writes nothing of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from unitfiles import exposure, read_unit, systemd_analyze

REPO = Path(__file__).resolve().parents[2]
WEB_UNIT = REPO / "systemd" / "kneeroll-web.service"
DAEMON_UNIT = REPO / "systemd" / "kneeroll.service"
MAX_EXPOSURE = 2.5


def setting(key: str, unit: Path = WEB_UNIT) -> list[str]:
    return [v for s, k, v in read_unit(unit) if s == "Service" and k == key]


def test_runs_the_site_as_its_own_user_in_the_daemons_group():
    assert setting("User") == ["kneeroll-web"]
    assert setting("Group") == ["kneeroll"] == setting("Group", DAEMON_UNIT)
    assert "kneeroll web" in setting("ExecStart")[0]


def test_the_log_is_read_only_to_it_and_no_devices_are_open():
    assert setting("ReadOnlyPaths") == ["/var/lib/kneeroll"]
    assert setting("ProtectSystem") == ["strict"]
    assert setting("PrivateDevices") == ["yes"]
    assert setting("CapabilityBoundingSet") == [""]


def test_both_units_agree_on_the_live_socket():
    web = [v for v in setting("Environment") if v.startswith("KNEEROLL_LIVE_SOCKET=")]
    daemon = [v for v in setting("Environment", DAEMON_UNIT) if v.startswith("KNEEROLL_LIVE_SOCKET=")]
    assert web == ["KNEEROLL_LIVE_SOCKET=%t/kneeroll-web/live.sock"]
    assert daemon == ["KNEEROLL_LIVE_SOCKET=/run/kneeroll-web/live.sock"]
    assert setting("RuntimeDirectory") == ["kneeroll-web"]


def test_only_the_home_network_reaches_it():
    assert setting("IPAddressDeny") == ["any"]
    assert "192.168.0.0/16" in setting("IPAddressAllow")[0]


def test_systemd_analyze_verify_is_clean(tmp_path):
    tool = systemd_analyze()
    copy = tmp_path / WEB_UNIT.name
    copy.write_text(WEB_UNIT.read_text().replace("/opt/kneeroll/bin/kneeroll", "/bin/true"))
    result = subprocess.run([tool, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if copy.name in line] == []


def test_security_exposure_is_at_most_2_5():
    score = exposure(systemd_analyze(), WEB_UNIT)
    print(f"kneeroll-web.service exposure: {score}")
    assert score <= MAX_EXPOSURE
