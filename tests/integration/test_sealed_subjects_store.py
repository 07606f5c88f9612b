"""Sealed subjects in the store, on SQLite AND PostgreSQL (docs/protocol.md §4.7.1): a person
who entered at a legacy agent's gate (clear subject) and leaves at a new agent's (sealed
subject) closes the same presence, before and after ``central rekey-subjects`` converted what an
older collector stored; unique people stay exact; the re-key is idempotent."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.counting import occupancy, orphan_exits
from central.db.models import Event, Presence, Stay
from central.ingest.store import BatchReport, IngestContext, process
from central.ingest.validate import Incoming
from central.rekey import rekey_subjects
from central.subjects import STORED, SubjectKeys
from edge_agent.events.subject import subject_for
from tests.integration.pg_fixtures import (  # noqa: F401
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)
from wire.signing import wire_bytes

GATE, GATE2, DESK = "gate-ngo-mon-01", "gate-ngo-mon-02", "ks-song-huong-le-tan"
PROVINCE = b"province subject key, 32 bytes!!"
CENTRE_SUBJECT = b"centre subject key only centre!!"
KEYS = SubjectKeys(CENTRE_SUBJECT, PROVINCE)
PEOPLE = {name: f"0793030{n:05d}" for n, name in enumerate(
    ("an", "binh", "chi", "dung", "em"), start=1)}


def send(engine: Engine, ctx: IngestContext, *items: tuple[str, dict[str, Any]]) -> BatchReport:
    now = datetime.now(UTC)
    batch = [Incoming(f"checkin/v1/{device}/events", wire_bytes(body), received_at=now)
             for device, body in items]
    with Session(engine) as session, session.begin():
        report = process(session, batch, ctx, now=now)
    assert [o.result for o in report.outcomes] == ["stored"] * len(items), [
        o.rejection for o in report.outcomes]
    return report


def legacy(name: str) -> str:
    """What an older agent sends: the province-keyed subject, in clear."""
    return subject_for(PEOPLE[name], PROVINCE)


def test_legacy_entry_and_new_exit_pair_across_the_upgrade(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    dev = seed(engine, centre_key=centre)
    t0 = datetime.now(UTC) - timedelta(hours=2)
    old = IngestContext(centre, bytes(range(32)), timedelta(minutes=10))  # not yet upgraded
    new = IngestContext(centre, bytes(range(32)), timedelta(minutes=10), subjects=KEYS)

    # Before the upgrade: legacy agents, an older collector (stores the clear subject).
    send(engine, old, *[(GATE, dev[GATE].event("entry", subject=legacy(n),
                                               occurred_at=t0 + timedelta(minutes=i)))
                        for i, n in enumerate(("an", "binh", "chi"))])
    stay = dev[DESK].event("stay.start", subject=legacy("dung"), occurred_at=t0)
    send(engine, old, (DESK, stay))

    # The collector is upgraded: the stored subjects are re-keyed, once.
    first = rekey_subjects(engine, KEYS, batch=2)  # several batches
    assert first.converted == {"events": 4, "presences": 3, "stays": 1}
    again = rekey_subjects(engine, KEYS)
    assert again.total == 0 and again.already == {"events": 4, "presences": 3, "stays": 1}

    # After: "an" leaves at a new agent's gate (sealed), "binh" at an old one (clear), "chi"
    # at a new one too; "em" enters at an old gate and leaves at a new one; "dung" checks out
    # at a new desk.
    later = t0 + timedelta(hours=1)
    send(engine, new,
         (GATE2, dev[GATE2].event("exit", ref=PEOPLE["an"], occurred_at=later)),
         (GATE2, dev[GATE2].event("exit", subject=legacy("binh"), occurred_at=later)),
         (GATE, dev[GATE].event("entry", subject=legacy("em"), occurred_at=later)))
    send(engine, new,
         (GATE2, dev[GATE2].event("exit", ref=PEOPLE["chi"],
                                  occurred_at=later + timedelta(minutes=1))),
         (GATE2, dev[GATE2].event("exit", ref=PEOPLE["em"],
                                  occurred_at=later + timedelta(minutes=2))),
         (DESK, dev[DESK].event("stay.end", ref=PEOPLE["dung"], details=stay["details"],
                                occurred_at=later)))

    with Session(engine) as s:
        assert occupancy(s, "hue-dai-noi").occupancy == 0
        assert orphan_exits(s, ["hue-dai-noi"], t0 - timedelta(days=1),
                            later + timedelta(days=1)) == 0
        assert s.scalar(select(func.count()).select_from(Presence)
                        .where(Presence.exited_at.is_(None))) == 0
        assert s.scalar(select(func.count()).select_from(Presence)) == 4  # one per visitor
        subjects = set(s.scalars(select(Event.subject).where(Event.subject.is_not(None))))
        assert subjects == {KEYS.for_id_number(PEOPLE[n]) for n in PEOPLE}  # 5 unique people
        assert all(x is not None and STORED.fullmatch(x) for x in subjects)
        row = s.get(Stay, stay["details"]["stay_id"])
        assert row is not None and row.ended_at is not None
        assert row.subject == KEYS.for_id_number(PEOPLE["dung"])
    engine.dispose()


def test_rekey_subjects_command(tmp_path: Path) -> None:
    """``central rekey-subjects``: refuses without the centre key, converts, and a second run
    converts nothing (the command docs/operations.md §4 gives)."""
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    engine = migrated_engine(url)
    centre = X25519PrivateKey.generate()
    dev = seed(engine, centre_key=centre)
    send(engine, IngestContext(centre, bytes(range(32)), timedelta(minutes=10)),
         (GATE, dev[GATE].event("entry", subject=legacy("an"))))
    (tmp_path / "subject.key").write_bytes(PROVINCE)
    (tmp_path / "centre-subject.key").write_bytes(CENTRE_SUBJECT)
    config = tmp_path / "central.toml"
    config.write_text(f'database_url = "{url}"\n', encoding="utf-8")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).with_name("central")),
                               "rekey-subjects", "--config", str(config)], capture_output=True, text=True,
                              timeout=120, check=False)

    refused = run()
    assert refused.returncode == 2 and "keys.centre_subject_key" in refused.stderr
    config.write_text(f'database_url = "{url}"\n[keys]\nsubject_key = "subject.key"\n'
                      'centre_subject_key = "centre-subject.key"\n', encoding="utf-8")
    done = run()
    assert done.returncode == 0, done.stderr
    assert "events 1 converted" in done.stdout and "presences 1 converted" in done.stdout
    assert "events 0 converted (1 already keyed)" in run().stdout
    with Session(engine) as s:
        assert s.scalar(select(Event.subject)) == KEYS.for_id_number(PEOPLE["an"])
    engine.dispose()
