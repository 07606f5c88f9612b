"""Identity verification of the VNeID app's identity token (docs/cccd.md §5).

The "Mã QR định danh điện tử" carries no personal data: an opaque token (a UUID in the official
manual), valid for minutes, that only the national identity platform can resolve, online. Its API
is not public and needs an agreement with the platform operator, so it sits behind an adapter
modelled on :mod:`edge_agent.insurance`:

- :class:`IdentityVerifier` — the interface the flows call; never raises, bounded in time;
- :class:`HttpIdentityVerifier` — JSON over HTTP(S) for a platform shaped like
  ``firmware_sim/identity_platform.py``: ``POST /v1/tokens/resolve {token, terminal_id,
  request_id}`` → ``{status: verified, identity: {...}, level}`` or ``{status: rejected,
  reason: expired | replayed | revoked | unknown}``;
- ``none`` — no adapter: a token cannot be resolved here, and the kiosk asks for the card.

Time: the whole verification (every attempt and retry) fits in ``deadline_s`` (default 0.9 s),
so with the platform unreachable the kiosk asks for the card or the card QR within 1 s. Each
attempt waits at most ``timeout_s``; only transport failures and 5xx answers are retried, and a
retry reuses the ``request_id`` so that the platform does not count it as a replay of the token.
A circuit breaker opens after ``breaker_failures`` consecutive unavailable answers and answers
``unavailable`` at once for ``breaker_reset_s``, then lets one trial through (half-open).

Privacy: the token is a bearer secret for minutes and the answer is personal data; logs hold only
the outcome, the reason word and the last 4 characters of the token. The URL must be HTTPS unless
the platform is on this machine (checked in :mod:`edge_agent.config`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from edge_agent.cccd import BirthDate, CccdError, QrError, Sex, VneidToken, parse_id_number
from edge_agent.cccd.dates import parse_birth_date

log = logging.getLogger(__name__)

__all__ = [
    "CircuitBreaker", "HttpIdentityVerifier", "IdentityAnswer", "IdentityError", "IdentityState",
    "IdentityVerifier", "VerifiedIdentity", "make_verifier", "parse_answer",
]

MAX_RESPONSE_BYTES = 8192
REJECT_REASONS = ("expired", "replayed", "revoked", "unknown")
"""What the platform may say of a token it will not resolve (each a rejected-event reason
``vneid-<reason>``)."""
_DETAIL = re.compile(r"[a-z0-9-]{1,40}")


class IdentityError(ValueError):
    """A verifier misconfigured (bad URL, timeouts); verification failures are never raised."""


class IdentityState(StrEnum):
    VERIFIED = "verified"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """The person a token resolved to (personal data: never logged)."""

    id_number: str
    full_name: str
    birth_date: BirthDate
    sex: Sex | None
    address: str | None
    level: int
    """The identification level the platform reports (1 or 2)."""


@dataclass(frozen=True, slots=True)
class IdentityAnswer:
    """The outcome of one verification; ``reason`` is a short word (no personal data)."""

    state: IdentityState
    reason: str = ""
    identity: VerifiedIdentity | None = None

    @classmethod
    def unavailable(cls, reason: str) -> IdentityAnswer:
        return cls(IdentityState.UNAVAILABLE, reason)


class IdentityVerifier(Protocol):
    """What the flows call; returns within its own deadline and never raises."""

    def verify(self, token: VneidToken) -> IdentityAnswer:
        ...


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → half-open after ``reset_s``
    (one trial call; success closes, failure re-opens). Thread-safe; ``clock`` is monotonic."""

    def __init__(self, failures: int = 3, reset_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or reset_s <= 0:
            raise IdentityError("breaker needs failures >= 1 and reset_s > 0")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        """True when a call may go out now (closed, or the one half-open trial)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.reset_s or self._trial:
                return False
            self._trial = True
            return True

    def success(self) -> None:
        with self._lock:
            self._count, self._opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._trial or self._count >= self.failures:
                self._opened_at, self._trial = self._clock(), False


class _Retryable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpIdentityVerifier:
    """JSON over HTTP(S) to the identity platform (or the simulated one)."""

    def __init__(self, url: str, *, terminal_id: str, timeout_s: float = 0.4,
                 retries: int = 1, deadline_s: float = 0.9,
                 breaker: CircuitBreaker | None = None,
                 opener: urllib.request.OpenerDirector | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IdentityError(f"platform URL must be http(s)://HOST[:PORT][/PATH], got {url!r}")
        if not 0 < timeout_s <= deadline_s <= 5:
            raise IdentityError("need 0 < timeout_s <= deadline_s <= 5")
        if not 0 <= retries <= 5:
            raise IdentityError("retries must be within 0..5")
        self.endpoint = urljoin(url if url.endswith("/") else url + "/", "v1/tokens/resolve")
        self.terminal_id = terminal_id
        self.timeout_s = timeout_s
        self.retries = retries
        self.deadline_s = deadline_s
        self.breaker = breaker or CircuitBreaker(clock=clock)
        self._clock = clock
        self._opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def verify(self, token: VneidToken) -> IdentityAnswer:
        if not self.breaker.allow():
            log.warning("identity platform circuit open; token %s not sent", token.masked)
            return IdentityAnswer.unavailable("circuit-open")
        request_id = str(uuid.uuid4())
        end = self._clock() + self.deadline_s
        reason = "unreachable"
        for attempt in range(self.retries + 1):
            remaining = end - self._clock()
            if remaining <= 0.01:
                reason = "timeout"
                break
            try:
                answer = self._attempt(token, request_id, min(self.timeout_s, remaining))
            except _Retryable as exc:
                reason = exc.reason
                log.warning("identity platform attempt %d failed (%s)", attempt + 1, reason)
                continue
            self.breaker.success()
            log.info("VNeID token %s: %s %s", token.masked, answer.state.value, answer.reason)
            return answer
        self.breaker.failure()
        log.warning("identity platform unavailable (%s); token %s", reason, token.masked)
        return IdentityAnswer.unavailable(reason)

    def _attempt(self, token: VneidToken, request_id: str, timeout: float) -> IdentityAnswer:
        body = json.dumps({"token": token.value, "terminal_id": self.terminal_id,
                           "request_id": request_id}).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.endpoint, data=body, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise _Retryable(f"http-{exc.code}") from None
            return IdentityAnswer.unavailable(f"http-{exc.code}")
        except TimeoutError:
            raise _Retryable("timeout") from None
        except urllib.error.URLError as exc:
            raise _Retryable("timeout" if isinstance(exc.reason, TimeoutError)
                             else "unreachable") from None
        except OSError:
            raise _Retryable("unreachable") from None
        return parse_answer(raw)


def parse_answer(raw: bytes) -> IdentityAnswer:
    """The platform's JSON answer; anything malformed is ``unavailable: malformed``."""
    if len(raw) > MAX_RESPONSE_BYTES:
        return IdentityAnswer.unavailable("malformed")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return IdentityAnswer.unavailable("malformed")
    if not isinstance(data, dict):
        return IdentityAnswer.unavailable("malformed")
    status = data.get("status")
    if status == "rejected":
        reason = data.get("reason")
        if reason not in REJECT_REASONS:
            return IdentityAnswer.unavailable("malformed")
        return IdentityAnswer(IdentityState.REJECTED, str(reason))
    if status != "verified":
        return IdentityAnswer.unavailable("malformed")
    identity = _identity(data.get("identity"), data.get("level"))
    if identity is None:
        return IdentityAnswer.unavailable("malformed")
    return IdentityAnswer(IdentityState.VERIFIED, "", identity)


def _identity(obj: object, level: object) -> VerifiedIdentity | None:
    if not isinstance(obj, dict) or level not in (1, 2) or isinstance(level, bool):
        return None
    number, name, dob, sex, address = (obj.get(k) for k in (
        "id_number", "full_name", "date_of_birth", "sex", "address"))
    if not (isinstance(number, str) and isinstance(name, str) and name.strip()
            and isinstance(dob, str) and sex in ("M", "F", None)
            and (address is None or isinstance(address, str))):
        return None
    try:
        birth = _iso_birth(dob)
        parse_id_number(number, date_of_birth=birth,
                        sex=Sex(sex) if isinstance(sex, str) else None)
    except CccdError:
        return None
    assert isinstance(level, int)
    return VerifiedIdentity(number, " ".join(name.split()), birth,
                            Sex(sex) if isinstance(sex, str) else None, address, level)


def _iso_birth(text: str) -> BirthDate:
    """``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY`` to a :class:`BirthDate`."""
    match = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", text)
    if match is None:
        raise QrError(f"{text!r} is not an ISO date", field="date_of_birth")
    year, month, day = match.groups()
    form = f"{day or '00'}/{month or '00'}/{year}"
    return parse_birth_date(form, "date_of_birth", QrError)


def make_verifier(kind: str, url: str | None, *, terminal_id: str, timeout_s: float = 0.4,
                  retries: int = 1, deadline_s: float = 0.9, breaker_failures: int = 3,
                  breaker_reset_s: float = 30.0) -> IdentityVerifier | None:
    """The verifier a configuration's ``[vneid]`` table names (None for ``none``)."""
    if kind == "none":
        return None
    if kind in ("http", "sim"):
        return HttpIdentityVerifier(
            url or "http://127.0.0.1:8766", terminal_id=terminal_id, timeout_s=timeout_s,
            retries=retries, deadline_s=deadline_s,
            breaker=CircuitBreaker(breaker_failures, breaker_reset_s))
    raise IdentityError(f"unknown identity verifier {kind!r} (none | http | sim)")

