"""The one error root of the wire package (docs/protocol.md)."""

from __future__ import annotations

__all__ = ["WireError"]


class WireError(ValueError):
    """A message that breaks the wire contract.

    ``path`` is a JSON path into the message (``$`` for the whole message, ``$.details.insurance``
    for a member); ``reason`` says what is wrong in words an integrator can act on. Signature and
    sealed-box failures (:mod:`wire.signing`, :mod:`wire.sealing`) are subclasses.
    """

    def __init__(self, path: str, reason: str, *, schema: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.schema = schema
        super().__init__(f"{path}: {reason}")
