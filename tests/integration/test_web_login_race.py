"""The parallel-login attack of the security review, against a live HTTP server: 40 password
guesses sent at once. The per-account limit evaluates at most LOGIN_MAX_FAILURES of them (each
attempt takes a number from one atomic UPDATE … RETURNING before argon2 runs), the right
password is refused once the account is locked, and the per-address limit, behind a trusted
proxy, blocks the attacker's address only."""

from __future__ import annotations

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from werkzeug.serving import make_server

from central.db.models import AuditLog, Role, User
from central.web.security import hash_password, make_hasher
from central.web.timeutil import utcnow
from tests.integration.pg_fixtures import db_url, postgres_server  # noqa: F401
from tests.web_support import PASSWORD, World, make_world

ATTEMPTS = 40
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class CountingHasher(PasswordHasher):
    """The app's argon2id hasher, counting the password checks it really performs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock = threading.Lock()
        self.checked: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self.lock:
            self.checked.append(str(password))
        return super().verify(hash, password)


class Live:
    def __init__(self, world: World) -> None:
        self.world = world
        self.server = make_server("127.0.0.1", 0, world.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def prepared(self, forwarded_for: str | None = None) -> tuple[Any, str]:
        """A fresh browser: its own cookie jar and the login form's CSRF token."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                             _NoRedirect())
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        req = urllib.request.Request(self.base + "/login", headers=headers)
        with opener.open(req, timeout=30) as r:
            token = CSRF_RE.search(r.read().decode())
        assert token is not None
        return opener, token.group(1)

    def post_login(self, opener: Any, token: str, user: str, password: str,
                   forwarded_for: str | None = None) -> int:
        body = urllib.parse.urlencode({"username": user, "password": password,
                                       "csrf_token": token}).encode()
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        req = urllib.request.Request(self.base + "/login", data=body, headers=headers)
        try:
            with opener.open(req, timeout=60) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _attack(live: Live, attempts: Sequence[tuple[str, str, str | None]]) -> Counter[int]:
    """Prepare one browser per attempt, then send every POST at the same moment."""
    prepared = [live.prepared(ff) for _, _, ff in attempts]
    barrier = threading.Barrier(len(attempts))

    def one(i: int) -> int:
        user, password, ff = attempts[i]
        opener, token = prepared[i]
        barrier.wait()
        return live.post_login(opener, token, user, password, ff)

    with ThreadPoolExecutor(len(attempts)) as pool:
        return Counter(pool.map(one, range(len(attempts))))


@pytest.fixture
def counting(tmp_path: Path, db_url: str) -> Iterator[tuple[Live, CountingHasher]]:  # noqa: F811
    """A live server on SQLite and on PostgreSQL (the atomic statements differ by dialect)."""
    world = make_world(tmp_path, db_url, IP_MAX_FAILURES=1000, TRUSTED_PROXY_HOPS=1)
    # An argon2 cost that takes a few milliseconds, so the 40 requests really overlap.
    slow = make_hasher(2, 8192, 1)
    with world.maker() as db:
        db.add(User(username="raceuser", password_hash=hash_password(PASSWORD, slow),
                    role=Role.ADMIN, created_at=utcnow(), active=True, language="vi",
                    failed_logins=0))
        db.commit()
    hasher = CountingHasher(time_cost=2, memory_cost=8192, parallelism=1)
    world.app.extensions["central.hasher"] = hasher
    live = Live(world)
    try:
        yield live, hasher
    finally:
        live.close()


def test_forty_parallel_guesses_evaluate_at_most_the_limit(
        counting: tuple[Live, CountingHasher]) -> None:
    live, hasher = counting
    limit = int(live.world.app.config["LOGIN_MAX_FAILURES"])
    guesses = [("raceuser", f"wrong guess {i:02d}", "203.0.113.9") for i in range(ATTEMPTS)]
    statuses = _attack(live, guesses)
    assert statuses == Counter({401: ATTEMPTS}), statuses
    assert len(hasher.checked) <= limit, f"{len(hasher.checked)} passwords checked"
    with live.world.maker() as db:
        user = db.scalar(select(User).where(User.username == "raceuser"))
        assert user is not None
        assert user.locked_until is not None
        assert user.failed_logins == ATTEMPTS  # every attempt counted, none lost
        failed = db.scalars(select(AuditLog).where(AuditLog.action == "login.failed",
                                                   AuditLog.actor == "raceuser")).all()
    evaluated = [a for a in failed if a.detail == {"locked": False}]
    assert len(failed) == ATTEMPTS and len(evaluated) <= limit
    # The right password now: refused, and not even checked.
    before = len(hasher.checked)
    opener, token = live.prepared("203.0.113.10")
    assert live.post_login(opener, token, "raceuser", PASSWORD, "203.0.113.10") == 401
    assert len(hasher.checked) == before


def test_the_right_password_inside_a_parallel_burst_cannot_pass_the_limit(
        counting: tuple[Live, CountingHasher]) -> None:
    """39 wrong guesses and the right one at once: whatever the order, at most the limit of
    them is checked, and the right one logs in only if it was among those."""
    live, hasher = counting
    limit = int(live.world.app.config["LOGIN_MAX_FAILURES"])
    attempts = [("raceuser", f"wrong guess {i:02d}", "203.0.113.9") for i in range(ATTEMPTS - 1)]
    attempts.append(("raceuser", PASSWORD, "203.0.113.9"))
    statuses = _attack(live, attempts)
    # A success resets the count, so at most limit checks before it and limit after it.
    assert len(hasher.checked) <= 2 * limit, len(hasher.checked)
    if PASSWORD in hasher.checked:
        position = hasher.checked.index(PASSWORD)
        assert position < limit
        assert statuses[302] == 1
    else:
        assert statuses == Counter({401: ATTEMPTS})


def test_address_limit_behind_the_proxy_blocks_only_the_attacker(
        tmp_path: Path, db_url: str) -> None:  # noqa: F811
    world = make_world(tmp_path, db_url, IP_MAX_FAILURES=10, TRUSTED_PROXY_HOPS=1)
    hasher = CountingHasher(time_cost=2, memory_cost=8192, parallelism=1)
    world.app.extensions["central.hasher"] = hasher
    live = Live(world)
    try:
        names = [(f"user{i:02d}", "wrong", "203.0.113.9") for i in range(ATTEMPTS)]
        statuses = _attack(live, names)
        assert statuses[401] <= 10 and statuses[401] + statuses[429] == ATTEMPTS, statuses
        assert len(hasher.checked) <= 10
        opener, token = live.prepared("203.0.113.9")
        assert live.post_login(opener, token, "admin", PASSWORD, "203.0.113.9") == 429
        opener, token = live.prepared("198.51.100.7")
        assert live.post_login(opener, token, "admin", PASSWORD, "198.51.100.7") == 302
    finally:
        live.close()
