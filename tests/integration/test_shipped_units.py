"""Every unit in ``deploy/systemd/`` started as shipped, with the files docs/operations.md tells
an operator to write, under a test-made root (tests/integration/systemd_units.py).

* The collector's files come from the operations guide itself: its key and certificate
  commands, ``deploy/postgres/setup.sh`` (a role with a password the server really checks,
  given to libpq through ``/etc/cccd-checkin/pgpass``), ``central.toml`` cut from the text,
  the per-worker settings, ``central migrate`` and ``central create-admin``.
* The web unit runs gunicorn, which must answer the login page over HTTP, and enrol a device
  (the session secret and the device CA reach it only as the unit's credentials). The
  enrolment bundle goes to the agent's ``/etc/cccd-checkin``; the agent starts from
  ``deploy/agent.example.toml`` with only what docs/operations.md §2 says to complete (reader
  and scanner URIs, broker URL) and its kiosk answers on the kiosk unit's URL. The ingest
  worker connects to a real mosquitto and stores the agent's event.
* The broker is set up by the guide's commands (``central broker-identity``, ``broker-acl``,
  the shipped ``deploy/mosquitto`` file in Debian's ``conf.d``) and started as Debian's
  ``mosquitto.service`` starts it, with the dynamic-security plugin (default deny). The
  broker-sync unit grants the enrolled device; a second device, revoked at the web page, is
  removed and its certificate added to the CRL the broker's ``crlfile`` names; after the
  reload the CRL path unit stands for (SIGHUP, Debian's ``ExecReload``) its handshake fails.
* Purge and backup run to completion; the backup is restored for real.
* Long-running units stop on SIGTERM within their ``TimeoutStopSec``.

Not exercised: the kiosk browser (``cage`` + Chromium on a tty); its URL is checked against the
agent's configuration instead. systemd itself (timers, the path unit's inotify watch, the
reload through ``systemctl``): the units are parsed and their targets checked instead. Port numbers the units fix (gunicorn's ``--bind``) are replaced
by free ports; the agent keeps the example's kiosk port 8080, which must be free.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import tomllib
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from central.db.models import Device, Event, Site, SiteKind, Unit, UnitLevel
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from tests.integration.broker_fixtures import (
    Broker,
    Identity,
    Pki,
    Recorder,
    _issue,
    free_port,
)
from tests.integration.pg_fixtures import (  # noqa: F401 - the fixture, used by name
    PG_BIN,
    PgServer,
    migrated_engine,
    postgres_server,
)
from tests.integration.systemd_units import (
    ROOT,
    UNITS,
    VENV_BIN,
    TestRoot,
    UnitFile,
    UnitFileError,
    doc_block,
    load_unit,
    parse_unit,
    run_oneshot,
    start_unit,
)

OPERATIONS = ROOT / "docs" / "operations.md"
EXAMPLE = ROOT / "deploy" / "agent.example.toml"
DEVICE = "gate-ngo-mon-01"
REVOKED = "gate-ngo-mon-02"
SITE = "hue-dai-noi"
ADMIN_PASSWORD = "đổi-mật-khẩu-này-ngay"
COVERED = {
    "cccd-central-web.service", "cccd-central-ingest@.service", "cccd-agent.service",
    "cccd-kiosk.service", "cccd-central-purge.service", "cccd-central-purge.timer",
    "cccd-central-backup.service", "cccd-central-backup.timer",
    "cccd-central-broker-sync.service", "cccd-central-broker-sync.timer",
    "cccd-broker-crl.path", "cccd-broker-crl.service",
}
BROKER_CONF = ROOT / "deploy" / "mosquitto" / "cccd-checkin.conf"


def run_block(root: TestRoot, script: str, env: dict[str, str] | None = None) -> str:
    """A shell block of the guide, its paths moved under ``root``; ``systemctl`` is recorded
    (there is no systemd here), everything else runs for real. Returns standard output."""
    shims = root.base / "shims"
    shims.mkdir(exist_ok=True)
    systemctl = shims / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {root.base}/systemctl.log\n')
    systemctl.chmod(0o755)
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {}),
            "PATH": f"{shims}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + root.rewrite(script)],
                          cwd=ROOT, env=full, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, f"{root.rewrite(script)}\n---\n{done.stdout}\n{done.stderr}"
    return done.stdout


def password_login_for(server: PgServer, role: str) -> None:
    """Make the test server check ``role``'s password (scram) on TCP; others stay trusted."""
    hba = server.root / "data" / "pg_hba.conf"
    line = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
    if line not in hba.read_text():
        hba.write_text(line + hba.read_text())
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
                        str(server.root / "data"), "reload"], check=True, capture_output=True,
                       timeout=60)


