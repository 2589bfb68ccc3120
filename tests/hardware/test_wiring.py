"""hardware/: the wiring diagram and the README tables agree with the default config."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARDWARE = REPO / "hardware"
SVG = HARDWARE / "wiring.svg"
README = HARDWARE / "README.md"
MOUNT = HARDWARE / "mount.scad"
DEFAULT_CONFIG = REPO / "kneeroll_device" / "default_config.toml"
SVG_NS = "{http://www.w3.org/2000/svg}"

# BCM GPIO -> physical pin of the 40-pin header (the same on every 40-pin Pi).
HEADER_PIN = {
    2: 3, 3: 5, 4: 7, 14: 8, 15: 10, 17: 11, 18: 12, 27: 13, 22: 15, 23: 16, 24: 18,
    10: 19, 9: 21, 25: 22, 11: 23, 8: 24, 7: 26, 0: 27, 1: 28, 5: 29, 6: 31, 12: 32,
    13: 33, 19: 35, 16: 36, 26: 37, 20: 38, 21: 40,
}
GROUND_PINS = {6, 9, 14, 20, 25, 30, 34, 39}
# Pico GP -> physical pin, for the pins the design uses.
PICO_PIN = {0: 1, 1: 2, 2: 4, 3: 5}


@pytest.fixture(scope="module")
def config() -> dict:
    with DEFAULT_CONFIG.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def connections() -> list[ET.Element]:
    root = ET.parse(SVG).getroot()
    return [el for el in root.iter() if "data-function" in el.attrib]


def pin_functions(config: dict) -> dict[str, int]:
    """The GPIO of every pin the config assigns: function name -> BCM number."""
    pins = config["pins"]
    names = ["led_red", "led_green", "led_blue"] if pins["led"] == "rgb" else ["led_red"]
    return {name: pins[name] for name in [*names, "buzzer", "button"]}


def connection(connections: list[ET.Element], function: str) -> ET.Element:
    found = [el for el in connections if el.get("data-function") == function]
    assert len(found) == 1, f"wiring.svg should have one connection for {function}, has {len(found)}"
    return found[0]


def visible_text(element: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in element.iter(f"{SVG_NS}text"))


# --- the diagram -------------------------------------------------------------------------


def test_diagram_is_well_formed_and_titled():
    root = ET.parse(SVG).getroot()
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox")
    assert root.find(f"{SVG_NS}title") is not None


def test_every_configured_pin_is_drawn_on_its_gpio_and_header_pin(config, connections):
    for function, gpio in pin_functions(config).items():
        wire = connection(connections, function)
        assert wire.get("data-gpio") == str(gpio), function
        assert wire.get("data-header-pin") == str(HEADER_PIN[gpio]), function
        label = visible_text(wire)
        assert f"GPIO{gpio} " in label + " " and f"pin {HEADER_PIN[gpio]} " in label, label


def test_i2c_bus_1_is_on_gpio2_and_gpio3(config, connections):
    assert config["imu"]["bus"] == 1, "only I2C bus 1 is on GPIO2/3 of the header"
    for function, gpio in (("i2c_sda", 2), ("i2c_scl", 3)):
        wire = connection(connections, function)
        assert (wire.get("data-gpio"), wire.get("data-header-pin")) == (str(gpio), str(HEADER_PIN[gpio]))
        assert wire.get("data-i2c-bus") == str(config["imu"]["bus"])


def test_uart_crosses_over_to_the_pico(config, connections):
    assert config["force"]["port"] == "/dev/serial0", "the header UART is /dev/serial0"
    tx = connection(connections, "uart_tx")
    rx = connection(connections, "uart_rx")
    assert (tx.get("data-gpio"), tx.get("data-header-pin")) == ("14", "8")
    assert (rx.get("data-gpio"), rx.get("data-header-pin")) == ("15", "10")
    # Pi TX goes to the Pico's RX and the other way round.
    assert (tx.get("data-pico-gp"), tx.get("data-pico-function")) == ("1", "uart0_rx")
    assert (rx.get("data-pico-gp"), rx.get("data-pico-function")) == ("0", "uart0_tx")


def test_hx711_on_gp2_gp3_at_the_configured_rate(config, connections):
    dout = connection(connections, "hx711_dout")
    sck = connection(connections, "hx711_pd_sck")
    assert dout.get("data-pico-gp") == "2" and sck.get("data-pico-gp") == "3"
    rate = connection(connections, "hx711_rate")
    expected_level = "high" if config["force"]["sample_rate_hz"] == 80 else "low"
    assert rate.get("data-level") == expected_level
    assert rate.get("data-sample-rate-hz") == str(config["force"]["sample_rate_hz"])


def test_pico_gp_and_pin_numbers_agree(connections):
    for el in connections:
        if "data-pico-gp" in el.attrib:
            gp = int(el.get("data-pico-gp"))
            assert el.get("data-pico-pin") == str(PICO_PIN[gp]), el.attrib


def test_header_pins_are_consistent_and_not_shared(connections):
    used = {}
    for el in connections:
        pin = el.get("data-header-pin")
        if pin is None:
            continue
        gpio = el.get("data-gpio")
        if gpio is not None:
            assert pin == str(HEADER_PIN[int(gpio)]), el.attrib
        elif el.get("data-function") == "ground":
            assert int(pin) in GROUND_PINS, el.attrib
        assert pin not in used, f"header pin {pin} used by {used.get(pin)} and {el.get('data-function')}"
        used[pin] = el.get("data-function")


# --- the README --------------------------------------------------------------------------


def pi_table_rows() -> list[list[str]]:
    text = README.read_text()
    section = text.split("### Raspberry Pi Zero 2 W", 1)[1].split("###", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|--"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # past the heading row


def test_readme_pi_table_matches_the_config(config):
    rows = pi_table_rows()
    for function, gpio in pin_functions(config).items():
        matching = [row for row in rows if f"`{function}`" in row[2]]
        assert len(matching) == 1, f"README should have one row for {function}"
        header_pin, gpio_cell = matching[0][0], matching[0][1]
        assert (header_pin, gpio_cell) == (str(HEADER_PIN[gpio]), f"GPIO{gpio}"), matching[0]


def test_readme_and_diagram_name_the_same_header_pins(connections):
    readme_pins = {row[0] for row in pi_table_rows()}
    drawn_pins = {el.get("data-header-pin") for el in connections if el.get("data-header-pin")}
    assert readme_pins == drawn_pins


def test_readme_documents_the_calibration_and_first_boot_commands():
    text = README.read_text()
    for needle in ("kneeroll calibrate imu", "calibrate force --known-mass", "kneeroll doctor",
                   "journalctl -u kneeroll"):
        assert needle in text.replace("/opt/kneeroll/bin/", ""), needle


# --- the mount ---------------------------------------------------------------------------


def test_mount_exposes_its_parameters():
    text = MOUNT.read_text()
    for name in ("handle_diameter", "pod_length", "pod_width", "wall", "clamp_screw_d", "pi_holes", "part"):
        assert re.search(rf"^{name}\s*=", text, re.MULTILINE), f"mount.scad has no top-level {name}"


def openscad_complaints(*defines: str) -> str:
    """Evaluate the model (CSG export: no slow mesh render) and return errors and warnings."""
    tool = shutil.which("openscad")
    if tool is None:
        pytest.skip("openscad is not installed (apt-get install openscad)")
    args = [tool, "-o", "-", "--export-format", "csg"]
    for define in defines:
        args += ["-D", define]
    result = subprocess.run([*args, str(MOUNT)], capture_output=True, text=True, timeout=60)
    # openscad exits 0 even when an assert() fails: read what it says.
    complaints = [line for line in result.stderr.splitlines() if re.match(r"(ERROR|WARNING)", line)]
    if result.returncode != 0 or not result.stdout.strip():
        complaints.append(f"openscad exited {result.returncode} with no model: {result.stderr.strip()}")
    return "\n".join(complaints)


@pytest.mark.parametrize("defines", [(), ("handle_diameter=25",), ("handle_diameter=40", 'part="assembled"')])
def test_mount_evaluates_cleanly(defines):
    assert openscad_complaints(*defines) == ""


def test_mount_rejects_a_wall_too_thin_to_clamp():
    assert "wall below 2 mm" in openscad_complaints("wall=1")
