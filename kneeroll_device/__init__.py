"""kneeroll: a sensor companion for a handled foam roller."""

__version__ = "0.1.0"
