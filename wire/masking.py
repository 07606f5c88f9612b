"""ID numbers as screens and logs may show them: the last 4 characters only (docs/design.md §4).

The one masking rule of both sides: the agent's kiosk, logs and ``inspect`` output, and the
collector's dashboard, exports and logs. A text of 4 characters or fewer is masked entirely, so a
short or truncated number never appears in full.
"""

from __future__ import annotations

__all__ = ["VISIBLE", "mask_id"]

VISIBLE = 4
"""How many trailing characters stay visible."""


def mask_id(text: str | None) -> str:
    """``********1234`` for ``079303001234``; ``****`` for ``1234``; ``""`` for nothing."""
    if not text:
        return ""
    visible = text[-VISIBLE:] if len(text) > VISIBLE else ""
    return "*" * (len(text) - len(visible)) + visible
