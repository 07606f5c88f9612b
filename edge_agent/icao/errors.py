"""The domain error of every LDS / ASN.1 parser in this package (ICAO 9303-10 §4, X.690)."""

from __future__ import annotations


class LdsError(ValueError):
    """Malformed or unsupported LDS content; ``reason`` says what was wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
