"""Pure ICAO 9303 protocol code (no I/O): APDUs, BER-TLV, BAC, PACE, secure messaging, LDS, PA.

Every error raised here is an :class:`~edge_agent.icao.errors.IcaoError`; status words become
typed errors in :mod:`edge_agent.icao.status`.
"""

from edge_agent.icao.errors import IcaoError

__all__ = ["IcaoError"]
