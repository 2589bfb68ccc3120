# HX711 read by an RP2040 PIO state machine.
#
# The HX711 powers down if PD_SCK stays high for more than 60 us, and a bit
# read late corrupts the reading, so the clock pulses cannot be left to Python
# (a garbage collection pause would break them). The state machine waits for
# DOUT to fall (a conversion is ready), clocks 24 bits in MSB first, pushes
# them to the RX FIFO, then gives the 1 to 3 extra pulses that choose the
# channel and gain of the next conversion. The CPU only drains the FIFO.

import rp2
from machine import Pin
import time

SM_FREQ = 1_000_000  # 1 us per PIO cycle: PD_SCK high 3 us (datasheet: 0.2 to 50 us)
EXTRA_PULSES = {128: 1, 32: 2, 64: 3}  # 25, 26 or 27 pulses in all
FIFO_DEPTH = 8  # RX FIFO joined with TX: 8 words, 100 ms of samples at 80 SPS


@rp2.asm_pio(
    sideset_init=rp2.PIO.OUT_LOW,
    in_shiftdir=rp2.PIO.SHIFT_LEFT,
    autopush=False,
    fifo_join=rp2.PIO.JOIN_RX,
)
def _hx711_program():
    pull(block)  # the CPU puts (extra pulses - 1) once, before starting
    mov(y, osr)
    wrap_target()
    wait(0, pin, 0).side(0)  # DOUT low: a conversion is ready
    set(x, 23)  # 24 data bits
    label("bit")
    nop().side(1)[2]  # PD_SCK high: the HX711 shifts the next bit out
    in_(pins, 1).side(0)[1]  # read it as the clock falls
    jmp(x_dec, "bit")
    push(noblock)  # a full FIFO drops the reading; the CPU sees the gap in time
    mov(x, y)
    label("gain")
    nop().side(1)[2]
    jmp(x_dec, "gain").side(0)[2]
    wrap()


def to_signed24(word):
    word &= 0xFFFFFF
    if word & 0x800000:
        word -= 0x1000000
    return word


class HX711:
    """The load-cell amplifier behind a PIO state machine; drain() returns new readings."""

    def __init__(self, dout_pin, sck_pin, gain=128, state_machine=0):
        if gain not in EXTRA_PULSES:
            raise ValueError("HX711 gain must be 128, 64 or 32")
        self.gain = gain
        self._dout = Pin(dout_pin, Pin.IN, Pin.PULL_UP)  # a missing HX711 reads high: a timeout, not zeros
        self._sck_pin = sck_pin
        self._reset_chip()
        self._sm = rp2.StateMachine(
            state_machine,
            _hx711_program,
            freq=SM_FREQ,
            in_base=self._dout,
            sideset_base=Pin(sck_pin),
        )
        self._sm.put(EXTRA_PULSES[gain] - 1)
        self._sm.active(1)

    def _reset_chip(self):
        # PD_SCK high for over 60 us powers the chip down; bringing it low
        # resets it to channel A, gain 128.
        sck = Pin(self._sck_pin, Pin.OUT)
        sck.value(1)
        time.sleep_us(100)
        sck.value(0)

    def fifo_level(self):
        return self._sm.rx_fifo()

    def drain(self):
        """Every reading waiting in the FIFO, oldest first, as signed 24-bit counts."""
        out = []
        sm = self._sm
        while sm.rx_fifo():
            out.append(to_signed24(sm.get()))
        return out

    def stop(self):
        self._sm.active(0)
