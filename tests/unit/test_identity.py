"""The VNeID identity token verifier against the simulated identity platform (loopback,
in-process): verified, expired, replayed, revoked, unknown, down; retries, deadline, breaker."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from edge_agent.cccd import BirthDate, Sex, parse_vneid_token
from edge_agent.identity import (
    CircuitBreaker,
    HttpIdentityVerifier,
    IdentityError,
    IdentityState,
    make_verifier,
    parse_answer,
)
from firmware_sim.identity_platform import IdentityPlatform


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingOpener(urllib.request.OpenerDirector):
    """The real opener, recording the timeout each attempt was given."""

    def __init__(self) -> None:
        super().__init__()
        real = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._real = real
        self.timeouts: list[float] = []

    def open(self, fullurl: Any, data: Any = None, timeout: Any = None) -> Any:
        self.timeouts.append(float(timeout))
        return self._real.open(fullurl, data, timeout)


@pytest.fixture
def platform() -> Iterator[tuple[IdentityPlatform, Clock]]:
    clock = Clock()
    with IdentityPlatform(clock=clock, hang_s=2.0) as p:
        yield p, clock


def verifier(p: IdentityPlatform, **kw: Any) -> HttpIdentityVerifier:
    return HttpIdentityVerifier(p.url, terminal_id="dev-1", **kw)


def test_verified_token_gives_identity_and_level(platform: tuple[IdentityPlatform, Clock]) -> None:
    p, _ = platform
    token = parse_vneid_token(p.issue("079303001234"))
    answer = verifier(p).verify(token)
    assert answer.state is IdentityState.VERIFIED and answer.identity is not None
    assert answer.identity.id_number == "079303001234"
    assert answer.identity.birth_date == BirthDate(2003, 5, 15)
    assert answer.identity.sex is Sex.FEMALE and answer.identity.level == 2


def test_partial_birth_date_and_level_1(platform: tuple[IdentityPlatform, Clock]) -> None:
    p, _ = platform
    answer = verifier(p).verify(parse_vneid_token(p.issue("046055012345")))
    assert answer.identity is not None
    assert answer.identity.birth_date == BirthDate(1955) and answer.identity.level == 1


def test_expired_replayed_revoked_unknown(platform: tuple[IdentityPlatform, Clock]) -> None:
    p, clock = platform
    v = verifier(p)
    expired = p.issue("079303001234", ttl_s=60)
    clock.now += 61
    assert (v.verify(parse_vneid_token(expired)).reason) == "expired"
    used = parse_vneid_token(p.issue("079303001234"))
    assert v.verify(used).state is IdentityState.VERIFIED
    replay = v.verify(used)
    assert (replay.state, replay.reason) == (IdentityState.REJECTED, "replayed")
    revoked = p.issue("001058424242")
    p.revoke(revoked)
    assert v.verify(parse_vneid_token(revoked)).reason == "revoked"
    unknown = v.verify(parse_vneid_token("f47ac10b-58cc-4372-a567-0e02b2c3d479"))
    assert (unknown.state, unknown.reason) == (IdentityState.REJECTED, "unknown")
    assert v.breaker.state == "closed"  # rejections are answers, not failures


def test_a_retry_with_the_same_request_is_not_a_replay(
        platform: tuple[IdentityPlatform, Clock]) -> None:
    p, _ = platform
    token = p.issue("079303001234")
    body = {"token": token, "terminal_id": "dev-1", "request_id": "r-1"}
    assert p.resolve(body)[1]["status"] == "verified"
    assert p.resolve(body)[1]["status"] == "verified"
    assert p.resolve({**body, "request_id": "r-2"})[1] == {"status": "rejected",
                                                          "reason": "replayed"}


@pytest.mark.parametrize(("mode", "reason"), [("refuse", "unreachable"), ("hang", "timeout"),
                                              ("error", "http-503")])
def test_platform_down_is_unavailable_within_the_deadline(
        platform: tuple[IdentityPlatform, Clock], mode: str, reason: str) -> None:
    p, _ = platform
    token = parse_vneid_token(p.issue("079303001234"))
    p.go_down(mode)
    opener = RecordingOpener()
    v = HttpIdentityVerifier(p.url, terminal_id="dev-1", timeout_s=0.3, retries=2,
                             deadline_s=0.9, opener=opener)
    answer = v.verify(token)
    assert (answer.state, answer.reason) == (IdentityState.UNAVAILABLE, reason)
    assert 1 <= len(opener.timeouts) <= 3 and sum(opener.timeouts) <= 0.9 + 1e-9
    p.come_up()
    assert v.verify(token).state is IdentityState.VERIFIED  # the token was never consumed


def test_breaker_opens_and_half_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_s=30, clock=clock)
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 30
    assert breaker.state == "half-open" and breaker.allow() and not breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    clock.now += 30
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed"


def test_open_breaker_answers_without_calling(platform: tuple[IdentityPlatform, Clock]) -> None:
    p, _ = platform
    p.go_down("refuse")
    v = verifier(p, retries=0, breaker=CircuitBreaker(failures=1, reset_s=60))
    token = parse_vneid_token(p.issue("079303001234"))
    assert v.verify(token).reason == "unreachable"
    before = p.resolves
    assert v.verify(token).reason == "circuit-open"
    assert p.resolves == before


def test_no_personal_data_or_token_in_logs(platform: tuple[IdentityPlatform, Clock],
                                           caplog: pytest.LogCaptureFixture) -> None:
    p, _ = platform
    caplog.set_level(logging.DEBUG, logger="edge_agent.identity")
    token = p.issue("079303001234")
    verifier(p).verify(parse_vneid_token(token))
    p.go_down("error")
    verifier(p).verify(parse_vneid_token(p.issue("079303001234")))
    text = caplog.text
    assert caplog.records and token not in text and token[:8] not in text
    assert "079303001234" not in text and "Nguyễn" not in text and "2003" not in text


@pytest.mark.parametrize("body", [
    b"", b"[]", b"{}", b'{"status": "rejected", "reason": "because"}',
    b'{"status": "verified", "level": 3, "identity": {}}',
    json.dumps({"status": "verified", "level": 2, "identity": {
        "id_number": "079303001234", "full_name": "A", "date_of_birth": "2004-05-15",
        "sex": "F", "address": None}}).encode(),
    b"x" * 9000,
])
def test_malformed_answers_are_unavailable(body: bytes) -> None:
    answer = parse_answer(body)
    assert (answer.state, answer.reason) == (IdentityState.UNAVAILABLE, "malformed")


def test_configuration_errors() -> None:
    with pytest.raises(IdentityError):
        HttpIdentityVerifier("ftp://x", terminal_id="d")
    with pytest.raises(IdentityError):
        HttpIdentityVerifier("http://127.0.0.1:1", terminal_id="d", timeout_s=2, deadline_s=1)
    with pytest.raises(IdentityError):
        make_verifier("soap", None, terminal_id="d")
    assert make_verifier("none", None, terminal_id="d") is None
