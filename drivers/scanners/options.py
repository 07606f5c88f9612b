"""Parsing of the ``?key=value&...`` part of scanner URIs (shared by the scanner drivers)."""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from drivers.code_scanner import ScannerConfigError


def split_uri(rest: str) -> tuple[str, dict[str, str]]:
    """``"/dev/ttyACM0?baud=9600&x=1"`` → (``"/dev/ttyACM0"``, {"baud": "9600", "x": "1"}).

    Values stay percent-encoded (see :func:`byte_value`); keys are lower-cased; a repeated key
    is an error.
    """
    target, _, query = rest.partition("?")
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        key = unquote(key).strip().lower()
        if not key or not sep:
            raise ScannerConfigError(f"malformed option {item!r} (expected key=value)")
        if key in options:
            raise ScannerConfigError(f"option {key!r} given twice")
        options[key] = value
    return unquote(target), options


def byte_value(raw: str, what: str) -> bytes:
    """Bytes from an option value: ``0x0d0a`` or ``hex:0d0a`` for hex, else percent-decoded
    text (``%02`` is STX)."""
    low = raw.lower()
    if low.startswith(("0x", "hex:")):
        digits = raw.partition(":")[2] if low.startswith("hex:") else raw[2:]
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise ScannerConfigError(f"{what}: {raw!r} is not valid hex") from None
    return unquote_to_bytes(raw)


def float_value(raw: str, what: str, minimum: float = 0.0) -> float:
    """A float option at least ``minimum``."""
    try:
        value = float(raw)
    except ValueError:
        raise ScannerConfigError(f"{what}: {raw!r} is not a number") from None
    if not value >= minimum:
        raise ScannerConfigError(f"{what}: {raw!r} must be at least {minimum}")
    return value


def int_value(raw: str, what: str, minimum: int = 0) -> int:
    """An integer option at least ``minimum``."""
    try:
        value = int(raw, 0)
    except ValueError:
        raise ScannerConfigError(f"{what}: {raw!r} is not an integer") from None
    if value < minimum:
        raise ScannerConfigError(f"{what}: {raw!r} must be at least {minimum}")
    return value


def bool_value(raw: str, what: str) -> bool:
    """``1/0``, ``true/false``, ``yes/no``, ``on/off``."""
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ScannerConfigError(f"{what}: {raw!r} is not a boolean (1/0, true/false)")


def reject_unknown(options: dict[str, str], known: set[str], driver: str) -> None:
    """A typo in an option must not silently fall back to a default."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise ScannerConfigError(
            f"{driver}: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
