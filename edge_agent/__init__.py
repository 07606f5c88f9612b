"""The edge agent that runs on each gate or desk: CCCD chip and QR check-in."""

__version__ = "0.1.0"
