# Pico force bridge: HX711 (PIO) -> framed samples on UART0. Runs at power-on.
#
# Files on the board: main.py, settings.py, hx711_pio.py, forcebridge.py and
# protocol.py (copied from firmware_bridge/protocol.py). See ../README.md.

import os
import sys
import time

import machine
from machine import Pin

import protocol
import settings
from forcebridge import Bridge, DeviceClock
from hx711_pio import HX711

# WATCHDOG SCRATCH0 survives a watchdog reset, and machine.reset() is one on
# the RP2040: a marker here tells a REBOOT command from a watchdog that fired.
SCRATCH0 = 0x40058000 + 0x0C
REBOOT_MARK = 0x5EB0071E


def reset_cause():
    marked = False
    try:
        marked = machine.mem32[SCRATCH0] == REBOOT_MARK
        machine.mem32[SCRATCH0] = 0
    except Exception:
        pass
    if marked:
        return protocol.RESET_SOFT
    cause = machine.reset_cause()
    if cause == machine.WDT_RESET:
        return protocol.RESET_WATCHDOG
    if cause == machine.PWRON_RESET:
        return protocol.RESET_POWER_ON
    return protocol.RESET_OTHER


def reboot():
    try:
        machine.mem32[SCRATCH0] = REBOOT_MARK
    except Exception:
        pass
    time.sleep_ms(20)  # let the ACK leave the UART
    machine.reset()


def board_id():
    uid = bytes(machine.unique_id())
    return (uid + b"\x00" * 8)[:8]


def new_boot_id():
    value = int.from_bytes(os.urandom(4), "little")
    return value or 1


def start_watchdog():
    try:
        os.stat(settings.NO_WATCHDOG_FILE)
        return None  # debugging: keep the REPL reachable
    except OSError:
        return machine.WDT(timeout=settings.WATCHDOG_MS)


def build():
    uart = machine.UART(
        settings.UART_ID,
        baudrate=settings.UART_BAUDRATE,
        tx=Pin(settings.UART_TX_PIN),
        rx=Pin(settings.UART_RX_PIN),
        txbuf=1024,
        rxbuf=512,
    )
    sensor = HX711(
        settings.HX711_DOUT_PIN,
        settings.HX711_SCK_PIN,
        gain=settings.HX711_GAIN,
        state_machine=settings.PIO_STATE_MACHINE,
    )
    rate_pin = None
    if settings.HX711_RATE_PIN is not None:
        rate_pin = Pin(settings.HX711_RATE_PIN, Pin.OUT, value=1 if settings.HX711_RATE_HZ == 80 else 0)
    return Bridge(
        uart,
        sensor,
        DeviceClock(time.ticks_us, time.ticks_diff),
        led=Pin("LED", Pin.OUT),
        reboot=reboot,
        rate_pin=rate_pin,
        board_id=board_id(),
        boot_id=new_boot_id(),
        reset_cause=reset_cause(),
        firmware_version=settings.FIRMWARE_VERSION,
        rate_hz=settings.HX711_RATE_HZ,
        gain=settings.HX711_GAIN,
        batch=settings.BATCH,
        status_interval_us=settings.STATUS_INTERVAL_MS * 1000,
        timeout_periods=settings.TIMEOUT_PERIODS,
        heartbeat_us=settings.HEARTBEAT_MS * 1000,
        fault_blink_us=settings.FAULT_BLINK_MS * 1000,
    )


def main():
    bridge = build()
    bridge.boot()
    bridge.wdt = start_watchdog()
    try:
        while True:
            bridge.step()
            time.sleep_ms(1)  # the PIO FIFO holds 100 ms of readings: no hurry
    except Exception as exc:  # noqa: BLE001 - last resort on the device
        sys.print_exception(exc)
        if bridge.wdt is None:
            raise  # debugging: stay in the REPL
        while True:  # the watchdog resets the board within WATCHDOG_MS
            time.sleep_ms(100)


main()
