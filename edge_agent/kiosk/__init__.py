"""The kiosk: a loopback page for the device's touchscreen, live by server-sent events."""

from edge_agent.kiosk.app import create_app
from edge_agent.kiosk.state import KioskState, VerdictView

__all__ = ["KioskState", "VerdictView", "create_app"]
