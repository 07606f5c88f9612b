"""The web and kiosk attacks of the security review, replayed over real HTTP against the
production server: the collector's web started exactly as
``deploy/systemd/cccd-central-web.service`` starts it (gunicorn, ``--preload``, gthread
workers, ``central.wsgi:create()``, the session secret and the device CA handed over as the
unit's credentials, the ``[web]`` table of the settings file docs/operations.md ships: one
trusted proxy hop) on PostgreSQL, and the agent's kiosk as ``edge-agent run`` starts it.

* Open redirects: ``/lang/en?next=…`` and ``/login?next=…`` with the usual bypasses go to the
  dashboard, never off the site.
* 40 parallel guesses at one account: at most ``LOGIN_MAX_FAILURES`` are checked (the audit
  log says which were), the right password is then refused; 40 guesses from one client behind
  the trusted proxy block that client only, whatever it puts in ``X-Forwarded-For``.
* A session copied before logout, a password change or a deactivation stops working, and a
  live stream open at that moment ends with a ``logout`` event.
* Huge integers in query strings and forms: 400, never a 500.
* Unit, site, guest and room names starting with ``=``, ``+``, ``-``, ``@`` or a tab are
  escaped in the report and stays exports (CSV and XLSX).
* The kiosk answers only its own loopback ``Host`` and forbids framing.

The same attacks run against the Flask test client in ``test_web_hardening.py`` and
``test_web_login_race.py``; here the production server's workers, threads and proxy handling
are part of what is tested.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from central.at_rest import encrypt_personal
from central.db.engine import make_sessionmaker
from central.db.models import AuditLog, Role, Site, Stay, Unit, User
from central.web.security import hash_password, make_hasher
from central.web.timeutil import local_today, utcnow
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import free_port
from tests.integration.pg_fixtures import (  # noqa: F401 - the fixture, used by name
    PgServer,
    fresh_database,
    migrated_engine,
    postgres_server,
)
from tests.integration.systemd_units import (
    ROOT,
    Started,
    TestRoot,
    doc_block,
    load_unit,
    start_unit,
)
from tests.integration.test_web_hardening import (
    PAYLOADS,
    REDIRECT_BYPASSES,
    _assert_inert,
    _csv_cells,
    _xlsx_cells,
)
from tests.web_support import DATA_KEY, PASSWORD, PURPOSE, seed

ATTEMPTS = 40
LOGIN_MAX_FAILURES = 5  # central.web.app's defaults: the unit does not change them
IP_MAX_FAILURES = 20
CSRF_RE = re.compile(rb'name="csrf_token" value="([^"]+)"')
HUGE = "99999999999999999999999"


class Http:
    """One browser: keeps its session cookie although it is ``Secure`` (the unit serves plain
    HTTP on loopback behind a TLS proxy, which the test stands in for: it puts the client's
    address in ``X-Forwarded-For`` as the trusted proxy would)."""

    def __init__(self, port: int, forwarded_for: str | None = None) -> None:
        self.port = port
        self.forwarded_for = forwarded_for
        self.cookies: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        out = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if self.forwarded_for:
            out["X-Forwarded-For"] = self.forwarded_for
        return out

    def request(self, method: str, path: str, form: dict[str, str] | None = None
                ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = self.headers()
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.headers, data

    def csrf(self, path: str = "/login") -> str:
        status, _, page = self.request("GET", path)
        assert status == 200, (path, status)
        match = CSRF_RE.search(page)
        assert match is not None, page[:300]
        return match.group(1).decode()

    def login(self, user: str, password: str = PASSWORD, nxt: str | None = None
              ) -> tuple[int, http.client.HTTPMessage, bytes]:
        form = {"username": user, "password": password, "csrf_token": self.csrf()}
        if nxt is not None:
            form["next"] = nxt
        return self.request("POST", "/login", form)


@dataclass
class Production:
    port: int
    engine: Engine
    web: Started

    def client(self, forwarded_for: str | None = None) -> Http:
        return Http(self.port, forwarded_for)

    def admin(self) -> Http:
        c = self.client()
        status, headers, _ = c.login("admin")
        assert status == 302 and headers["Location"] == "/", status
        return c

    def uid(self, name: str) -> int:
        with Session(self.engine) as db:
            uid = db.scalar(select(User.id).where(User.username == name))
        assert uid is not None
        return uid


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory,
               postgres_server: PgServer) -> Iterator[Production]:  # noqa: F811
    """The seeded collector (tests/web_support.py) on PostgreSQL, and the web unit as shipped."""
    url = fresh_database(postgres_server)
    engine = migrated_engine(url)
    with make_sessionmaker(engine)() as db:
        seed(db, local_today())
        fast = hash_password("not the password of anyone", make_hasher(1, 1024, 1))
        right = hash_password(PASSWORD, make_hasher(1, 1024, 1))
        for name in ["lockme", "burst", *(f"guess{i:02d}" for i in range(ATTEMPTS))]:
            db.add(User(username=name, password_hash=fast if name.startswith("guess")
                        else right, role=Role.ADMIN,
                created_at=utcnow(), active=True, language="vi", failed_logins=0))
        db.commit()

    root = TestRoot(tmp_path_factory.mktemp("prod"))
    etc = root.path("/etc/cccd-checkin")
    _write_private(etc / "keys" / "data.key", DATA_KEY)
    _write_private(etc / "web-secret", os.urandom(32))
    (etc / "pki").mkdir(mode=0o700)
    subprocess.run(  # the CA as docs/operations.md §1 makes it
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-noenc", "-days", "30", "-subj", "/CN=CCCD check-in CA", "-keyout",
         str(etc / "pki" / "ca.key"), "-out", str(etc / "pki" / "ca.crt")],
        check=True, capture_output=True, timeout=60)
    # The guide's settings file: its [web] table as written (the proxy hop of the documented
    # nginx); the database and the data key are the test's.
    guide = tomllib.loads(doc_block((ROOT / "docs" / "operations.md").read_text(
        encoding="utf-8"), "file /etc/cccd-checkin/central.toml"))
    assert guide["web"] == {"trusted_proxy_hops": 1}, guide.get("web")
    (etc / "central.toml").write_text(
        f'database_url = "{url}"\n\n[keys]\ndata_key = "keys/data.key"\n\n'
        f'[web]\ntrusted_proxy_hops = {guide["web"]["trusted_proxy_hops"]}\n',
        encoding="utf-8")

    port = free_port()
    web = start_unit(load_unit("cccd-central-web.service"), root,
                     argv_replace={"127.0.0.1:8000": f"127.0.0.1:{port}"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, headers, _ = Http(port).request("GET", "/login")
                break
            except OSError:
                if web.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn does not answer:\n{web.output()[-3000:]}"
                                         ) from None
                time.sleep(0.2)
        assert status == 200 and "gunicorn" in (headers.get("Server") or ""), dict(headers)
        assert headers["X-Frame-Options"] == "DENY"  # the dashboard cannot be framed either
        yield Production(port, engine, web)
    finally:
        code, _ = web.stop()
        engine.dispose()
    assert code == 0, web.output()[-3000:]
    assert "Traceback" not in web.output(), web.output()[-5000:]


# -- open redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["/%09/evil.example", *REDIRECT_BYPASSES, "/%5C%5Cevil.example",
                                 "%2f%2fevil.example", "ftp://evil.example",
                                 "//evil.example/%2F.."])
def test_no_redirect_leaves_the_site(production: Production, raw: str) -> None:
    c = production.client()
    status, headers, _ = c.request("GET", f"/lang/en?next={raw}")
    assert (status, headers["Location"]) == (302, "/"), raw
    status, _, page = c.request("GET", f"/login?next={raw}")
    hidden = re.search(rb'name="next" value="([^"]*)"', page)
    assert status == 200 and hidden is not None and hidden.group(1) == b"", raw
    status, headers, _ = c.login("admin", nxt=urllib.parse.unquote(raw))
    assert (status, headers["Location"]) == (302, "/"), raw


def test_a_dot_segment_path_stays_on_the_site(production: Production) -> None:
    """``/.//evil.example`` is a path of this site (RFC 3986 §5.2: a browser resolves it to
    ``https://SITE//evil.example``), so it may be followed: still the same origin."""
    status, headers, _ = production.client().request("GET", "/lang/en?next=/.//evil.example")
    assert status == 302
    resolved = urllib.parse.urlsplit(urllib.parse.urljoin("https://central.example/login",
                                                          headers["Location"]))
    assert (resolved.scheme, resolved.netloc) == ("https", "central.example"), resolved


