"""The config: defaults, overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from kneeroll_device.config import load_config
from kneeroll_device.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_are_documented_and_valid():
    config = load_config()
    assert config.imu.rate_hz == 100 and config.imu.accel_range_g == 4 and config.imu.gyro_range_dps == 500
    assert config.force.port == "/dev/serial0"
    assert config.pins.used_pins() == {"led_red": 17, "buzzer": 18, "button": 23, "led_green": 27, "led_blue": 22}
    assert config.storage.recordings_reserve_mb == 50  # about two years of the log: docs/session-log.md


def test_a_file_overrides_only_what_it_names(tmp_path):
    config = load_config(write(tmp_path, "[imu]\nrate_hz = 200\naddress = 0x69\n[storage]\ndata_dir = '/tmp/k'\n"))
    assert config.imu.rate_hz == 200 and config.imu.address == 0x69
    assert config.imu.bus == 1
    assert str(config.storage.data_dir) == "/tmp/k"


@pytest.mark.parametrize("text, words", [
    ("[imu]\nrate_hz = 500\n", ["imu.rate_hz", "500", "from 50 to 400"]),
    ("[imu]\nrat_hz = 100\n", ["unknown config key imu.rat_hz", "rate_hz"]),
    ("[pins]\nbuzzer = 17\n", ["pins.led_red", "pins.buzzer", "GPIO17"]),
    ("[pins]\nbutton = 2\n", ["pins.button", "I2C SDA"]),
    ("[cues]\nquiet = 'yes'\n", ["cues.quiet", "true or false"]),
    ("[imu]\nchip = 'bmi160'\n", ["imu.chip", "mpu6050"]),
    ("[screen]\nsize = 3\n", ["unknown config section [screen]"]),
    ("[imu\n", ["not valid TOML"]),
    ("[storage]\nrecordings_reserve_mb = 0\n", ["storage.recordings_reserve_mb", "out of range", "from 1 to"]),
    ("[storage]\nrecordings_reserve_mb = 2.5\n", ["storage.recordings_reserve_mb", "an integer"]),
])
def test_bad_keys_and_values_are_named(tmp_path, text, words):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    for word in words:
        assert word in str(caught.value)


def test_a_missing_config_file_is_an_input_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_replace_validates_like_a_file():
    with pytest.raises(ConfigError, match="routine.leg"):
        load_config().replace(routine={"leg": "middle"})


@pytest.mark.parametrize("written", ['"0x68"', "0x68", "104", '"104"'])
def test_the_imu_address_may_be_written_as_hex_text_or_a_number(tmp_path, written):
    path = tmp_path / "c.toml"
    path.write_text(f"[imu]\naddress = {written}\n")
    assert load_config(path).imu.address == 0x68


def test_an_address_off_the_list_names_the_choices_in_hex(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[imu]\naddress = "0x50"\n')
    with pytest.raises(ConfigError, match="0x68, 0x69, 0x6A, 0x6B"):
        load_config(path)


def test_a_missing_file_named_by_the_environment_blames_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KNEEROLL_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "$KNEEROLL_CONFIG" in str(caught.value) and "--config" not in str(caught.value)
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "other.toml")
