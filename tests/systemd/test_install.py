"""systemd/install.sh against a fake root, with recording stand-ins for every system command.

PATH holds only the stand-ins and links to a few harmless real tools (install,
rm, grep...), so nothing here can reach the real systemctl, useradd or apt-get.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "systemd" / "install.sh"
UNIT = REPO / "systemd" / "kneeroll.service"
DEFAULT_CONFIG = REPO / "kneeroll_device" / "default_config.toml"
BASH = shutil.which("bash") or "/bin/bash"

# Real tools the script and the stand-ins may use: none of them changes the
# system outside the paths they are given.
HARMLESS_TOOLS = ["sh", "bash", "env", "dirname", "basename", "cat", "grep", "install", "rm", "mkdir", "chmod"]

RECORD = 'printf "%s" "$(basename "$0")" >>"$STUB_LOG"; for a in "$@"; do printf " %s" "$a" >>"$STUB_LOG"; done; echo >>"$STUB_LOG"'

STUBS = {
    "apt-get": "",
    "raspi-config": "",
    "usermod": "",
    "systemctl": 'if [ "$1" = is-active ]; then exit "${STUB_ACTIVE:-3}"; fi',
    "useradd": 'for name; do :; done; echo "$name:x:999:999::/var/lib/kneeroll:/usr/sbin/nologin" >>"$FAKE_ROOT/etc/passwd"',
    "groupadd": 'for name; do :; done; echo "$name:x:998:" >>"$FAKE_ROOT/etc/group"',
    "userdel": 'for name; do :; done; grep -v "^$name:" "$FAKE_ROOT/etc/passwd" >"$FAKE_ROOT/etc/passwd.new"; cat "$FAKE_ROOT/etc/passwd.new" >"$FAKE_ROOT/etc/passwd"; rm "$FAKE_ROOT/etc/passwd.new"',
    # python3 -m venv [--flags] DIR: make a venv whose pip and python record too.
    "python3": textwrap.dedent(
        """\
        if [ "$1" = -m ] && [ "$2" = venv ]; then
            for dir; do :; done
            mkdir -p "$dir/bin"
            for tool in pip python; do
                printf '#!/bin/sh\\n%s\\n' '{record}' >"$dir/bin/$tool"
                chmod +x "$dir/bin/$tool"
            done
            case " $* " in
                *" --system-site-packages "*) echo "include-system-site-packages = true" >"$dir/pyvenv.cfg" ;;
                *) echo "include-system-site-packages = false" >"$dir/pyvenv.cfg" ;;
            esac
        fi
        """
    ).replace("{record}", RECORD.replace('"$(basename "$0")"', '"venv-$(basename "$0")"')),
}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]


class FakeSystem:
    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "root"
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "calls.log"
        self._make_root()
        self._make_path()

    def _make_root(self):
        (self.root / "etc").mkdir(parents=True)
        (self.root / "dev").mkdir()
        (self.root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        (self.root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\ni2c:x:994:\ngpio:x:993:\n")
        (self.root / "dev" / "i2c-1").touch()

    def _make_path(self):
        self.bin.mkdir()
        for tool in HARMLESS_TOOLS:
            real = shutil.which(tool)
            assert real, f"{tool} is needed to run the install tests"
            (self.bin / tool).symlink_to(real)
        for name, body in STUBS.items():
            self.add_stub(name, body)

    def add_stub(self, name: str, body: str = ""):
        stub = self.bin / name
        stub.write_text(f"#!/bin/sh\n{RECORD}\n{body}\n")
        stub.chmod(0o755)

    def remove_stub(self, name: str):
        (self.bin / name).unlink()

    def run(self, *args: str, service_active: bool = False, use_env_root: bool = False,
            sudo_user: str | None = None) -> Result:
        self.log.write_text("")
        env = {
            "PATH": str(self.bin),
            "STUB_LOG": str(self.log),
            "FAKE_ROOT": str(self.root),
            "STUB_ACTIVE": "0" if service_active else "3",
        }
        if sudo_user is not None:
            env["SUDO_USER"] = sudo_user
        if use_env_root:
            env["KNEEROLL_ROOT"] = str(self.root)
            argv = [BASH, str(SCRIPT), *args]
        else:
            argv = [BASH, str(SCRIPT), "--root", str(self.root), *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        calls = self.log.read_text().splitlines()
        return Result(done.returncode, done.stdout, done.stderr, calls)

    def path(self, relative: str) -> Path:
        return self.root / relative.lstrip("/")

    def users(self) -> list[str]:
        return [line.split(":")[0] for line in self.path("/etc/passwd").read_text().splitlines()]


@pytest.fixture
def system(tmp_path):
    return FakeSystem(tmp_path)


def ok(result: Result) -> Result:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


# --- install -----------------------------------------------------------------------------


def test_fresh_install_runs_every_step_in_order(system):
    result = ok(system.run())
    venv = system.path("/opt/kneeroll")
    assert result.calls == [
        "apt-get install -y --no-install-recommends python3-venv python3-pip python3-lgpio "
        "python3-numpy python3-gpiozero python3-serial",
        "raspi-config nonint do_i2c 0",
        "raspi-config nonint do_serial_hw 0",
        "raspi-config nonint do_serial_cons 1",
        "useradd --system --user-group --no-create-home --home-dir /var/lib/kneeroll "
        "--shell /usr/sbin/nologin --comment kneeroll sensor daemon kneeroll",
        "usermod --append --groups i2c,gpio,dialout kneeroll",
        "useradd --system --gid kneeroll --no-create-home --home-dir /nonexistent "
        "--shell /usr/sbin/nologin --comment kneeroll phone site kneeroll-web",
        f"python3 -m venv --system-site-packages {venv}",
        f"venv-pip install --no-cache-dir --upgrade --upgrade-strategy only-if-needed {REPO}",
        "systemctl daemon-reload",
        "systemctl is-active --quiet kneeroll.service",
        "systemctl enable --now kneeroll.service kneeroll-web.service",
    ]


def test_the_person_who_ran_sudo_joins_the_group_that_reads_the_log(system):
    with system.path("/etc/passwd").open("a") as passwd:
        passwd.write("alice:x:1000:1000::/home/alice:/bin/bash\n")
    result = ok(system.run(sudo_user="alice"))
    assert "usermod --append --groups kneeroll alice" in result.calls
    assert "alice may now read the session log" in result.stdout
    assert not any("groups kneeroll root" in c for c in ok(system.run(sudo_user="root")).calls)


def test_install_places_config_unit_and_docs(system):
    ok(system.run())
    config = system.path("/etc/kneeroll/config.toml")
    unit = system.path("/etc/systemd/system/kneeroll.service")
    assert config.read_text() == DEFAULT_CONFIG.read_text()
    assert unit.read_text() == UNIT.read_text()
    assert oct(unit.stat().st_mode & 0o777) == "0o644"
    assert system.path("/opt/kneeroll/share/doc/kneeroll/hardware.md").is_file()
    web = system.path("/etc/systemd/system/kneeroll-web.service")
    assert web.read_text() == (REPO / "systemd" / "kneeroll-web.service").read_text()
    assert {"kneeroll", "kneeroll-web"} <= set(system.users())


def test_the_unit_runs_what_the_script_installs(system):
    ok(system.run())
    unit_text = system.path("/etc/systemd/system/kneeroll.service").read_text()
    assert "ExecStart=/opt/kneeroll/bin/kneeroll run --config /etc/kneeroll/config.toml" in unit_text
    assert system.path("/opt/kneeroll/bin/pip").exists()


def test_second_run_is_idempotent_and_keeps_the_config(system):
    ok(system.run())
    config = system.path("/etc/kneeroll/config.toml")
    config.write_text("[imu]\nrate_hz = 200\n")
    unit = system.path("/etc/systemd/system/kneeroll.service")
    unit.write_text("stale unit from an older version\n")

    again = ok(system.run())

    assert config.read_text() == "[imu]\nrate_hz = 200\n"
    assert unit.read_text() == UNIT.read_text()  # the unit is ours: refreshed
    assert not any(call.startswith(("useradd", "python3 -m venv", "groupadd")) for call in again.calls)
    assert any(call.startswith("venv-pip install") for call in again.calls)  # upgrades the code
    assert "keeping existing" in again.stdout
    assert system.users().count("kneeroll") == 1


def test_a_running_service_is_restarted_to_pick_up_the_upgrade(system):
    result = ok(system.run(service_active=True))
    assert result.calls[-2:] == ["systemctl enable --now kneeroll.service kneeroll-web.service",
                                 "systemctl restart kneeroll.service kneeroll-web.service"]


def test_a_venv_without_system_packages_is_rebuilt(system):
    venv = system.path("/opt/kneeroll")
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    (venv / "bin" / "python").chmod(0o755)
    (venv / "pyvenv.cfg").write_text("include-system-site-packages = false\n")
    result = ok(system.run())
    assert f"python3 -m venv --system-site-packages --clear {venv}" in result.calls
    assert "cannot see Debian's packages" in result.stderr


def test_missing_device_groups_are_created(system):
    system.path("/etc/group").write_text("root:x:0:\ndialout:x:20:\n")
    result = ok(system.run())
    assert "groupadd --system i2c" in result.calls
    assert "groupadd --system gpio" in result.calls
    assert "groupadd --system dialout" not in result.calls


def test_without_raspi_config_it_explains_and_goes_on(system):
    system.remove_stub("raspi-config")
    result = ok(system.run())
    assert not any(call.startswith("raspi-config") for call in result.calls)
    assert "enable I2C" in result.stderr
    assert "systemctl enable --now kneeroll.service kneeroll-web.service" in result.calls


def test_reboot_hint_when_i2c_is_not_active_yet(system):
    system.path("/dev/i2c-1").unlink()
    result = ok(system.run())
    assert "reboot" in result.stdout


def test_failed_apt_get_stops_the_install(system):
    system.add_stub("apt-get", "exit 100")
    result = system.run()
    assert result.returncode == 1
    assert "apt-get update" in result.stderr
    assert not any(call.startswith("systemctl") for call in result.calls)


def test_the_root_can_come_from_the_environment(system):
    ok(system.run(use_env_root=True))
    assert system.path("/etc/kneeroll/config.toml").is_file()


# --- dry run -----------------------------------------------------------------------------


def test_dry_run_prints_commands_and_changes_nothing(system):
    before = sorted(p.relative_to(system.root) for p in system.root.rglob("*"))
    result = ok(system.run("--dry-run"))
    after = sorted(p.relative_to(system.root) for p in system.root.rglob("*"))
    assert after == before
    # Only queries ran.
    assert result.calls == ["systemctl is-active --quiet kneeroll.service"]
    printed = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert "+ raspi-config nonint do_i2c 0" in printed
    assert "+ systemctl enable --now kneeroll.service kneeroll-web.service" in printed
    assert any(line.startswith("+ useradd --system") for line in printed)
    assert any(line.startswith("+ install -m 0644") and line.endswith("config.toml") for line in printed)


# --- uninstall ---------------------------------------------------------------------------


def install_then_add_data(system: FakeSystem):
    ok(system.run())
    data = system.path("/var/lib/kneeroll/sessions.sqlite3")
    data.parent.mkdir(parents=True)
    data.write_text("sessions")
    dropin = system.path("/etc/systemd/system/kneeroll.service.d/override.conf")
    dropin.parent.mkdir()
    dropin.write_text("[Service]\n")
    return data, dropin


def test_uninstall_removes_program_and_unit_but_keeps_config_and_data(system):
    data, dropin = install_then_add_data(system)
    result = ok(system.run("--uninstall"))
    assert result.calls == [
        "systemctl disable --now kneeroll.service kneeroll-web.service",
        "systemctl daemon-reload",
    ]
    assert not system.path("/opt/kneeroll").exists()
    assert not system.path("/etc/systemd/system/kneeroll.service").exists()
    assert not system.path("/etc/systemd/system/kneeroll-web.service").exists()
    assert system.path("/etc/kneeroll/config.toml").is_file()
    assert data.is_file() and dropin.is_file()
    assert "kneeroll" in system.users()


def test_purge_removes_config_data_dropins_and_user(system):
    data, dropin = install_then_add_data(system)
    result = ok(system.run("--uninstall", "--purge"))
    assert "userdel kneeroll" in result.calls
    assert not system.path("/etc/kneeroll").exists()
    assert not data.exists() and not dropin.exists()
    assert "kneeroll" not in system.users()


def test_uninstall_twice_is_harmless(system):
    ok(system.run())
    ok(system.run("--uninstall", "--purge"))
    # The unit is gone now, so disabling it fails.
    system.add_stub("systemctl", 'if [ "$1" = disable ]; then exit 1; fi')
    result = ok(system.run("--uninstall", "--purge"))
    assert "could not disable" in result.stderr
    assert "userdel kneeroll" not in result.calls


# --- usage -------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--frobnicate"], ["--purge"], ["--root"]])
def test_bad_usage_exits_2_and_does_nothing(system, args):
    result = system.run(*args)  # after the fixture's own --root DIR
    assert result.returncode == 2
    assert result.stderr.strip()
    assert result.calls == []


def _run_bare(system: FakeSystem, *args: str) -> Result:
    done = subprocess.run(
        [BASH, str(SCRIPT), *args], capture_output=True, text=True,
        env={"PATH": str(system.bin), "STUB_LOG": str(system.log)}, timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr, [])


def test_help(system):
    result = _run_bare(system, "--help")
    assert result.returncode == 0
    assert "--uninstall" in result.stdout and "--dry-run" in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="the check only bites for a non-root user")
def test_refuses_to_touch_the_real_system_without_root(system):
    result = _run_bare(system)
    assert result.returncode == 1
    assert "run as root" in result.stderr


# --- static checks -----------------------------------------------------------------------


def test_script_is_executable_and_strict():
    assert os.access(SCRIPT, os.X_OK)
    assert "set -euo pipefail" in SCRIPT.read_text()


def test_shellcheck_is_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([shellcheck, "--shell=bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