def test_a_local_next_is_kept(production: Production) -> None:
    c = production.client()
    status, headers, _ = c.request("GET", "/lang/en?next=/stays/%3Fstatus%3Ddue")
    assert (status, headers["Location"]) == (302, "/stays/?status=due")
    status, headers, _ = c.login("admin", nxt="/reports/")
    assert (status, headers["Location"]) == (302, "/reports/")


# -- password guessing ----------------------------------------------------------------------


def _burst(production: Production, attempts: list[tuple[str, str, str]]) -> Counter[int]:
    """One browser per attempt (its own cookie and CSRF token), every POST at the same moment."""
    prepared = []
    for user, password, address in attempts:
        c = production.client(address)
        prepared.append((c, {"username": user, "password": password,
                             "csrf_token": c.csrf()}))
    barrier = threading.Barrier(len(prepared))

    def one(i: int) -> int:
        c, form = prepared[i]
        barrier.wait()
        return c.request("POST", "/login", form)[0]

    with ThreadPoolExecutor(len(prepared)) as pool:
        return Counter(pool.map(one, range(len(prepared))))


def test_forty_parallel_guesses_check_at_most_the_limit(production: Production) -> None:
    # Each guess from its own address, so only the per-account limit holds them.
    statuses = _burst(production, [("lockme", f"wrong guess {i:02d}", f"192.0.2.{i + 1}")
                                   for i in range(ATTEMPTS)])
    assert statuses == Counter({401: ATTEMPTS}), statuses
    with Session(production.engine) as db:
        user = db.scalar(select(User).where(User.username == "lockme"))
        assert user is not None and user.locked_until is not None
        assert user.failed_logins == ATTEMPTS  # every attempt counted, across both workers
        failed = db.scalars(select(AuditLog).where(AuditLog.action == "login.failed",
                                                   AuditLog.actor == "lockme")).all()
    checked = [a for a in failed if a.detail == {"locked": False}]
    assert len(failed) == ATTEMPTS
    assert 1 <= len(checked) <= LOGIN_MAX_FAILURES, f"{len(checked)} passwords checked"
    # The right password, from yet another address: refused while the account is locked.
    status, _, _ = production.client("192.0.2.200").login("lockme")
    assert status == 401


