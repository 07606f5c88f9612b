"""The one error root of the ``icao`` package, and the LDS parsers' error.

Every exception this package raises on purpose is an :class:`IcaoError` and carries a ``reason``
that says what was wrong, so a caller can catch the package's failures by type in one place:

- :class:`LdsError` (this module): malformed LDS / ASN.1 content (ICAO 9303-10 §4, X.690);
- :class:`edge_agent.icao.status.CardStatusError` and its subclasses: the card answered a status
  word other than 9000 (ISO/IEC 7816-4 §5.6), typed by :mod:`edge_agent.icao.status`;
- ``ApduError``, ``TlvError``, ``SecureMessagingError``, ``BacError``, ``PaceError``,
  ``ChipAuthError``, ``EcError``, ``CurveError``, ``PaddingError``, ``FileReadError``,
  ``CmsError``/``SodError``, ``SignatureError``, ``TrustError``/``MasterListError``: each in the
  module that raises it, each a subclass of :class:`IcaoError`.
"""

from __future__ import annotations


class IcaoError(Exception):
    """Root of every error of :mod:`edge_agent.icao`; ``reason`` says what was wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LdsError(IcaoError, ValueError):
    """Malformed or unsupported LDS content; ``reason`` says what was wrong."""
