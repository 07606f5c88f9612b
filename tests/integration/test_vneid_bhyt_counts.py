"""The VNeID identity token against the simulated identity platform (up, down, expired,
replayed) and the BHYT card QR at a hospital desk, through the real flow, the real wire
encoding and the collector's ingest into its insured-visit ratio (docs/web.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy.orm import Session

from central.ingest.store import IngestContext, process
from central.ingest.validate import Incoming
from central.subjects import SubjectKeys
from central.web.periods import resolve
from central.web.reports import build_report
from central.web.security import Scope
from edge_agent.cccd import Sex
from edge_agent.cccd.bhyt import format_bhyt
from edge_agent.cccd.qr import format_card_qr
from edge_agent.events.ids import Uuid7Generator
from edge_agent.events.model import EventDraft, build_event
from edge_agent.flows import FlowSettings, HospitalFlow, QrPresentation
from edge_agent.identity import CircuitBreaker, HttpIdentityVerifier
from edge_agent.insurance import HttpInsuranceAdapter
from firmware_sim.identity_platform import IdentityPlatform
from firmware_sim.insurance_gateway import InsuranceGateway
from tests.integration.pg_fixtures import (  # noqa: F401
    VN,
    FakeDevice,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)
from wire.signing import wire_bytes

DESK = "desk-bv-hue-01"
SITE = "bv-hue"
EVERYTHING = Scope(True, frozenset(), frozenset())


class Wire:
    """The device's outbox reduced to its wire output: signed events, in seq order."""

    def __init__(self, device: FakeDevice) -> None:
        self.device = device
        self.events: list[dict[str, Any]] = []
        self._ids = Uuid7Generator()

    def __call__(self, drafts: Sequence[EventDraft]) -> None:
        for draft in drafts:
            self.events.append(build_event(
                draft, device_id=self.device.device_id, site_id=self.device.site_id,
                seq=len(self.events) + 1, event_id=self._ids(), signing_key=self.device.key,
                centre_key=self.device.centre_public))


def test_vneid_and_bhyt_visits_reach_the_insured_visit_ratio(db_url: str) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    devices = seed(engine, sites={SITE: "hospital"}, devices={DESK: SITE}, centre_key=centre)
    wire = Wire(devices[DESK])
    now = datetime.now(VN).replace(microsecond=0)
    today = now.date()
    bhyt = format_bhyt("DN4797930012345", "Nguyễn Thị Mai", date(2003, 5, 15), Sex.FEMALE,
                       "1 Đường C", "46 - 001", today - timedelta(days=30),
                       today + timedelta(days=300), today - timedelta(days=40))
    binh_qr = format_card_qr("001058424242", "Trần Văn Bình", date(1958, 2, 1), Sex.MALE,
                             "12 Lê Lợi", date(2021, 3, 1))
    platform_time = [1000.0]
    with IdentityPlatform(hang_s=2.0, clock=lambda: platform_time[0]) as platform, \
            InsuranceGateway(today=date(2026, 1, 1)) as gateway:
        verifier = HttpIdentityVerifier(platform.url, terminal_id=DESK, timeout_s=0.3,
                                        retries=1, deadline_s=0.9,
                                        breaker=CircuitBreaker(failures=5, reset_s=60))
        flow = HospitalFlow(FlowSettings(site_id=SITE, subject_key=b"k" * 32,
                                         dedupe_window_s=0),
                            clock=lambda: now, commit=wire,
                            insurance=HttpInsuranceAdapter(gateway.url), vneid=verifier)

        token = platform.issue("079303001234")
        up = flow.visit(QrPresentation(token))
        assert up.accepted and up.insurance == "valid" and up.masked_id == "********1234"
        # The same token shown at another terminal (a photo of the screen): a replay.
        elsewhere = HttpIdentityVerifier(platform.url, terminal_id="desk-bv-hue-02")
        other = HospitalFlow(FlowSettings(site_id=SITE, subject_key=b"k" * 32),
                             clock=lambda: now, commit=wire, vneid=elsewhere)
        replayed = other.visit(QrPresentation(token))
        assert replayed.reason == "vneid-replayed"
        expired = platform.issue("079303001234", ttl_s=300)
        platform_time[0] += 300  # the manual's 5 minutes have passed
        assert flow.visit(QrPresentation(expired)).reason == "vneid-expired"
        platform.go_down("hang")
        down = flow.visit(QrPresentation(platform.issue("001058424242")))
        assert down.reason == "vneid-unavailable"
        assert "mã QR thẻ CCCD trong ứng dụng VNeID" in down.message_vi
        platform.come_up()

        by_card = flow.visit(QrPresentation(binh_qr))
        by_bhyt = flow.visit(QrPresentation(bhyt.encode()))
        assert by_card.insurance == "valid" and by_bhyt.insurance == "valid"

    kinds = [(e["kind"], e["method"], e["reason"]) for e in wire.events]
    assert kinds == [("visit", "vneid-qr", None), ("rejected", "vneid-qr", "vneid-replayed"),
                     ("rejected", "vneid-qr", "vneid-expired"),
                     ("rejected", "vneid-qr", "vneid-unavailable"),
                     ("visit", "card-qr", None), ("visit", "bhyt-qr", None)]
    assert wire.events[0]["details"]["vneid_level"] == 2

    # The centre opens the sealed subjects (docs/protocol.md §4.7.1).
    ctx = IngestContext(centre, None, timedelta(minutes=10),
                        subjects=SubjectKeys(b"c" * 32, b"p" * 32))
    batch = [Incoming(f"checkin/v1/{DESK}/events", wire_bytes(e), received_at=datetime.now(UTC))
             for e in wire.events]
    with Session(engine) as session, session.begin():
        report = process(session, batch, ctx, now=datetime.now(UTC))
    assert [o.rejection for o in report.outcomes] == [None] * len(wire.events)

    period = resolve("custom", first=today.isoformat(), last=today.isoformat())
    with Session(engine) as session:
        result = build_report(session, EVERYTHING, period, None, metrics=["hospital_cccd"])
    total = next(r for r in result.tables[0].rows if r.is_total)
    # Three insured visits (VNeID, card QR, BHYT card); two of them via CCCD/VNeID.
    assert (total.total, total.via) == (3, 2)
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
