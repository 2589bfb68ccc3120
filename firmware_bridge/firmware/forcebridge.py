# The force bridge's logic: readings in, frames out, commands answered.
#
# Hardware comes in through the constructor (a UART, an HX711 reader, an LED,
# a watchdog, a clock), so the same code runs on the Pico from main.py and on
# a PC under test with stand-ins.

import protocol


class DeviceClock:
    """Microseconds since boot, extended past the 30-bit wrap of ticks_us."""

    def __init__(self, ticks_us, ticks_diff):
        self._ticks_us = ticks_us
        self._ticks_diff = ticks_diff
        self._last = ticks_us()
        self._total = 0

    def now_us(self):
        # Called every loop, far more often than the ~9 minutes ticks_diff can span.
        now = self._ticks_us()
        self._total += self._ticks_diff(now, self._last)
        self._last = now
        return self._total


class Bridge:
    def __init__(
        self,
        uart,
        sensor,
        clock,
        led=None,
        wdt=None,
        reboot=None,
        rate_pin=None,
        board_id=b"\x00" * 8,
        boot_id=1,
        reset_cause=protocol.RESET_OTHER,
        firmware_version=(1, 0, 0),
        rate_hz=80,
        gain=128,
        batch=8,
        status_interval_us=1000000,
        timeout_periods=4,
        heartbeat_us=500000,
        fault_blink_us=100000,
        fifo_depth=8,
    ):
        self.uart = uart
        self.sensor = sensor
        self.clock = clock
        self.led = led
        self.wdt = wdt
        self._reboot = reboot
        self._rate_pin = rate_pin
        self.board_id = bytes(board_id)
        self.boot_id = boot_id
        self.reset_cause = reset_cause
        self.firmware_version = firmware_version
        self.rate_hz = rate_hz
        self.gain = gain
        self.batch = batch
        self.status_interval_us = status_interval_us
        self.timeout_periods = timeout_periods
        self.heartbeat_us = heartbeat_us
        self.fault_blink_us = fault_blink_us
        self.fifo_depth = fifo_depth

        self.decoder = protocol.FrameDecoder()
        self.period_us = 1000000 // rate_hz
        self.next_seq = 0
        self.tx_seq = 0
        self.pending = []
        self.batch_first_seq = 0
        self.batch_t0 = 0
        self.last_sample_us = None
        self.last_activity_us = 0
        self.fault = False
        self.next_status_us = 0
        self.next_blink_us = 0
        self.led_on = False
        # counters reported in STATUS
        self.hx711_timeouts = 0
        self.saturations = 0
        self.pio_overflows = 0
        self.tx_dropped = 0

    # --- lifecycle ------------------------------------------------------------------

    def boot(self):
        now = self.clock.now_us()
        self.last_activity_us = now
        self.next_status_us = now + self.status_interval_us
        self.uart.write(b"\x00")  # end whatever the host had half-read before we booted
        self.send_hello(now)

    def step(self):
        """One pass of the main loop; it must come round well within the watchdog timeout."""
        if self.wdt is not None:
            self.wdt.feed()
        now = self.clock.now_us()
        self.take_readings(now)
        self.check_timeout(now)
        self.read_commands(now)
        if now >= self.next_status_us:
            self.send_status(now)
        self.heartbeat(now)

    # --- readings -------------------------------------------------------------------

    def take_readings(self, now):
        readings = self.sensor.drain()
        count = len(readings)
        if not count:
            return
        period = self.period_us
        missing = 0
        full = count >= self.fifo_depth
        if self.last_sample_us is not None:
            elapsed = (now - self.last_sample_us + period // 2) // period
            missing = elapsed - count
        if missing > 0 and full:
            # The FIFO kept the oldest readings and dropped the newest: the gap follows them.
            first_t = self.last_sample_us + period
            self.pio_overflows += missing
        else:
            first_t = now - (count - 1) * period
            if missing > 0:
                self.skip(missing)  # the HX711 was late or silent: the gap comes first
        for index in range(count):
            self.add_reading(readings[index], first_t + index * period)
        if missing > 0 and full:
            self.skip(missing)
        self.last_activity_us = now
        self.fault = False

    def skip(self, missing):
        """Samples that were due and never read: their numbers are used up, so the host counts them lost."""
        self.flush()
        self.next_seq = (self.next_seq + missing) % protocol.SAMPLE_SEQ_MODULUS
        if self.last_sample_us is not None:
            # They were due one period apart: the next gap is measured from the last of them.
            self.last_sample_us += missing * self.period_us

    def add_reading(self, raw, t_us):
        if raw >= protocol.RAW_MAX or raw <= protocol.RAW_MIN:
            self.saturations += 1
        last = self.last_sample_us
        if last is not None:
            gap = t_us - last
            # Follow the HX711's own oscillator, which is not exactly 80 Hz.
            if self.period_us * 3 // 4 < gap < self.period_us * 5 // 4:
                self.period_us += (gap - self.period_us) // 32
        if not self.pending:
            self.batch_first_seq = self.next_seq
            self.batch_t0 = t_us
        self.pending.append(raw)
        self.next_seq = (self.next_seq + 1) % protocol.SAMPLE_SEQ_MODULUS
        self.last_sample_us = t_us
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        raw = self.pending
        self.pending = []
        self.send(
            protocol.SAMPLES,
            {
                "boot_id": self.boot_id,
                "first_seq": self.batch_first_seq,
                "t0_us": self.batch_t0,
                "period_us": self.period_us,
                "raw": raw,
            },
        )

    def check_timeout(self, now):
        limit = self.timeout_periods * self.period_us
        if now - self.last_activity_us > limit:
            self.hx711_timeouts += 1
            self.last_activity_us = now  # count once per silent window
            if not self.fault:
                self.fault = True
                self.next_blink_us = min(self.next_blink_us, now + self.fault_blink_us)

    # --- commands --------------------------------------------------------------------

    def read_commands(self, now):
        waiting = self.uart.any()
        if not waiting:
            return
        data = self.uart.read(waiting)
        if not data:
            return
        for msg in self.decoder.feed(data):
            self.on_command(msg, now)

    def on_command(self, msg, now):
        kind = msg.type
        if kind not in protocol.COMMAND_TYPES:
            return  # our own kind of frame coming back: never answer it
        if kind == protocol.HELLO_REQUEST:
            self.send_hello(now)
        elif kind == protocol.PING:
            self.send(protocol.PONG, {"cmd_seq": msg.seq, "nonce": msg["nonce"], "device_time_us": now})
        elif kind == protocol.SET_RATE:
            self.set_rate(msg)
        elif kind == protocol.REBOOT:
            self.reply(protocol.ACK, msg)
            self.flush()
            if self._reboot is not None:
                self._reboot()
        else:
            self.reply(protocol.NAK, msg, protocol.NAK_UNKNOWN_TYPE)

    def set_rate(self, msg):
        rate = msg["rate_hz"]
        if rate == self.rate_hz:
            self.reply(protocol.ACK, msg)
            return
        if self._rate_pin is None or rate not in (10, 80):
            self.reply(protocol.NAK, msg, protocol.NAK_UNSUPPORTED)
            return
        self.flush()  # a batch holds samples of one rate only
        self._rate_pin.value(1 if rate == 80 else 0)
        self.rate_hz = rate
        self.period_us = 1000000 // rate
        self.last_sample_us = None  # no gap accounting across the change
        self.reply(protocol.ACK, msg)

    def reply(self, kind, msg, reason=0):
        fields = {"cmd_seq": msg.seq, "cmd_type": msg.type}
        if kind == protocol.NAK:
            fields["reason"] = reason
        self.send(kind, fields)

    # --- frames out --------------------------------------------------------------------

    def send(self, kind, fields):
        frame = protocol.encode_frame(kind, self.tx_seq, fields)
        self.tx_seq = (self.tx_seq + 1) % protocol.SEQ_MODULUS
        written = self.uart.write(frame)
        if written is not None and written < len(frame):
            self.tx_dropped += 1

    def send_hello(self, now):
        major, minor, patch = self.firmware_version
        self.send(
            protocol.HELLO,
            {
                "fw_major": major,
                "fw_minor": minor,
                "fw_patch": patch,
                "board_id": self.board_id,
                "rate_hz": self.rate_hz,
                "gain": self.gain,
                "batch": self.batch,
                "reset_cause": self.reset_cause,
                "boot_id": self.boot_id,
                "next_seq": self.batch_first_seq if self.pending else self.next_seq,
                "device_time_us": now,
            },
        )

    def send_status(self, now):
        mask = 0xFFFFFFFF
        self.send(
            protocol.STATUS,
            {
                "uptime_us": now,
                "hx711_timeouts": self.hx711_timeouts & mask,
                "saturations": self.saturations & mask,
                "pio_overflows": self.pio_overflows & mask,
                "tx_dropped": self.tx_dropped & mask,
                "rx_bad_frames": (self.decoder.crc_errors + self.decoder.bad_frames) & mask,
            },
        )
        self.next_status_us = now + self.status_interval_us

    def heartbeat(self, now):
        if self.led is None or now < self.next_blink_us:
            return
        self.led_on = not self.led_on
        self.led.value(1 if self.led_on else 0)
        self.next_blink_us = now + (self.fault_blink_us if self.fault else self.heartbeat_us)
