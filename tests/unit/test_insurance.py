"""The BHYT look-up: the HTTP adapter against the simulated gateway (loopback, in-process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest

from edge_agent.insurance import (
    HttpInsuranceAdapter,
    InsuranceError,
    InsuranceState,
    make_adapter,
)
from firmware_sim.insurance_gateway import InsuranceGateway, synthesize

TODAY = date(2025, 4, 30)


@pytest.fixture
def gateway() -> Iterator[InsuranceGateway]:
    with InsuranceGateway(today=TODAY) as gw:
        yield gw


def test_valid_record(gateway: InsuranceGateway) -> None:
    status = HttpInsuranceAdapter(gateway.url).lookup("079303001234", "Nguyễn Thị Mai",
                                                      date(2003, 5, 15))
    assert status.state is InsuranceState.VALID and status.detail == "insured"
    assert status.card_number == "SV4797930012345" and status.valid_until == date(2026, 12, 31)


def test_expired_mismatch_and_not_found_are_invalid(gateway: InsuranceGateway) -> None:
    adapter = HttpInsuranceAdapter(gateway.url + "/")
    expired = adapter.lookup("048190000007", "Lê Ngọc Lan", date(1990, 1, 1))
    assert (expired.state, expired.detail) == (InsuranceState.INVALID, "expired")
    mismatch = adapter.lookup("079303001234", "Nguyễn Thị Hoa", date(2003, 5, 15))
    assert (mismatch.state, mismatch.detail) == (InsuranceState.INVALID, "mismatch")
    missing = adapter.lookup("001090000001", "Phạm Văn An", date(1990, 1, 1))
    assert (missing.state, missing.detail) == (InsuranceState.INVALID, "not-found")


def test_case_and_spacing_of_the_name_do_not_matter(gateway: InsuranceGateway) -> None:
    status = HttpInsuranceAdapter(gateway.url).lookup("079303001234", "nguyễn  thị MAI",
                                                      date(2003, 5, 15))
    assert status.state is InsuranceState.VALID


def test_timeout_gives_unknown_quickly() -> None:
    with InsuranceGateway(delay_s=1.5, today=TODAY) as slow:
        started = time.monotonic()
        status = HttpInsuranceAdapter(slow.url, timeout_s=0.2).lookup(
            "079303001234", "Nguyễn Thị Mai", date(2003, 5, 15))
        elapsed = time.monotonic() - started
    assert status.state is InsuranceState.UNKNOWN and status.detail == "timeout"
    assert elapsed < 1.0


def test_http_error_and_refused_connection_give_unknown() -> None:
    with InsuranceGateway(fail_status=503, today=TODAY) as failing:
        status = HttpInsuranceAdapter(failing.url).lookup("079303001234", "Nguyễn Thị Mai",
                                                          date(2003, 5, 15))
        assert (status.state, status.detail) == (InsuranceState.UNKNOWN, "http-503")
        port = failing.port
    # the gateway is gone: connection refused
    status = HttpInsuranceAdapter(f"http://127.0.0.1:{port}", timeout_s=0.5).lookup(
        "079303001234", "Nguyễn Thị Mai", date(2003, 5, 15))
    assert status.state is InsuranceState.UNKNOWN and status.detail in ("unreachable",
                                                                        "timeout")


def test_bad_requests_are_answered_400(gateway: InsuranceGateway) -> None:
    code, body = gateway.answer({"id_number": "12", "full_name": "A", "date_of_birth": "x"})
    assert code == 400 and "12 digits" in body["error"]
    code, _ = gateway.answer({"id_number": "079303001234", "full_name": "A",
                              "date_of_birth": "15/05/2003"})
    assert code == 400
    code, _ = gateway.answer([1, 2])
    assert code == 400
    # the adapter turns a 400 into unknown, never an exception
    status = HttpInsuranceAdapter(gateway.url).lookup("07930300123X", "A", date(2000, 1, 1))
    assert status.state is InsuranceState.UNKNOWN and status.detail == "http-400"


def test_synthesized_records_are_stable() -> None:
    a = synthesize("001090000001", "Phạm Văn An", date(1990, 1, 1), TODAY)
    assert a is not None and a.valid_until > TODAY and len(a.card_number) == 15
    assert a == synthesize("001090000001", "Phạm Văn An", date(1990, 1, 1), TODAY)
    expired = synthesize("001090000008", "Phạm Văn An", date(1990, 1, 1), TODAY)
    assert expired is not None and expired.valid_until < TODAY
    assert synthesize("001090000009", "Phạm Văn An", date(1990, 1, 1), TODAY) is None
    with InsuranceGateway(synthesize=True, today=TODAY) as gw:
        status = HttpInsuranceAdapter(gw.url).lookup("001090000001", "Phạm Văn An",
                                                     date(1990, 1, 1))
        assert status.state is InsuranceState.VALID and status.card_number == a.card_number


def test_gateway_listens_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        InsuranceGateway(host="0.0.0.0")


def test_adapter_configuration_errors_and_factory() -> None:
    with pytest.raises(InsuranceError):
        HttpInsuranceAdapter("ftp://gateway")
    with pytest.raises(InsuranceError):
        HttpInsuranceAdapter("https://gateway", timeout_s=0)
    assert make_adapter("none", None) is None
    adapter = make_adapter("sim", None)
    assert isinstance(adapter, HttpInsuranceAdapter)
    assert adapter.endpoint == "http://127.0.0.1:8765/lookup"
    with pytest.raises(InsuranceError):
        make_adapter("soap", None)


def test_malformed_gateway_answers_are_unknown() -> None:
    from edge_agent.insurance import _parse

    assert _parse(b"not json").detail == "malformed"
    assert _parse(b"[]").detail == "malformed"
    assert _parse(b'{"status": "maybe"}').detail == "malformed"
    assert _parse(b'{"status": "valid", "valid_until": "31/12/2026"}').detail == "malformed"
    ok = _parse(b'{"status": "valid", "card_number": "bad", "detail": "Has Spaces"}')
    assert ok.state is InsuranceState.VALID and ok.card_number is None and ok.detail == ""


def test_hospital_flow_with_the_simulated_gateway() -> None:
    from datetime import datetime, timedelta, timezone

    from edge_agent.flows import FlowSettings, HospitalFlow, QrPresentation

    with InsuranceGateway(today=TODAY) as gw:
        committed: list[object] = []
        flow = HospitalFlow(FlowSettings(site_id="bv-cho-ray", subject_key=b"k" * 16),
                            clock=lambda: datetime(2025, 4, 30, 8, 0,
                                                   tzinfo=timezone(timedelta(hours=7))),
                            commit=committed.extend,
                            insurance=HttpInsuranceAdapter(gw.url, timeout_s=1.0))
        qr = ("079303001234||Nguyễn Thị Mai|15052003|Nữ|1 Đường C, Phường A, Quận B, "
              "TP. Hồ Chí Minh|20082021")
        verdict = flow.visit(QrPresentation(qr.encode()))
    assert verdict.accepted and verdict.insurance == "valid"
    assert "Thẻ BHYT còn hiệu lực." in verdict.message_vi and len(committed) == 1
