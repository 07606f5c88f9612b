"""Receipts against a real mosquitto that crashes (docs/protocol.md §4.11).

The scenario of the broker crash: the collector's ingest worker is SIGKILLed (its persistent
session keeps queueing in the broker), the gate goes on accepting people, the broker PUBACKs
their events and holds them **in memory only** (the test broker never autosaves), then the
broker is SIGKILLed. Both are started again with their own command lines.

* With receipts (wire v2) the agent still holds every event the centre never receipted and
  sends it again: the database ends with every event exactly once.
* With receipts off (``receipt_timeout_s=0``, wire v1: a PUBACK settles) exactly the events
  the broker held in memory are lost. This is the failure the receipts exist for, measured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.db.models import Device, Event, IngestRejection
from edge_agent.events.model import Demographics, EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import Uplink
from tests.integration.broker_fixtures import (
    Broker,
    ingest_config,
    make_pki,
    running_broker,
    spawn_ingest,
)
from tests.integration.pg_fixtures import (  # noqa: F401
    VN,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)

ROOT = Path(__file__).resolve().parents[2]
GATE = "gate-ngo-mon-01"
BEFORE, DURING, AFTER = 40, 60, 20
"""Events delivered while all is well; accepted while ingest is down (PUBACKed, held only in the
broker's memory, then lost with it); accepted after both came back."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=(GATE,))
    with running_broker(tmp_path / "broker", pki) as b:
        yield b


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    assert predicate(), what


def _stored(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return list(s.scalars(select(Event.event_id).where(Event.device_id == GATE)).all())


def _subscribed_sessions(broker: Broker) -> int:
    text = broker.log_path.read_text(errors="replace") if broker.log_path.exists() else ""
    return text.count(" as collector ")


@pytest.mark.parametrize("receipts", [True, False], ids=["receipts", "puback-settles"])
def test_broker_sigkill_with_ingest_down_loses_nothing_with_receipts(
        broker: Broker, db_url: str, tmp_path: Path, receipts: bool) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    (tmp_path / "centre.key").write_bytes(centre.private_bytes_raw())
    (tmp_path / "data.key").write_bytes(os.urandom(32))
    gate = seed(engine, centre_key=centre)[GATE]
    config, log = ingest_config(tmp_path, broker, db_url), tmp_path / "ingest.log"
    outbox = Outbox(tmp_path / "outbox.db")
    uplink = Uplink(GATE, gate.site_id, broker.url, broker.pki.tls(GATE), outbox,
                    heartbeat_s=5, backoff=(0.1, 0.5), retry_no_subscriber_s=0.5,
                    receipt_timeout_s=30 if receipts else 0)
    accepted: list[str] = []

    def accept(n: int) -> None:
        for i in range(n):
            draft = EventDraft(EventKind.ENTRY if i % 2 else EventKind.EXIT, Method.CHIP,
                               EventAssurance.CHIP_ANCHORED, datetime.now(VN),
                               f"{len(accepted):032x}", 1, Demographics("25-44", "F", "079"))
            entry = outbox.commit(draft, payload_builder(
                draft, device_id=GATE, site_id=gate.site_id, signing_key=gate.key,
                centre_key=centre.public_key()))
            accepted.append(str(entry.event_id))
            uplink.wake()

    ingest = spawn_ingest(config, log)
    try:
        _wait(lambda: _subscribed_sessions(broker) >= 1, 30, broker.log_tail())
        uplink.start()
        accept(BEFORE)
        _wait(lambda: len(_stored(engine)) == BEFORE, 60, log.read_text()[-2000:])
        if receipts:
            assert uplink.wait_receipted(30), (outbox.counts(), uplink.stats())

        ingest.send_signal(signal.SIGKILL)  # ingest down: its session queues in the broker
        ingest.wait(10)
        accept(DURING)
        assert uplink.wait_idle(30), uplink.stats()  # every one PUBACKed by the broker
        assert outbox.unreceipted() == (DURING if receipts else 0)
        assert len(_stored(engine)) == BEFORE  # nothing of them reached the centre yet

        broker.stop(signal.SIGKILL)  # before any autosave: the queued messages are gone
        broker.start()
        ingest = spawn_ingest(config, log)
        accept(AFTER)

        expected = BEFORE + DURING + AFTER if receipts else BEFORE + AFTER
        _wait(lambda: len(_stored(engine)) >= expected, 90,
              f"{len(_stored(engine))} of {expected}; {uplink.stats()}\n{log.read_text()[-2000:]}")
        if receipts:
            assert uplink.wait_receipted(60), (outbox.counts(), uplink.stats())
            assert uplink.stats().resent >= DURING
        else:
            assert uplink.wait_idle(30)
        time.sleep(1.0)  # anything more would be a duplicate row or a late redelivery
        stored = _stored(engine)
        assert len(stored) == len(set(stored)) == expected
        if receipts:
            assert sorted(stored) == sorted(accepted)
        else:  # exactly the events the broker held in memory were lost
            lost = set(accepted) - set(stored)
            assert lost == set(accepted[BEFORE:BEFORE + DURING])
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(IngestRejection)) == 0
            device = s.get(Device, GATE)
            assert device is not None
            if receipts:
                assert (device.contiguous_seq, device.last_seq) == (expected, expected)
            else:
                assert (device.contiguous_seq, device.last_seq) == (BEFORE, len(accepted))
        if receipts:
            assert outbox.unreceipted() == 0 and outbox.oldest_unreceipted() is None
            assert outbox.get(1).receipt == "committed"  # type: ignore[union-attr]
    finally:
        uplink.stop()
        outbox.close()
        if ingest.poll() is None:
            ingest.send_signal(signal.SIGTERM)
            try:
                ingest.wait(10)
            except subprocess.TimeoutExpired:
                ingest.kill()
        engine.dispose()
