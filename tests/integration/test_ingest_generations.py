"""Refused seqs settle a seq gap; a retired device drains its backlog; a replacement enrolled
under the same id numbers its events from 1 again (SQLite AND PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select

from central.broker_sync import registry_devices, revoked_keys
from central.db.models import Alarm, Device, DeviceGeneration, Event, RefusedSeq
from central.ingest.receipts import ReceiptPublisher
from central.ingest.store import check_seq_gaps
from central.registry import RegistryError, raw_public_key, reenrol_device, revoke_device
from tests.integration.pg_fixtures import (  # noqa: F401
    VN,
    FakeDevice,
    db_url,
    postgres_server,
)
from tests.integration.test_ingest_store import GATE, Harness, h, results  # noqa: F401
from wire.signing import sign_event

T = f"checkin/v1/{GATE}/events"


def test_a_gap_left_by_the_devices_own_refused_events_clears(h: Harness) -> None:  # noqa: F811
    gate = h.devices[GATE]
    t0 = datetime.now(UTC)
    e1 = gate.event()
    skewed = gate.event(occurred_at=datetime.now(VN) + timedelta(hours=2))  # seq 2
    wrong_site = gate.event(site_id="ks-song-huong")                        # seq 3
    unknown_kind = sign_event(dict({k: v for k, v in gate.event().items() if k != "sig"},
                                   kind="dance"), gate.key)                  # seq 4, signed
    e5 = gate.event()
    assert results(h.send((T, e1), (T, e5), now=t0)) == ["stored", "stored"]
    with h.session() as s, s.begin():
        assert check_seq_gaps(s, t0 + timedelta(seconds=61), h.ctx.seq_gap_grace) == [GATE]
    assert results(h.send((T, skewed), (T, wrong_site), (T, unknown_kind),
                          now=t0 + timedelta(seconds=70))) == [
        "clock-skew", "site-mismatch", "schema"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.contiguous_seq, dev.gap_since) == (5, None)
        alarm = s.scalars(select(Alarm).where(Alarm.kind == "seq-gap")).one()
        assert alarm.cleared_at is not None
        assert sorted(s.scalars(select(RefusedSeq.seq))) == [2, 3, 4]
    # The receipt may not settle what could still pass: seq 2 (clock skew) and 3 (wrong site)
    # close the gap alarm, but the device keeps and resends them, so the receipt's prefix
    # stops at 1 (docs/protocol.md §4.11); seq 4 (schema) is final.
    publisher = ReceiptPublisher(h.session, client=None)  # type: ignore[arg-type]
    assert publisher.prefixes([GATE]) == {GATE: 1}
    with h.session() as s, s.begin():
        s.execute(delete(RefusedSeq).where(RefusedSeq.seq.in_([2, 3])))
    assert publisher.prefixes([GATE]) == {GATE: 5}


def test_a_forged_or_unsigned_refusal_does_not_hide_a_lost_event(h: Harness) -> None:  # noqa: F811
    gate = h.devices[GATE]
    t0 = datetime.now(UTC)
    e1, e2, e3 = (gate.event() for _ in range(3))
    forged = dict(e2, kind="dance")  # seq 2 claimed, but the signature no longer verifies
    other = FakeDevice(GATE, "hue-dai-noi", Ed25519PrivateKey.generate(), gate.centre_public)
    skewed_forgery = other.event(seq=2, occurred_at=datetime.now(VN) + timedelta(hours=2))
    assert results(h.send((T, e1), (T, e3), (T, forged), (T, skewed_forgery), now=t0)) == [
        "stored", "stored", "schema", "bad-signature"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.contiguous_seq, dev.last_seq) == (1, 3)
        assert s.scalar(select(func.count()).select_from(RefusedSeq)) == 0


def test_a_retired_device_drains_its_backlog_then_is_refused(h: Harness) -> None:  # noqa: F811
    gate = h.devices[GATE]
    before = gate.event(occurred_at=datetime.now(VN) - timedelta(minutes=5))
    after = gate.event()
    revoked_at = datetime.now(UTC) - timedelta(minutes=1)
    with h.session() as s, s.begin():
        revoke_device(s, GATE, drain=timedelta(days=7), now=revoked_at)
    with h.session() as s:
        assert GATE in dict(registry_devices(s))  # still granted its topics while draining
        assert revoked_keys(s, datetime.now(UTC)) == []
    assert results(h.send((T, before), (T, after))) == ["stored", "revoked-device"]
    late = gate.event(occurred_at=datetime.now(VN) - timedelta(minutes=3))
    assert results(h.send((T, late), now=revoked_at + timedelta(days=8))) == ["revoked-device"]
    with h.session() as s:
        assert GATE not in dict(registry_devices(s, revoked_at + timedelta(days=8)))
        assert len(revoked_keys(s, revoked_at + timedelta(days=8))) == 1
    # Revoked without a drain period (a stolen device): nothing more is accepted.
    with h.session() as s, s.begin():
        revoke_device(s, GATE, now=revoked_at)
    old = gate.event(occurred_at=datetime.now(VN) - timedelta(minutes=10))
    assert results(h.send((T, old))) == ["revoked-device"]


def test_a_replacement_enrolled_under_the_same_id_restarts_its_seq(h: Harness) -> None:  # noqa: F811
    gate = h.devices[GATE]
    old = [gate.event() for _ in range(4)]
    t0 = datetime.now(UTC)
    assert results(h.send(*((T, e) for e in old[:3]), now=t0)) == ["stored"] * 3
    with h.session() as s, s.begin():  # the old device's seq 4 never arrives
        assert check_seq_gaps(s, t0 + timedelta(seconds=61), h.ctx.seq_gap_grace) == []
    assert results(h.send((T, gate.event()), now=t0)) == ["stored"]  # seq 5: a gap at 4
    with h.session() as s, s.begin():
        assert check_seq_gaps(s, t0 + timedelta(seconds=61), h.ctx.seq_gap_grace) == [GATE]
    new_key = Ed25519PrivateKey.generate()
    with h.session() as s, s.begin(), pytest.raises(RegistryError, match="revoke it first"):
        reenrol_device(s, GATE, new_key.public_key())
    with h.session() as s, s.begin():
        revoke_device(s, GATE, drain=timedelta(days=7))
    with h.session() as s, s.begin():
        with pytest.raises(RegistryError, match="draining"):
            reenrol_device(s, GATE, new_key.public_key())
        revoke_device(s, GATE)  # the backlog is in: end the drain period
        dev = reenrol_device(s, GATE, new_key.public_key())
        assert (dev.generation, dev.seq_base, dev.last_seq) == (2, 5, 0)
    replacement = FakeDevice(GATE, "hue-dai-noi", new_key, gate.centre_public)
    fresh = [replacement.event() for _ in range(2)]
    assert [e["seq"] for e in fresh] == [1, 2]
    stale = gate.event()  # the old key is refused
    assert results(h.send((T, fresh[0]), (T, fresh[1]), (T, stale))) == [
        "stored", "stored", "bad-signature"]
    assert results(h.send((T, fresh[0]))) == ["duplicate"]
    assert results(h.send((T, replacement.event(seq=2)))) == ["replay"]
    with h.session() as s:
        assert sorted(s.scalars(select(Event.seq).where(Event.device_id == GATE))) == [
            1, 2, 3, 5, 6, 7]
        assert s.scalars(select(Alarm).where(Alarm.kind == "seq-gap")).one().cleared_at
        current = s.get(Device, GATE)
        assert current is not None and (
            current.contiguous_seq, current.last_seq, current.revoked) == (2, 2, False)
        generation = s.scalars(select(DeviceGeneration)).one()
        assert (generation.generation, generation.last_seq) == (1, 5)
        assert generation.signing_public_key == raw_public_key(gate.key.public_key())
        # the old certificate stays on the CRL; the device itself is granted again
        assert revoked_keys(s, datetime.now(UTC)) == [generation.signing_public_key]
        assert GATE in dict(registry_devices(s))


def test_refused_seqs_go_with_the_events_retention(h: Harness) -> None:  # noqa: F811
    from central.purge import purge
    from central.settings import Retention

    gate = h.devices[GATE]
    t0 = datetime.now(UTC)
    skewed = gate.event(occurred_at=datetime.now(VN) + timedelta(hours=2))
    assert results(h.send((T, skewed), now=t0)) == ["clock-skew"]
    with h.session() as s, s.begin():
        purge(s, t0 + timedelta(days=399), Retention())
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(RefusedSeq)) == 1
    with h.session() as s, s.begin():
        purge(s, t0 + timedelta(days=401), Retention())
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(RefusedSeq)) == 0


def test_a_batch_of_only_a_signed_schema_refusal_settles_its_seq(h: Harness) -> None:  # noqa: F811
    gate = h.devices[GATE]
    e1 = gate.event()
    unknown_kind = sign_event(dict({k: v for k, v in gate.event().items() if k != "sig"},
                                   kind="dance"), gate.key)
    e3 = gate.event()
    assert results(h.send((T, e1), (T, e3))) == ["stored", "stored"]
    assert results(h.send((T, unknown_kind))) == ["schema"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.contiguous_seq, dev.gap_since) == (3, None)