@dataclass
class Collector:
    root: TestRoot
    server: PgServer
    broker: Broker
    engine: Engine
    """A superuser engine on the collector's database (the test's own view)."""


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory,
              postgres_server: PgServer) -> Iterator[Collector]:  # noqa: F811
    root = TestRoot(tmp_path_factory.mktemp("root"))
    guide = OPERATIONS.read_text(encoding="utf-8")
    run_block(root, doc_block(guide, "commands keys"))
    password_login_for(postgres_server, "cccd_central")
    out = run_block(root, doc_block(guide, "commands database"),
                    {"PGHOST": str(postgres_server.root), "PGPORT": str(postgres_server.port)})
    url_line = out.strip().splitlines()[-1]
    assert re.fullmatch(r'database_url = "postgresql\+psycopg://cccd_central@127\.0\.0\.1:'
                        rf'{postgres_server.port}/cccd_checkin"', url_line), out
    pgpass = root.path("/etc/cccd-checkin/pgpass")
    assert pgpass.stat().st_mode & 0o777 == 0o600
    password = pgpass.read_text().strip().rsplit(":", 1)[1]
    assert len(password) >= 20 and password not in url_line

    broker_port = free_port()
    settings = doc_block(guide, "file /etc/cccd-checkin/central.toml")
    settings = re.sub(r"^database_url = .*$", url_line, settings, count=1, flags=re.M)
    settings = settings.replace("mqtts://broker.example.vn:8883", f"mqtts://127.0.0.1:{broker_port}")
    root.path("/etc/cccd-checkin/central.toml").write_text(root.rewrite(settings))
    run_block(root, doc_block(guide, "commands ingest-settings"))
    out = run_block(root, doc_block(guide, "commands admin"))
    assert "administrator admin ready" in out

    pki_dir = root.path("/etc/cccd-checkin/pki")
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    pki = Pki(root.base / "broker-pki", pki_dir / "ca.crt", ca_key,
              x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes()),
              broker=Identity("", pki_dir / "ca.crt", pki_dir / "ca.crt"))
    pki.root.mkdir()
    pki.broker = _issue(pki, "broker", server=True)  # the guide's names broker.example.vn
    for n in (1, 2):
        pki.collectors[f"collector-{n}"] = Identity(f"collector-{n}",
                                                    pki_dir / f"collector-{n}.crt",
                                                    pki_dir / f"collector-{n}.key")
    broker = install_broker(root, pki, broker_port)
    engine = create_engine(postgres_server.url("cccd_checkin"))
    try:
        yield Collector(root, postgres_server, broker, engine)
    finally:
        engine.dispose()
        broker.close()


