"""Health-insurance (BHYT) look-up at hospital reception (docs/cccd.md §8).

Official letter 931/BYT-BH (2022) lets facilities accept the chip CCCD (or VNeID) instead of the
BHYT card and check validity on the social-insurance gateway with the 12-digit ID number, full
name and date of birth. The gateway needs a facility contract, so it is an adapter:

- :class:`InsuranceAdapter` — the interface the hospital flow calls;
- :class:`HttpInsuranceAdapter` — a JSON-over-HTTP client (urllib) for a gateway shaped like
  ``firmware_sim/insurance_gateway.py``: ``POST /lookup {id_number, full_name, date_of_birth}``
  → ``{status, card_number, valid_until}``;
- ``none`` — no adapter; the flow records ``insurance: not-checked``.

A look-up must never hold up the desk: every failure (time-out, refused connection, HTTP error,
malformed answer) yields ``unknown`` with a short detail, after at most ``timeout_s``. The request
carries personal data, so nothing of it is logged and the URL must be HTTPS unless the gateway is
on this machine (checked in :mod:`edge_agent.config`).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from edge_agent.cccd.dates import BirthDate

log = logging.getLogger(__name__)

__all__ = [
    "HttpInsuranceAdapter", "InsuranceAdapter", "InsuranceError", "InsuranceState",
    "InsuranceStatus", "make_adapter",
]

MAX_RESPONSE_BYTES = 8192
_CARD_NUMBER = re.compile(r"[A-Z]{2}[0-9][0-9A-Z]{2}[0-9]{10}")
"""BHYT card number: 2-letter object code, benefit level, 2-digit province, 10-digit social
insurance number (15 characters)."""


class InsuranceError(ValueError):
    """An adapter misconfigured (bad URL or timeout); look-up failures are never raised."""


class InsuranceState(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class InsuranceStatus:
    """The answer of a look-up. ``detail`` is a short machine-readable word (no personal data)."""

    state: InsuranceState
    detail: str = ""
    card_number: str | None = None
    valid_until: date | None = None

    @classmethod
    def unknown(cls, detail: str) -> InsuranceStatus:
        return cls(InsuranceState.UNKNOWN, detail)


class InsuranceAdapter(Protocol):
    """What the hospital flow calls; must return within its own time-out and never raise."""

    def lookup(self, id_number: str, full_name: str,
               date_of_birth: date | BirthDate) -> InsuranceStatus:
        ...


class HttpInsuranceAdapter:
    """JSON over HTTP(S) to a social-insurance gateway (or the simulated one)."""

    def __init__(self, url: str, timeout_s: float = 2.0,
                 opener: urllib.request.OpenerDirector | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InsuranceError(f"gateway URL must be http(s)://HOST[:PORT][/PATH], got {url!r}")
        if not 0 < timeout_s <= 30:
            raise InsuranceError("timeout_s must be within (0, 30]")
        self.endpoint = urljoin(url if url.endswith("/") else url + "/", "lookup")
        self.timeout_s = timeout_s
        self._opener = opener or urllib.request.build_opener(
            urllib.request.ProxyHandler({}))  # a gateway on the hospital network: no proxy

    def lookup(self, id_number: str, full_name: str,
               date_of_birth: date | BirthDate) -> InsuranceStatus:
        """``date_of_birth`` goes as ISO 8601, reduced (``YYYY``, ``YYYY-MM``) when partial."""
        body = json.dumps({"id_number": id_number, "full_name": full_name,
                           "date_of_birth": date_of_birth.isoformat()},
                          ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.endpoint, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8",
                     "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            log.warning("insurance gateway answered HTTP %s", exc.code)
            return InsuranceStatus.unknown(f"http-{exc.code}")
        except TimeoutError:
            log.warning("insurance gateway timed out after %.1f s", self.timeout_s)
            return InsuranceStatus.unknown("timeout")
        except urllib.error.URLError as exc:
            timed_out = isinstance(exc.reason, TimeoutError)
            log.warning("insurance gateway unreachable (%s)", type(exc.reason).__name__)
            return InsuranceStatus.unknown("timeout" if timed_out else "unreachable")
        except OSError as exc:
            log.warning("insurance gateway I/O error (%s)", type(exc).__name__)
            return InsuranceStatus.unknown("unreachable")
        return _parse(raw)


def _parse(raw: bytes) -> InsuranceStatus:
    if len(raw) > MAX_RESPONSE_BYTES:
        return InsuranceStatus.unknown("malformed")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return InsuranceStatus.unknown("malformed")
    if not isinstance(data, dict):
        return InsuranceStatus.unknown("malformed")
    try:
        state = InsuranceState(str(data.get("status")))
    except ValueError:
        return InsuranceStatus.unknown("malformed")
    card = data.get("card_number")
    card_number = card if isinstance(card, str) and _CARD_NUMBER.fullmatch(card) else None
    until = data.get("valid_until")
    valid_until = None
    if isinstance(until, str):
        try:
            valid_until = date.fromisoformat(until)
        except ValueError:
            return InsuranceStatus.unknown("malformed")
    detail = data.get("detail")
    detail_text = detail if isinstance(detail, str) and re.fullmatch(r"[a-z0-9-]{1,40}", detail) \
        else ""
    return InsuranceStatus(state, detail_text, card_number, valid_until)


def make_adapter(kind: str, url: str | None, timeout_s: float = 2.0) -> InsuranceAdapter | None:
    """The adapter a configuration's ``[insurance]`` table names (None for ``none``)."""
    if kind == "none":
        return None
    if kind in ("http", "sim"):
        return HttpInsuranceAdapter(url or "http://127.0.0.1:8765", timeout_s)
    raise InsuranceError(f"unknown insurance adapter {kind!r} (none | http | sim)")
