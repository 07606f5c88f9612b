"""Hardware-in-the-loop simulators: the CCCD chip, QR scanners, cameras, visitors.

This package never imports ``edge_agent``: the card side of every protocol is an independent
implementation, so a bug shared by both sides cannot hide.
"""
