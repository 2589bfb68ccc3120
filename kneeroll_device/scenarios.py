"""The names of the simulated scenarios: cheap to import, for the command line."""

# what the simulated person does (sim/person.py)
PERSON_SCENARIOS = ("normal", "heavy-tendon", "skip", "idle", "sensor-fault")
# beyond the person: the IMU drops off the bus for a while (the watchdog must notice)
DEMO_ONLY_SCENARIOS = ("imu-fault",)
