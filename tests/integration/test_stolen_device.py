"""The stolen-device attacker (docs/privacy.md §3, "Threat model"): with everything one device
holds (its configuration, signing key, local subject keys, the centre's public key and its
outbox), a copy of every message on the wire and a copy of the centre's database, try to turn
subjects back into ID numbers the way a real attacker would: for each record, the ID numbers
its clear demographics narrow to (birth province = the first three digits; sex and birth year
from the age band give the fourth to sixth), each hashed under every key the device holds, in
every construction the system uses.

The traffic is real: two running agents (an entry and an exit gate, built by ``create_agent``)
read card QRs of synthetic people from pseudo-terminal scanners and publish through mosquitto;
the recorded messages go through the collector's ingest into a migrated database. The same
attack run on the same traffic as an older agent sent it (the province subject key on the
device, the subject in clear) recovers every ID number, and run with the centre's keys it
recovers every stored subject, so the attack is known to work; on what one current device
holds it recovers none. To keep the search fast the synthetic ID numbers have serials below
:data:`SERIALS` and the attacker is told so (a real attacker searches 10^6 serials per birth
year: the same code, a million times longer for each, docs/privacy.md §3).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.counting import occupancy
from central.db.models import Event, Presence, Site, SiteKind, Unit, UnitLevel
from central.ingest.store import IngestContext, process
from central.ingest.validate import Incoming
from central.registry import enrol_device
from central.subjects import SubjectKeys
from drivers.outputs import SimulatedOutputs
from edge_agent.agent import Agent, create_agent
from edge_agent.config import load_config
from edge_agent.events.subject import subject_for
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    free_port,
    make_pki,
    running_broker,
)
from tests.integration.pg_fixtures import migrated_engine
from wire.sealing import open_subject_box
from wire.signing import sign_event, wire_bytes

GATES = {"gate-vao": "entry", "gate-ra": "exit"}
SITE = "hue-dai-noi"
PEOPLE = 8
SERIALS = 400
"""Synthetic ID numbers end in a serial below this; the attacker searches exactly these."""
PROVINCE_KEY = b"the province subject key (old)!!"
CENTRE_SUBJECT_KEY = b"the centre subject key: centre!!"
SUBJECT_LIKE = re.compile(r"^(?:[0-9a-f]{32}|s[0-9a-f]{31}|g[0-9]+\.[0-9a-f]{32})$")
BANDS = {"0-5": (0, 5), "6-14": (6, 14), "15-24": (15, 24), "25-44": (25, 44),
         "45-59": (45, 59), "60+": (60, 100)}

# The constructions of the system (edge_agent/events/subject.py, local_subject.py,
# central/subjects.py), written out as an attacker reading the source would.
DOMAIN = b"cccd-checkin/subject/v1\x00"
LOCAL_DOMAIN = b"cccd-checkin/local-subject/v1\x00"
CENTRE_DOMAIN = b"cccd-checkin/centre-subject/v1\x00"


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def people(seed: int = 14) -> list[tuple[str, str]]:
    """(ID number, card QR) of synthetic visitors, serials below :data:`SERIALS`."""
    rng = random.Random(seed)
    out = []
    for n in range(PEOPLE):
        year = rng.randrange(1950, 2008)
        sex_digit = rng.choice((0, 1)) + (2 if year >= 2000 else 0)
        id_number = f"0{rng.choice((46, 48, 79)):02d}{sex_digit}{year % 100:02d}" \
                    f"{rng.randrange(SERIALS):06d}"
        sex = "Nam" if sex_digit % 2 == 0 else "Nữ"
        name = f"Khách Thử {chr(65 + n)}"
        qr = f"{id_number}||{name}|{rng.randrange(1, 28):02d}0{rng.randrange(1, 9)}{year}" \
             f"|{sex}|Số {n} Đường Lê Lợi, Huế|01012022"
        out.append((id_number, qr))
    assert len({p[0] for p in out}) == PEOPLE
    return out


# -- the attack ---------------------------------------------------------------------------------

def candidates(birth_province: str, sex: str, band: str, on: date) -> Iterator[str]:
    """Every ID number the clear demographics leave possible (docs/cccd.md §1: province of
    birth registration, then the century-and-sex digit, then the year of birth), serials below
    :data:`SERIALS`."""
    low, high = BANDS[band]
    for year in range(on.year - high - 1, on.year - low + 1):
        digit = (0 if year < 2000 else 2) + (0 if sex == "M" else 1)
        for serial in range(SERIALS):
            yield f"{birth_province}{digit}{year % 100:02d}{serial:06d}"


def attack(secrets: Iterable[bytes], records: Iterable[tuple[str, str, str, str, date]]
           ) -> dict[str, str]:
    """Subject → ID number for every record ``(subject, birth_province, sex, age_band, on)``
    that some secret reverses, under every construction (province-style, device-local with its
    generation, and the centre's layer over a province-style value under any secret)."""
    keys = sorted(set(secrets))
    groups: dict[tuple[str, str, str, date], set[str]] = defaultdict(set)
    for subject, province, sex, band, on in records:
        if subject and SUBJECT_LIKE.fullmatch(subject) and province and sex and band:
            groups[(province, sex, band, on)].add(subject)
    bases = [(hmac.new(k, DOMAIN, hashlib.sha256), hmac.new(k, LOCAL_DOMAIN, hashlib.sha256))
             for k in keys]
    centre_bases = [hmac.new(k, CENTRE_DOMAIN, hashlib.sha256) for k in keys]
    found: dict[str, str] = {}
    for (province, sex, band, on), targets in groups.items():
        generations = {t.split(".")[0] for t in targets if t.startswith("g")}
        layered = any(t.startswith("s") for t in targets)
        for id_number in candidates(province, sex, band, on):
            ref = id_number.encode()
            for province_base, local_base in bases:
                mac = province_base.copy()
                mac.update(ref)
                raw = mac.digest()[:16]
                guesses = [raw.hex()]
                if generations:
                    local = local_base.copy()
                    local.update(ref)
                    guesses += [f"{g}.{local.digest()[:16].hex()}" for g in generations]
                if layered:
                    for centre_base in centre_bases:
                        outer = centre_base.copy()
                        outer.update(raw)
                        guesses.append("s" + outer.hexdigest()[:31])
                for guess in guesses:
                    if guess in targets:
                        found[guess] = id_number
    return found


def device_secrets(folder: Path) -> list[bytes]:
    """Every secret in a device's folder, as bytes an attacker would try as an HMAC key: each
    key-sized file's raw content (16 to 256 bytes: a raw key, a PEM key), each key inside the
    local keyring, the signing key's raw bytes."""
    out: list[bytes] = []
    for path in folder.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            if 16 <= len(raw) <= 256:
                out.append(raw)
            if path.name.endswith(".subject-keys"):
                out += [bytes.fromhex(k["key"]) for k in json.loads(raw)["keys"]]
            if path.name == "device.pem":
                key = serialization.load_pem_private_key(raw, password=None)
                assert isinstance(key, Ed25519PrivateKey)
                out.append(key.private_bytes_raw())
    return out


def event_records(events: Iterable[dict[str, Any]]) -> list[tuple[str, str, str, str, date]]:
    out = []
    for e in events:
        demo = e.get("demographics") or {}
        out.append((e.get("subject") or "", demo.get("birth_province") or "",
                    demo.get("sex") or "", demo.get("age_band") or "",
                    datetime.fromisoformat(e["occurred_at"]).date()))
    return out


def database_records(path: Path) -> list[tuple[str, str, str, str, date]]:
    """Read straight from the SQLite file, as a copied database would be."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT subject, birth_province, sex, age_band, occurred_at "
                          "FROM events").fetchall()
    return [(r[0] or "", r[1] or "", r[2] or "", r[3] or "",
             datetime.fromisoformat(str(r[4])).date()) for r in rows]


def local_register_records(folder: Path) -> list[str]:
    """Every subject-like string anywhere in the device's SQLite files (outbox, registers)."""
    found: list[str] = []
    for path in folder.glob("*.sqlite3*"):
        found += [m.decode() for m in re.findall(rb"g[0-9]+\.[0-9a-f]{32}|[0-9a-f]{32}",
                                                path.read_bytes())]
    return found


# -- the traffic --------------------------------------------------------------------------------

def wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def gate_config(folder: Path, broker: Broker, device: str, direction: str, scanner: str,
                centre: X25519PrivateKey) -> Path:
    folder.mkdir()
    write_device_keys(folder)
    (folder / "keys" / "centre.pub.pem").write_bytes(centre.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ca, cert, key = broker.pki.tls(device)
    config = folder / "agent.toml"
    config.write_text(f"""
[device]
id = "{device}"
site_id = "{SITE}"
site_kind = "heritage-gate"
direction = "{direction}"

{KEYS_TOML}
[scanners]
uris = ["{scanner}"]

[broker]
url = "{broker.url}"
ca = "{ca}"
cert = "{cert}"
key = "{key}"

[outbox]
path = "{folder / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
""", encoding="utf-8")
    return config


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=tuple(GATES))
    with running_broker(tmp_path / "broker", pki) as running:
        yield running


def test_a_stolen_device_with_the_wire_and_the_database_recovers_no_id_number(
        tmp_path: Path, broker: Broker) -> None:
    centre = X25519PrivateKey.generate()
    visitors = people()
    ids = [v[0] for v in visitors]
    recorder = Recorder(broker).start()
    agents: dict[str, Agent] = {}
    scanners: dict[str, PtySerialScanner] = {}
    try:
        for device, direction in GATES.items():
            scanners[device] = PtySerialScanner(terminator=b"\r")
            config = load_config(gate_config(
                tmp_path / device, broker, device, direction,
                f"serial:{scanners[device].path}?terminator=cr", centre))
            agents[device] = create_agent(config, outputs=SimulatedOutputs())
            agents[device].start()
        for agent in agents.values():
            wait(lambda agent=agent: bool(agent.scanners))
        for device in GATES:  # everyone enters, then everyone leaves
            for n, (_id, qr) in enumerate(visitors, start=1):
                scanners[device].scan(qr.encode("utf-8"))
                wait(lambda device=device, n=n: agents[device].outbox.last_seq() >= n)

        def delivered(messages: list[Any]) -> bool:
            ids_seen = {json.loads(m.payload)["event_id"] for m in messages
                        if m.topic.endswith("/events")}
            return len(ids_seen) == 2 * PEOPLE

        assert recorder.wait_for(delivered, timeout=60), "events not published"
    finally:
        for agent in agents.values():
            agent.stop()
        for scanner in scanners.values():
            scanner.close()
        recorder.stop()
    wire = {json.loads(m.payload)["event_id"]: m.payload for m in recorder.snapshot()
            if m.topic.endswith("/events")}
    events = [json.loads(p) for p in wire.values()]
    assert len(events) == 2 * PEOPLE and all(e["subject"] is None for e in events)
    assert {open_subject_box(e["subject_sealed"], centre, e["event_id"], e["device_id"])
            for e in events} == set(ids)  # the centre, and only it, opens them

    # The centre: the recorded messages through the collector's ingest.
    db_path = tmp_path / "central.sqlite3"
    engine = migrated_engine(f"sqlite:///{db_path}")
    keys = SubjectKeys(CENTRE_SUBJECT_KEY, PROVINCE_KEY)
    signing: dict[str, Ed25519PrivateKey] = {}
    with Session(engine) as s, s.begin():
        unit = Unit(code="46", name="Thừa Thiên Huế", level=UnitLevel.PROVINCE)
        s.add(unit)
        s.flush()
        s.add(Site(id=SITE, name="Hoàng thành Huế", kind=SiteKind.HERITAGE, unit_id=unit.id))
        s.flush()
        for device in GATES:
            key = serialization.load_pem_private_key(
                (tmp_path / device / "keys" / "device.pem").read_bytes(), password=None)
            assert isinstance(key, Ed25519PrivateKey)
            signing[device] = key
            enrol_device(s, device, SITE, key.public_key(), now=datetime.now(UTC))
    ctx = IngestContext(centre, bytes(range(32)), timedelta(minutes=10), subjects=keys)
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        report = process(s, [Incoming(f"checkin/v1/{e['device_id']}/events", wire_bytes(e),
                                      received_at=now) for e in events], ctx, now=now)
    assert [o.result for o in report.outcomes] == ["stored"] * len(events)
    with Session(engine) as s:
        assert occupancy(s, SITE).occupancy == 0  # every entry paired with its exit
        assert s.scalar(select(func.count()).select_from(Presence)
                        .where(Presence.exited_at.is_not(None))) == PEOPLE
        assert s.scalar(select(func.count(func.distinct(Event.subject)))) == PEOPLE
    engine.dispose()

    # What the attacker holds: one device (the entry gate, stopped: its files as they are),
    # the wire, the database file.
    stolen = tmp_path / "gate-vao"
    secrets = device_secrets(stolen)
    assert any(p.name.endswith(".subject-keys") for p in stolen.iterdir())
    with sqlite3.connect(stolen / "outbox.sqlite3") as db:
        outbox = [json.loads(r[0]) for r in db.execute("SELECT payload FROM events")]
    assert len(outbox) == PEOPLE
    records = event_records(events) + database_records(db_path) + event_records(outbox)
    records += [(s, "", "", "", now.date()) for s in local_register_records(stolen)]
    assert attack(secrets, records) == {}

    # Nothing greps either: no ID number in the wire, the device's files or the database.
    blobs = [*wire.values(), *(p.read_bytes() for p in stolen.rglob("*") if p.is_file()),
             *(p.read_bytes() for p in tmp_path.glob("central.sqlite3*"))]
    for id_number in ids:
        assert not any(id_number.encode() in blob for blob in blobs), id_number[-4:]

    # Controls: the attack works. With the centre's keys it reverses every stored subject ...
    stored = database_records(db_path)
    assert set(attack([CENTRE_SUBJECT_KEY, PROVINCE_KEY], stored).values()) == set(ids)
    # ... and on the same traffic as an older agent sent it (the province key on the device,
    # the subject in clear, stored as sent by an older collector) it reverses every one.
    legacy = []
    for e in events:
        id_number = open_subject_box(e["subject_sealed"], centre, e["event_id"],
                                     e["device_id"])
        body = {k: v for k, v in e.items() if k not in ("sig", "subject_sealed")}
        body["subject"] = subject_for(id_number, PROVINCE_KEY)
        legacy.append(sign_event(body, signing[e["device_id"]]))
    recovered = attack([*secrets, PROVINCE_KEY], event_records(legacy))
    assert set(recovered.values()) == set(ids)