def install_broker(root: TestRoot, pki: Pki, port: int) -> Broker:
    """docs/operations.md §1 step 4 as written, then mosquitto started as Debian's
    ``mosquitto.service`` does (``mosquitto -c /etc/mosquitto/mosquitto.conf``, which includes
    ``conf.d/``). ``apt-get install mosquitto`` is stood in for by the package's own
    ``mosquitto.conf`` and folders; two things of the installed file change: the listener (a
    free port on loopback) and the broker certificate (the guide's names broker.example.vn,
    the test's 127.0.0.1). mosquitto stays the test's user (test-made folders are private)."""
    debian = Path("/etc/mosquitto/mosquitto.conf")
    assert debian.exists(), "mosquitto's Debian configuration is missing (apt-get install mosquitto)"
    for folder in ("/etc/mosquitto/conf.d", "/var/lib/mosquitto", "/var/log/mosquitto",
                   "/run/mosquitto", "/etc/systemd/system"):
        root.path(folder).mkdir(parents=True, exist_ok=True)
    main = root.path("/etc/mosquitto/mosquitto.conf")
    main.write_text(f"user {root.user}\n" + root.rewrite(debian.read_text()))
    log = root.base / "systemctl.log"
    mark = len(log.read_text().splitlines()) if log.exists() else 0
    out = run_block(root, doc_block(OPERATIONS.read_text(encoding="utf-8"), "commands broker"))
    assert re.search(r"dynamic-security\.json: \d+ identities \(broker-admin, collector-1, "
                     r"collector-2\)", out), out
    calls = log.read_text().splitlines()[mark:]
    assert calls == ["stop mosquitto", "start mosquitto", "daemon-reload",
                     "enable --now cccd-central-broker-sync.timer cccd-broker-crl.path"], calls
    for name in calls[-1].split()[2:]:  # the enabled units were copied where systemd reads them
        assert (root.path("/etc/systemd/system") / name).read_bytes() == \
            (UNITS / name).read_bytes()
    dynsec = root.path("/var/lib/mosquitto/dynamic-security.json")
    assert dynsec.stat().st_mode & 0o777 == 0o600
    admin_key = root.path("/etc/cccd-checkin/pki/broker-admin.key")
    assert admin_key.stat().st_mode & 0o777 == 0o640  # the sync unit's user reads it
    crl = root.path(broker_setting("crlfile"))
    assert crl.stat().st_mode & 0o777 == 0o644
    assert len(x509.load_pem_x509_crl(crl.read_bytes())) == 0  # no device revoked yet

    installed = root.path("/etc/mosquitto/conf.d/cccd-checkin.conf")
    conf = root.rewrite(installed.read_text())
    for old, new in (("listener 8883\n", f"listener {port} 127.0.0.1\n"),
                     (f"certfile {root.path('/etc/cccd-checkin/pki/broker.crt')}\n",
                      f"certfile {pki.broker.cert}\n"),
                     (f"keyfile {root.path('/etc/cccd-checkin/pki/broker.key')}\n",
                      f"keyfile {pki.broker.key}\n")):
        assert conf.count(old) == 1, (old, conf)
        conf = conf.replace(old, new)
    installed.write_text(conf)
    broker = Broker(root.base / "mosquitto", pki, port=port,
                    config=(main, root.path("/var/log/mosquitto/mosquitto.log")))
    broker.start()
    return broker


# -- the unit files themselves ------------------------------------------------------------------


def test_every_shipped_unit_is_covered_here() -> None:
    assert {p.name for p in UNITS.iterdir()} == COVERED
    for name in COVERED:
        unit = load_unit(name)
        if name.endswith(".timer"):
            service = name.replace(".timer", ".service")
            assert unit.get("Unit", "Timer", service) == service
            assert load_unit(service).get("Type") == "oneshot"
            assert unit.get("OnCalendar", "Timer") or unit.get("OnUnitActiveSec", "Timer")


def broker_setting(key: str) -> str:
    """One setting of the shipped broker configuration (it must appear exactly once)."""
    values = [line.split(None, 1)[1].strip() for line in BROKER_CONF.read_text().splitlines()
              if line.split(None, 1)[:1] == [key]]
    assert len(values) == 1, (key, values)
    return values[0]


def test_crl_path_unit_reloads_the_broker_when_its_crlfile_changes() -> None:
    """The path unit watches the file the broker's ``crlfile`` names, which the sync unit
    writes, and starts the service that reloads mosquitto (not run here: there is no systemd;
    the reload itself, SIGHUP, is exercised in the collector test below)."""
    path_unit = load_unit("cccd-broker-crl.path")
    crlfile = broker_setting("crlfile")
    assert path_unit.all("PathChanged", "Path") == [crlfile]
    assert path_unit.get("Unit", "Path", "cccd-broker-crl.service") == "cccd-broker-crl.service"
    assert path_unit.get("WantedBy", "Install")
    reload_unit = load_unit("cccd-broker-crl.service")
    assert reload_unit.get("Type") == "oneshot"
    # The documented reload (docs/operations.md §1 step 4): systemctl reload mosquitto.
    assert reload_unit.exec_start({}) == ["/bin/systemctl", "reload", "mosquitto.service"]
    guide = OPERATIONS.read_text(encoding="utf-8")
    assert "systemctl reload mosquitto" in guide and "cccd-broker-crl.path" in guide
    sync_argv = load_unit("cccd-central-broker-sync.service").exec_start({"d": "/creds"})
    assert sync_argv[sync_argv.index("--crl") + 1] == crlfile
    assert crlfile.startswith("/var/lib/cccd-broker/")
    assert "cccd-broker" in (load_unit("cccd-central-broker-sync.service")
                             .get("StateDirectory") or "").split()


