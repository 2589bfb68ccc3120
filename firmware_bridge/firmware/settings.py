# Pico force bridge: wiring and tunables. Matches hardware/ and the default config.

FIRMWARE_VERSION = (1, 0, 0)

# HX711 (RATE tied high on the board: 80 samples/s)
HX711_DOUT_PIN = 2
HX711_SCK_PIN = 3
HX711_GAIN = 128  # channel A; 64 (channel A) and 32 (channel B) also work
HX711_RATE_HZ = 80
# Set to a GPIO number if RATE is wired to the Pico instead of tied high;
# SET_RATE can then choose 10 or 80 samples/s. None: only HX711_RATE_HZ is accepted.
HX711_RATE_PIN = None
PIO_STATE_MACHINE = 0
# No reading for this many sample periods counts one HX711 timeout.
TIMEOUT_PERIODS = 4

# UART0 to the Raspberry Pi
UART_ID = 0
UART_TX_PIN = 0
UART_RX_PIN = 1
UART_BAUDRATE = 115200

# Protocol pacing
BATCH = 8  # samples per SAMPLES frame: 10 frames/s at 80 samples/s
STATUS_INTERVAL_MS = 1000

# Watchdog: reset if the main loop stops for this long (the RP2040 allows up to 8388 ms).
# Create a file named "nowdt" on the board to run without it while debugging.
WATCHDOG_MS = 2000
NO_WATCHDOG_FILE = "nowdt"

# Heartbeat on the onboard LED: slow blink when healthy, fast blink on an HX711 fault.
HEARTBEAT_MS = 500
FAULT_BLINK_MS = 100