def test_the_right_password_inside_a_parallel_burst_cannot_pass_the_limit(
        production: Production) -> None:
    """39 wrong guesses and the right one at once (the review's run: 25 guesses checked and
    the right one logged in): whatever the order, the right one logs in only if it was among
    the first ``LOGIN_MAX_FAILURES``; a success resets the count, so at most the limit again
    after it."""
    attempts = [("burst", f"wrong guess {i:02d}", f"192.0.2.{i + 101}")
                for i in range(ATTEMPTS - 1)]
    attempts.insert(ATTEMPTS // 2, ("burst", PASSWORD, "192.0.2.250"))
    statuses = _burst(production, attempts)
    assert set(statuses) <= {302, 401} and statuses[302] <= 1, statuses
    with Session(production.engine) as db:
        checked = db.scalars(select(AuditLog).where(
            AuditLog.action == "login.failed", AuditLog.actor == "burst")).all()
    wrong_checked = [a for a in checked if a.detail == {"locked": False}]
    if statuses[302]:
        assert len(wrong_checked) <= 2 * LOGIN_MAX_FAILURES - 1, len(wrong_checked)
    else:
        assert len(wrong_checked) <= LOGIN_MAX_FAILURES, len(wrong_checked)


def test_address_limit_behind_the_trusted_proxy_blocks_only_the_attacker(
        production: Production) -> None:
    attacker = "203.0.113.9"
    statuses = _burst(production, [(f"guess{i:02d}", "wrong", attacker) for i in range(ATTEMPTS)])
    assert statuses[401] <= IP_MAX_FAILURES, statuses
    assert statuses[401] + statuses[429] == ATTEMPTS, statuses
    assert production.client(attacker).login("admin")[0] == 429
    # A forged X-Forwarded-For does not help: the trusted proxy appends the real address last.
    assert production.client(f"198.51.100.1, {attacker}").login("admin")[0] == 429
    # Another member of staff behind the same proxy logs in.
    status, headers, _ = production.client("198.51.100.7").login("admin")
    assert (status, headers["Location"]) == (302, "/")
    with Session(production.engine) as db:
        checked = db.scalars(select(AuditLog).where(AuditLog.action == "login.failed",
                                                    AuditLog.actor.like("guess%"))).all()
    assert len(checked) <= IP_MAX_FAILURES


# -- sessions after logout, password change, deactivation -----------------------------------


def _open_stream(c: Http) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    conn.request("GET", "/dashboard/stream", headers=c.headers())
    response = conn.getresponse()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    first = b""
    while not first.startswith(b"event: "):  # after the stream's ``retry:`` line
        first = response.readline()
        assert first, "the stream ended before its first event"
    assert first.startswith(b"event: update"), first
    return conn, response


@pytest.mark.parametrize(("how", "victim"), [("logout", "hanoi"), ("password", "tinh"),
                                             ("deactivate", "diem")])
def test_a_session_ends_with_logout_password_change_or_deactivation(
        production: Production, how: str, victim: str) -> None:
    c = production.client()
    assert c.login(victim)[0] == 302
    assert c.request("GET", "/")[0] == 200
    copied = dict(c.cookies)
    conn, stream = _open_stream(c)
    try:
        if how == "logout":
            assert c.request("POST", "/logout", {"csrf_token": c.csrf("/")})[0] == 302
        else:
            admin = production.admin()
            token = admin.csrf("/admin/users")
            uid = production.uid(victim)
            if how == "password":
                status = admin.request("POST", f"/admin/users/{uid}/password", {
                    "csrf_token": token, "password": "another long password"})[0]
            else:  # "active" left unticked
                status = admin.request("POST", f"/admin/users/{uid}", {
                    "csrf_token": token, "role": "site", "site_ids": "hue-dai-noi"})[0]
            assert status == 302
        rest = stream.read()  # the stream ends by itself on its next tick
    finally:
        conn.close()
    assert b"event: logout" in rest, rest[-300:]
    thief = production.client()
    thief.cookies = copied
    status, headers, _ = thief.request("GET", "/stays/")
    assert status == 302 and headers["Location"].startswith("/login"), (status, dict(headers))


# -- out-of-range parameters ----------------------------------------------------------------


def test_huge_integers_are_400_not_500(production: Production) -> None:
    c = production.admin()
    for path in (f"/reports/?unit={HUGE}", f"/reports/export.csv?unit={HUGE}",
                 f"/reports/export.xlsx?unit={HUGE}", f"/audit/?page={HUGE}",
                 f"/api/v1/sites?unit={HUGE}", f"/api/v1/counts?unit={HUGE}",
                 f"/api/v1/reports?unit={HUGE}", "/reports/?unit=2147483648",
                 "/reports/?unit=-1", "/audit/?page=%C2%B2", "/stays/?from=9999-12-31",
                 "/reports/?date=9999-12-31", "/api/v1/counts?date=0001-01-01",
                 "/sites/a%00b"):
        assert c.request("GET", path)[0] == 400, path
    # register exports are POSTs with a purpose (docs/privacy.md §3): bad dates are 400 there too
    for fmt, field, value in (("csv", "from", "9999-12-31"), ("xlsx", "to", "0001-01-01")):
        form = {**PURPOSE, field: value, "csrf_token": c.csrf("/stays/")}
        assert c.request("POST", f"/stays/export.{fmt}", form)[0] == 400, (fmt, field)
    assert c.request("GET", f"/admin/users/{HUGE}")[0] in (404, 405)
    r = c.request("POST", "/admin/units", {"csrf_token": c.csrf("/admin/units"), "code": "99",
                                            "name": "X", "level": "province",
                                            "parent_id": HUGE})
    assert r[0] == 400
    assert "Traceback" not in production.web.output()


# -- formula injection in exports -----------------------------------------------------------


def _plant(engine: Engine, payload: str) -> None:
    """``payload`` put before every unit, site, guest and address name and as the room."""
    with Session(engine) as db:
        for unit in db.scalars(select(Unit)):
            unit.name = payload + f"Đơn vị {unit.code}"
        for site in db.scalars(select(Site)):
            site.name = payload + site.id
        for stay in db.scalars(select(Stay)):
            planted: dict[str, Any] = {
                "full_name": payload + "Nguyễn Thị Mai", "id_number": "079303001234",
                "date_of_birth": "2003-05-15", "sex": "F", "nationality": "VNM",
                "address": payload + "1 Đường C", "document_type": "cccd"}
            stay.personal_sealed = encrypt_personal(DATA_KEY, stay.stay_id, planted)
            stay.ward_or_room = payload[:20]
        db.commit()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_exports_escape_formulas(production: Production, payload: str) -> None:
    _plant(production.engine, payload)
    c = production.admin()
    for path, parse in (("/stays/export.csv", _csv_cells), ("/stays/export.xlsx", _xlsx_cells),
                        ("/reports/export.csv", _csv_cells),
                        ("/reports/export.xlsx", _xlsx_cells)):
        if path.startswith("/stays/"):  # personal data: a POST with a purpose, pending or not
            form = {**PURPOSE, "status": "all", "csrf_token": c.csrf("/stays/")}
            status, _, body = c.request("POST", path, form)
        else:
            status, _, body = c.request("GET", path)
        assert status == 200, path
        _assert_inert(parse(body), payload, path)


# -- the kiosk ------------------------------------------------------------------------------


def _kiosk_get(port: int, host: str, path: str = "/") -> tuple[int, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        conn.close()


def test_kiosk_answers_only_its_own_host_and_forbids_framing(tmp_path: Path) -> None:
    """``edge-agent run`` (a gate with a serial scanner; its broker need not be up)."""
    write_device_keys(tmp_path)
    port = free_port()
    pty = PtySerialScanner(terminator=b"\r")
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[device]
id = "gate-01"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "entry"
name = "Cổng Ngọ Môn 1"

{KEYS_TOML}
[scanners]
uris = ["serial:{pty.path}?terminator=cr"]

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {port}
""", encoding="utf-8")
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen([str(Path(sys.executable).parent / "edge-agent"), "run",
                                  "--config", str(config)], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers = _kiosk_get(port, f"127.0.0.1:{port}", "/state")
                break
            except OSError:
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text(errors="replace")[-3000:]) from None
                time.sleep(0.2)
        assert status == 200
        for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            for path in ("/", "/state"):
                status, headers = _kiosk_get(port, own, path)
                assert status == 200, (own, path)
                assert headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
                assert not re.search(r"Werkzeug|Python", headers.get("Server", ""))
        for foreign in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}",
                        "127.0.0.1", "localhost", f"127.0.0.1:{port + 1}", f"[::1]:{port}",
                        ""):
            for path in ("/", "/state", "/events"):
                status, headers = _kiosk_get(port, foreign, path)
                assert status == 421, (foreign, path, status)
                assert headers["X-Frame-Options"] == "DENY"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/direction", body=json.dumps({"direction": "exit"}),
                     headers={"Host": "evil.example", "X-Kiosk-Desk": "1",
                              "Content-Type": "application/json"})
        assert conn.getresponse().status == 421
        conn.close()
    finally:
        agent.terminate()
        try:
            agent.wait(20)
        finally:
            pty.close()
    assert agent.returncode == 0, log.read_text(errors="replace")[-3000:]