def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` (systemd's own parser: unknown keys, bad values, missing
    executables) on every unit, its /opt/cccd-checkin paths mapped to this checkout. The
    kiosk's compositor ``cage`` is not installed on a test machine: ``/bin/true`` stands in."""
    names = []
    for path in sorted(UNITS.iterdir()):
        body = (path.read_text(encoding="utf-8")
                .replace("/opt/cccd-checkin/.venv/bin/", f"{VENV_BIN}/")
                .replace("/opt/cccd-checkin/", f"{ROOT}/").replace("/usr/bin/cage ", "/bin/true "))
        (tmp_path / path.name).write_text(body, encoding="utf-8")
        names.append(f"./{path.name.replace('@.service', '@1.service')}")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr + done.stdout
    # Sandboxing: systemd's exposure score (0 = locked down, 100 = none) of every service
    # but the kiosk browser, which needs a tty and a login session.
    for name in names:
        if name.endswith(".service") and "kiosk" not in name:
            done = subprocess.run(["systemd-analyze", "security", "--offline=true",
                                   "--threshold=30", name], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=120, check=False)
            assert done.returncode == 0, (name, done.stdout.splitlines()[-1:])


def test_unit_parser_refuses_malformed_files() -> None:
    cases = {
        "ExecStart=/bin/true\n": "before any [Section]",
        "[Service]\nExecStart /bin/true\n": "not a Key=Value",
        "[Service\nExecStart=/bin/true\n": "malformed section header",
        "[Service]\nExecStart=/bin/true \\\n": "ends inside a continued line",
        "# nothing\n": "no section",
    }
    for body, reason in cases.items():
        with pytest.raises(UnitFileError, match=re.escape(reason)):
            parse_unit(body, "bad.service")
    unit = parse_unit("[Service]\nExecStart=/bin/echo a \\\n  # note\n  'b c' %%i\n", "x")
    assert unit.exec_start({}) == ["/bin/echo", "a", "b c", "%i"]
    with pytest.raises(UnitFileError, match="specifier %q"):
        parse_unit("[Service]\nExecStart=/bin/echo %q\n", "y").exec_start({})
    with pytest.raises(UnitFileError, match="not K=V"):
        parse_unit("[Service]\nEnvironment=JUSTAWORD\n", "z").environment({})


def test_kiosk_unit_opens_the_agent_kiosk_url() -> None:
    """The kiosk browser is not launched; its URL must be the agent's kiosk (the port is
    hard-coded in both files: 8080)."""
    unit = load_unit("cccd-kiosk.service")
    argv = unit.exec_start({})
    assert argv[:2] == ["/usr/bin/cage", "--"] and "--kiosk" in argv
    url = urllib.parse.urlsplit(argv[-1])
    kiosk = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["kiosk"]
    assert (url.scheme, url.hostname, url.port) == ("http", kiosk["host"], kiosk["port"])
    assert "cccd-agent.service" in (unit.get("After", "Unit") or "").split()


# -- the collector and an agent ---------------------------------------------------------------


class Http:
    """A minimal HTTP client that keeps the session cookie although it is ``Secure`` (the
    unit serves plain HTTP on loopback behind a TLS proxy)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None
                ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        response.body = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response


def csrf(page: bytes) -> str:
    match = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page[:500]
    return match.group(1).decode()


def wait_http(port: int, path: str, started: object, timeout: float = 60.0
              ) -> http.client.HTTPResponse:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Http(port).request("GET", path)
        except OSError:
            proc = started.proc  # type: ignore[attr-defined]
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"nothing answers on {port}{path}:\n"
                                     f"{started.output()[-3000:]}") from None  # type: ignore[attr-defined]
            time.sleep(0.2)


def seed_site(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        if s.get(Site, SITE) is None:
            unit = Unit(code="46", name="Thừa Thiên Huế", level=UnitLevel.PROVINCE)
            s.add(unit)
            s.flush()
            s.add(Site(id=SITE, name="Hoàng thành Huế", kind=SiteKind.HERITAGE, unit_id=unit.id,
                       capacity=6000))


def enrol_through_the_web(web_port: int) -> tuple[Http, bytes]:
    """Log in as the guide's administrator and enrol the device; the logged-in client and the
    bundle."""
    client = Http(web_port)
    login = client.request("GET", "/login")
    done = client.request("POST", "/login", {"username": "admin", "password": ADMIN_PASSWORD,
                                            "csrf_token": csrf(login.body)})  # type: ignore[attr-defined]
    assert done.status == 302, done.body  # type: ignore[attr-defined]
    return client, enrol(client, DEVICE, "Cổng Ngọ Môn 1")


def enrol(client: Http, device_id: str, name: str) -> bytes:
    """Enrol a device at the site through the logged-in admin's web page; the bundle."""
    page = client.request("GET", "/admin/devices")
    assert page.status == 200
    bundle = client.request("POST", "/admin/devices/enrol", {
        "csrf_token": csrf(page.body), "site_id": SITE,  # type: ignore[attr-defined]
        "device_id": device_id, "direction": "entry", "name": name})
    assert bundle.status == 200, bundle.body[:500]  # type: ignore[attr-defined]
    assert bundle.headers["Content-Type"] == "application/zip"
    data: bytes = bundle.body  # type: ignore[attr-defined]
    return data


def open_live_stream(client: Http) -> http.client.HTTPConnection:
    """A dashboard's server-sent-events stream, left open (it holds a gunicorn thread)."""
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    conn.request("GET", "/dashboard/stream", headers={
        "Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())})
    response = conn.getresponse()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.readline()  # the first event arrived
    return conn


def complete_agent_toml(example: str, card: Path, scanner_tty: Path, broker: Broker) -> str:
    """docs/operations.md §2 (step 4): readers and scanners by URI, the broker URL; nothing else."""
    changed = example.replace('uris = ["pcsc"]', f'uris = ["sim:{card}"]', 1)
    changed = changed.replace("serial:/dev/ttyACM0?", f"serial:{scanner_tty}?", 1)
    changed = changed.replace('url = "mqtts://broker.example.vn:8883"',
                              f'url = "mqtts://127.0.0.1:{broker.port}"', 1)
    diff = [(a, b) for a, b in zip(example.splitlines(), changed.splitlines(), strict=True)
            if a != b]
    assert [a.split("=")[0].strip() for a, _ in diff] == ["uris", "uris", "url"], diff
    return changed


def broker_clients(root: TestRoot) -> set[str]:
    """The usernames in the broker's dynamic-security file (the plugin saves every change)."""
    document = json.loads(root.path("/var/lib/mosquitto/dynamic-security.json").read_text())
    return {str(client["username"]) for client in document["clients"]}


def tls_handshake(port: int, ca: Path, cert: Path, key: Path) -> str | None:
    """None when the broker completes a TLS handshake with this client certificate, else the
    error. TLS 1.2 at most (the broker's ``tls_version`` is a minimum): in 1.2 the broker's
    verdict on the client certificate is part of the handshake, in 1.3 it comes after it."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
                ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
            return None
    except (ssl.SSLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def revoke_a_device(collector: Collector, admin: Http, sync_unit: UnitFile,
                    kept: x509.Certificate) -> None:
    """docs/operations.md §3 (step 1): a second device enrolled and granted, then revoked at the
    centre; the sync unit removes it from the broker and rewrites the CRL the broker's
    ``crlfile`` names; after the reload the path unit triggers, its handshake fails."""
    root, broker = collector.root, collector.broker
    with zipfile.ZipFile(io.BytesIO(enrol(admin, REVOKED, "Cổng Ngọ Môn 2"))) as zf:
        zf.extractall(root.base / "bundle")
    tls = root.base / "bundle" / REVOKED / "tls"
    cert, key = tls / f"{REVOKED}.crt", tls / f"{REVOKED}.key"
    serial = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
    code, out = run_oneshot(sync_unit, root, log_name="broker-sync-2")
    assert code == 0 and re.search(rf"granted: {REVOKED};", out), out

    page = admin.request("GET", "/admin/devices")
    done = admin.request("POST", f"/admin/devices/{REVOKED}/revoke",
                         {"csrf_token": csrf(page.body)})  # type: ignore[attr-defined]
    assert done.status == 302, done.body  # type: ignore[attr-defined]
    crl_path = root.path(broker_setting("crlfile"))
    before = crl_path.read_bytes()
    code, out = run_oneshot(sync_unit, root, log_name="broker-sync-3")
    assert code == 0 and re.search(rf"removed: {REVOKED}$", out, re.M), out
    assert "1 revoked devices (rewritten: reload the broker)" in out, out
    after = crl_path.read_bytes()
    assert after != before and crl_path.stat().st_mode & 0o777 == 0o644
    listed = {r.serial_number for r in x509.load_pem_x509_crl(after)}
    assert listed == {serial} and kept.serial_number not in listed
    assert REVOKED not in broker_clients(root)
    # The running broker still has the old list: the handshake succeeds until the reload.
    ca = root.path("/etc/cccd-checkin/pki/ca.crt")
    assert tls_handshake(broker.port, ca, cert, key) is None

    # cccd-broker-crl.path → cccd-broker-crl.service: systemctl reload mosquitto, which is
    # Debian's ExecReload=/bin/kill -HUP $MAINPID (checked), done here to the test's broker.
    assert load_unit("cccd-broker-crl.service").exec_start({})[1:] == ["reload",
                                                                       "mosquitto.service"]
    debian_unit = Path("/lib/systemd/system/mosquitto.service").read_text()
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in debian_unit
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    refused = tls_handshake(broker.port, ca, cert, key)
    while refused is None and time.monotonic() < deadline:
        time.sleep(0.2)
        refused = tls_handshake(broker.port, ca, cert, key)
    assert refused is not None, broker.log_tail()
    assert "revoked" in refused or "certificate verify failed" in broker.log_tail(), \
        (refused, broker.log_tail())
    # Everyone else still passes the new CRL: broker-admin (the sync again: nothing to do).
    code, out = run_oneshot(sync_unit, root, log_name="broker-sync-4")
    assert code == 0 and "broker-sync: 0 changes" in out and "(unchanged)" in out, out


def test_collector_and_agent_units_start_as_shipped(collector: Collector) -> None:
    root, engine = collector.root, collector.engine
    seed_site(engine)
    web_port = free_port()
    web_unit = load_unit("cccd-central-web.service")
    assert "--bind" in web_unit.exec_start({"d": "/"})
    # gunicorn's --bind 127.0.0.1:8000 moved to a free port: the one thing changed
    web = start_unit(web_unit, root, argv_replace={"127.0.0.1:8000": f"127.0.0.1:{web_port}"})
    ingest = start_unit(load_unit("cccd-central-ingest@.service"), root, instance="1")
    agent = None
    stream: http.client.HTTPConnection | None = None
    pty = PtySerialScanner(terminator=b"\r", link=root.base / "ttyACM0")
    recorder = Recorder(collector.broker, (f"checkin/v1/{DEVICE}/status",),
                        name="collector-2").start()
    try:
        page = wait_http(web_port, "/login", web)
        assert page.status == 200
        assert "gunicorn" in (page.headers.get("Server") or ""), dict(page.headers)
        assert b'name="password"' in page.body  # type: ignore[attr-defined]

        admin, bundle = enrol_through_the_web(web_port)
        stream = open_live_stream(admin)  # still open when the web unit is stopped
        etc = root.path("/etc/cccd-checkin")
        with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
            names = set(zf.namelist())
            assert {f"{DEVICE}/tls/ca.pem", f"{DEVICE}/tls/{DEVICE}.crt",
                    f"{DEVICE}/keys/device-ed25519.pem"} <= names, names
            zf.extractall(root.base / "bundle")
        agent_etc = root.base / "bundle" / DEVICE  # its contents go to the Pi's /etc/cccd-checkin
        issued = x509.load_pem_x509_certificate((agent_etc / "tls" / f"{DEVICE}.crt")
                                                .read_bytes())
        assert issued.issuer == x509.load_pem_x509_certificate(
            (etc / "pki" / "ca.crt").read_bytes()).subject  # the CA given as a credential
        # The broker denies by default: the sync unit, run by hand after enrolling (docs §1
        # step 4), grants the device its topics.
        sync_unit = load_unit("cccd-central-broker-sync.service")
        assert DEVICE not in broker_clients(root)
        code, out = run_oneshot(sync_unit, root)
        assert code == 0 and re.search(rf"granted: {DEVICE};", out), out
        assert "0 revoked devices (unchanged)" in out, out
        assert DEVICE in broker_clients(root)  # the plugin saved the grant

        # The Pi: the agent unit under its own root, from the example file.
        pi = TestRoot(root.base / "pi")
        pi_etc = pi.path("/etc/cccd-checkin")
        pi_etc.parent.mkdir(parents=True, exist_ok=True)
        agent_etc.rename(pi_etc)
        issue_cards(pi.base / "cards", 2, seed=11)
        (pi.base / "cards" / "trust").rename(pi_etc / "trust")
        card = pi.base / "cards" / "cards" / "0001"
        example = EXAMPLE.read_text(encoding="utf-8")
        (pi_etc / "agent.toml").write_text(pi.rewrite(complete_agent_toml(
            example, card, Path(pty.path), collector.broker)))
        doctor = run_block(pi, doc_block(OPERATIONS.read_text(encoding="utf-8"),
                                         "commands doctor"))
        checks = {line.split()[1].rstrip(":"): line.split()[0]
                  for line in doctor.splitlines() if line.strip()}
        assert set(checks.values()) == {"OK"}, doctor
        assert {"keys", "reader", "scanner", "broker", "device", "clock"} <= set(checks)
        agent_unit = load_unit("cccd-agent.service")
        agent = start_unit(agent_unit, pi)
        kiosk_url = urllib.parse.urlsplit(load_unit("cccd-kiosk.service").exec_start({})[-1])
        kiosk = wait_http(kiosk_url.port or 80, kiosk_url.path, agent)
        assert kiosk.status == 200
        assert "Mời chạm thẻ".encode() in kiosk.body  # type: ignore[attr-defined]
        assert recorder.wait_for(lambda ms: any(m.json().get("state") == "online" for m in ms),
                                 30), agent.output()[-3000:]

        qr = json.loads((pi.base / "cards" / "cards" / "0002" / "card.json").read_text())["qr"]
        pty.scan(qr.encode("utf-8"))

        def stored() -> int:
            with Session(engine) as s:
                return int(s.scalar(select(func.count()).select_from(Event)
                                    .where(Event.device_id == DEVICE)) or 0)
        deadline = time.monotonic() + 60
        while stored() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stored() >= 1, (agent.output()[-2000:], ingest.output()[-2000:])
        with Session(engine) as s:
            device = s.get(Device, DEVICE)
            assert device is not None and device.state == "online"

        revoke_a_device(collector, admin, sync_unit, issued)
    finally:
        recorder.stop()
        results = {}
        for name, started in (("agent", agent), ("ingest", ingest), ("web", web)):
            if started is not None:
                results[name] = started.stop()
        pty.close()
        if stream is not None:
            stream.close()
    for name, (code, _) in results.items():
        assert code == 0, (name, code)
    assert stream is not None  # the web unit stopped in time with a live stream open
    assert "Traceback" not in web.output() + ingest.output() + (agent.output() if agent else "")


def test_web_unit_without_its_secret_stops_without_a_restart_loop(collector: Collector) -> None:
    """A missing credential: gunicorn (``--preload``) stops before any worker, with a status the
    unit lists in RestartPreventExitStatus, and the journal line names the secret."""
    unit = load_unit("cccd-central-web.service")
    secret = collector.root.path("/etc/cccd-checkin/web-secret")
    broken = UnitFile(unit.name, {k: list(v) for k, v in unit.sections.items()})
    broken.sections["Service"] = [
        (k, v.replace("--secret-key-file %d/session-secret ", "") if k == "Environment" else v)
        for k, v in broken.sections["Service"]]
    started = start_unit(broken, collector.root, log_name="web-no-secret",
                         argv_replace={"127.0.0.1:8000": f"127.0.0.1:{free_port()}"})
    code = started.proc.wait(60)
    assert secret.exists()
    assert str(code) in (unit.get("RestartPreventExitStatus") or "").split(), started.output()
    assert "no session secret" in started.output()


def test_purge_unit_runs_to_completion(collector: Collector) -> None:
    code, out = run_oneshot(load_unit("cccd-central-purge.service"), collector.root)
    assert code == 0, out
    assert "purged:" in out


def test_backup_unit_and_restore(collector: Collector) -> None:
    root, engine = collector.root, collector.engine
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO units (code, name, level) VALUES "
                          "('99', 'Đơn vị sao lưu', 'province')"))
    shims = root.base / "pg-shims"
    shims.mkdir(exist_ok=True)
    argv_log = root.base / "pg_dump.argv"
    shim = shims / "pg_dump"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_log}\n'
                    f'env | grep -c "^PGPASSWORD=" >> {argv_log} || true\n'
                    'exec /usr/bin/pg_dump "$@"\n')
    shim.chmod(0o755)
    unit = load_unit("cccd-central-backup.service")
    code, out = run_oneshot(unit, root,
                            extra_env={"PATH": f"{shims}:{os.environ['PATH']}"})
    assert code == 0, out
    dumps = sorted(root.path("/var/backups/cccd-checkin").glob("central-*.pgdump"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 0, out
    password = root.path("/etc/cccd-checkin/pgpass").read_text().strip().rsplit(":", 1)[1]
    logged = argv_log.read_text()
    assert password not in logged and logged.strip().endswith("0"), logged

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM units WHERE code = '99'"))
    env = {"PGPASSFILE": str(root.path("/etc/cccd-checkin/pgpass"))}
    run_block(root, f"/opt/cccd-checkin/deploy/backup/restore.sh "
                    f"/etc/cccd-checkin/central.toml {dumps[0]}", env)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT name FROM units WHERE code = '99'")) == "Đơn vị sao lưu"

    # The guide's own backup-and-restore commands (systemctl recorded, not run).
    log = root.base / "systemctl.log"
    mark = len(log.read_text().splitlines()) if log.exists() else 0
    run_block(root, doc_block(OPERATIONS.read_text(encoding="utf-8"), "commands backup"))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM units WHERE code = '99'")) == 1
    calls = log.read_text().splitlines()[mark:]
    assert calls[0].startswith("stop cccd-central-web") and calls[-1].startswith("start")
    for word in " ".join(calls).split():
        if word.startswith("cccd-"):
            name = re.sub(r"@[^.]*$", "@", word.strip("'"))
            assert (UNITS / f"{name}.service").exists() or (UNITS / name).exists(), word


def test_backup_and_restore_of_an_sqlite_collector(tmp_path: Path) -> None:
    """The same scripts on the one-machine database (SQLite's online backup and restore)."""
    db = tmp_path / "central.sqlite3"
    config = tmp_path / "central.toml"
    config.write_text(f'database_url = "sqlite:///{db}"\n', encoding="utf-8")
    engine = migrated_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO units (code, name, level) VALUES "
                              "('99', 'Đơn vị sao lưu', 'province')"))
        scripts = ROOT / "deploy" / "backup"
        done = subprocess.run([str(scripts / "backup.sh"), str(config), str(tmp_path / "b")],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        backups = list((tmp_path / "b").glob("central-*.sqlite3"))
        assert len(backups) == 1 and done.stdout.strip().endswith(str(backups[0]))
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM units WHERE code = '99'"))
        engine.dispose()
        done = subprocess.run([str(scripts / "restore.sh"), str(config), str(backups[0])],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT name FROM units WHERE code = '99'")) == \
                "Đơn vị sao lưu"
    finally:
        engine.dispose()
