"""The reading session against the simulated chip: every access path and every fault."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.card_reader import CardReader
from edge_agent.cccd import BacKey
from edge_agent.icao.trust import TrustStore
from edge_agent.reading import (
    Assurance,
    CheckStatus,
    FailureReason,
    KeyMaterial,
    ReadPolicy,
    read_chip,
)
from edge_agent.reading.policy import CloneCheck
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.card import Faults, issue_cards
from firmware_sim.sim_reader import SimCardReader


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cards")
    issue_cards(out, 3, seed=7)
    return out


@pytest.fixture(scope="module")
def trust(issued: Path) -> TrustStore:
    return load_trust_folder(issued / "trust")


def card(issued: Path, number: int = 1) -> tuple[Path, dict[str, Any]]:
    folder = issued / "cards" / f"{number:04d}"
    return folder, json.loads((folder / "card.json").read_text(encoding="utf-8"))


def reader_for(issued: Path, number: int = 1, **faults: Any) -> SimCardReader:
    folder, _ = card(issued, number)
    return SimCardReader(folder, faults=Faults(**faults) if faults else None, realtime=False)


def test_pace_can_chip_anchored(issued: Path, trust: TrustStore) -> None:
    _, info = card(issued)
    result = read_chip(reader_for(issued), KeyMaterial.from_can(info["can"]), trust=trust)
    assert result.ok, result.reason
    assert result.assurance is Assurance.CHIP_ANCHORED
    assert result.access == "pace-can"
    assert result.identity is not None
    assert result.identity.id_number.value == info["person"]["id_number"]
    assert result.identity.full_name == info["person"]["full_name"]
    checks = {name: check.status for name, check in result.checks.items()}
    assert checks == {
        "dg_hashes": CheckStatus.PASSED, "ds_signature": CheckStatus.PASSED,
        "csca_chain": CheckStatus.PASSED, "chip_authentication": CheckStatus.PASSED,
        "active_authentication": CheckStatus.NOT_RUN,
    }
    assert sorted(result.data_groups) == [1, 13, 14, 15]
    assert result.to_json()["identity"]["id_number"].startswith("********")


def test_apdu_count_is_the_minimum_for_the_chunk_size(issued: Path) -> None:
    folder, info = card(issued)
    sizes = {name: len((folder / "ef" / f"{name}.bin").read_bytes())
             for name in ("CardAccess", "DG1", "DG13", "DG14", "DG15", "SOD")}
    for chunk in (0xDF, 0x60):
        result = read_chip(reader_for(issued), KeyMaterial.from_can(info["can"]),
                           ReadPolicy(max_chunk=chunk))
        assert result.ok
        reads = sum(math.ceil(size / chunk) for size in sizes.values())
        # EF.CardAccess by short EF identifier (no SELECT), MSE:Set AT + 4 General
        # Authenticate, SELECT application under SM, Chip Authentication (MSE:Set AT + General
        # Authenticate), then only READ BINARYs.
        assert result.apdu_count == reads + 5 + 1 + 2


def test_mrz_gives_can_and_qr_gives_can(issued: Path, trust: TrustStore) -> None:
    _, info = card(issued, 2)
    by_mrz = read_chip(reader_for(issued, 2), KeyMaterial.from_mrz(*info["mrz"]), trust=trust)
    by_qr = read_chip(reader_for(issued, 2), KeyMaterial.from_qr(info["qr"]), trust=trust)
    assert by_mrz.ok and by_qr.ok
    assert by_mrz.access == by_qr.access == "pace-can"
    assert by_qr.qr_mismatch == []
    assert by_mrz.identity == by_qr.identity


def test_pace_with_mrz_key_when_no_can(issued: Path) -> None:
    _, info = card(issued)
    key = KeyMaterial.from_mrz(*info["mrz"]).bac_keys
    result = read_chip(reader_for(issued), KeyMaterial(bac_keys=key))
    assert result.ok and result.access == "pace-mrz"
    assert result.assurance is Assurance.CHIP_SIGNED
    assert result.checks["csca_chain"].status is CheckStatus.NOT_RUN


def test_bac_fallback_tries_candidates_in_order(issued: Path) -> None:
    _, info = card(issued)
    reader = reader_for(issued)
    reader.chip.fs.contents.pop("CardAccess")  # a chip without PACE
    right = KeyMaterial.from_mrz(*info["mrz"]).bac_keys[0]
    wrong = BacKey(right.document_number, right.date_of_birth, "991231")
    result = read_chip(reader, KeyMaterial(can=info["can"], bac_keys=(wrong, right)))
    assert result.ok, result.reason
    assert result.access == "bac"


def test_wrong_can_is_access_denied(issued: Path) -> None:
    _, info = card(issued)
    wrong = f"{(int(info['can']) + 1) % 10**6:06d}"
    result = read_chip(reader_for(issued), KeyMaterial.from_can(wrong))
    assert result.failure is FailureReason.ACCESS_DENIED
    assert result.identity is None and not result.ok


def test_qr_mismatch_is_flagged(issued: Path) -> None:
    _, info = card(issued)
    fields = info["qr"].split("|")
    fields[2] = "Trần Văn Khác"
    result = read_chip(reader_for(issued), KeyMaterial.from_qr("|".join(fields)))
    assert result.ok
    assert result.qr_mismatch == ["full_name"]


def test_dg2_face_image(issued: Path) -> None:
    _, info = card(issued)
    result = read_chip(reader_for(issued), KeyMaterial.from_can(info["can"]),
                       ReadPolicy(read_dg2=True))
    assert result.ok
    assert result.face_mime == "image/jpeg"
    assert result.face_image is not None and result.face_image[:3] == b"\xff\xd8\xff"
    assert 2 in result.data_groups


@pytest.mark.parametrize(
    ("faults", "failure"),
    [
        ({"wrong_mac": True}, FailureReason.SECURE_MESSAGING),
        ({"forged_dg": 1}, FailureReason.DG_HASH_MISMATCH),
        ({"forged_dg": 13}, FailureReason.DG_HASH_MISMATCH),
        ({"clone": True}, FailureReason.CLONE_SUSPECTED),
        ({"expired_signer": True}, FailureReason.SIGNER_EXPIRED),
    ],
)
def test_faults_fail_with_the_right_reason(issued: Path, trust: TrustStore,
                                           faults: dict[str, Any],
                                           failure: FailureReason) -> None:
    _, info = card(issued)
    result = read_chip(reader_for(issued, **faults), KeyMaterial.from_can(info["can"]),
                       trust=trust)
    assert result.failure is failure, result.reason
    assert result.identity is None and result.assurance is None and result.reason


def test_clone_caught_by_active_authentication_without_ca(issued: Path, trust: TrustStore) -> None:
    _, info = card(issued)
    reader = reader_for(issued, clone=True)
    # Without DG14 the session falls back to AA over DG15.
    reader.chip.fs.contents.pop("DG14")
    result = read_chip(reader, KeyMaterial.from_can(info["can"]), trust=trust)
    assert result.failure is FailureReason.CLONE_SUSPECTED
    assert result.checks["active_authentication"].status is CheckStatus.FAILED


def test_genuine_chip_passes_both_clone_checks(issued: Path) -> None:
    _, info = card(issued)
    result = read_chip(reader_for(issued), KeyMaterial.from_can(info["can"]),
                       ReadPolicy(clone_check=CloneCheck.BOTH))
    assert result.ok
    assert result.checks["active_authentication"].status is CheckStatus.PASSED
    assert result.checks["chip_authentication"].status is CheckStatus.PASSED


def test_unknown_csca_is_chip_signed_unless_chain_required(issued: Path,
                                                           trust: TrustStore) -> None:
    _, info = card(issued)
    keys = KeyMaterial.from_can(info["can"])
    signed = read_chip(reader_for(issued, unknown_csca=True), keys, trust=trust)
    assert signed.ok and signed.assurance is Assurance.CHIP_SIGNED
    assert signed.checks["csca_chain"].status is CheckStatus.FAILED
    strict = read_chip(reader_for(issued, unknown_csca=True), keys,
                       ReadPolicy(require_csca_chain=True), trust)
    assert strict.failure is FailureReason.CSCA_UNTRUSTED


@pytest.mark.parametrize("after", [40, 300, 700, 1200, 1800])
def test_tag_loss_resumes_from_the_offset(issued: Path, trust: TrustStore, after: int) -> None:
    _, info = card(issued)
    keys = KeyMaterial.from_can(info["can"])
    clean = read_chip(reader_for(issued), keys, trust=trust)
    lossy = read_chip(reader_for(issued, tag_loss_after_bytes=after), keys, trust=trust)
    assert lossy.ok, lossy.reason
    assert lossy.retries == 1
    assert lossy.data_groups == clean.data_groups
    assert lossy.identity == clean.identity
    assert lossy.checks["chip_authentication"].status is CheckStatus.PASSED


def test_retries_are_bounded(issued: Path) -> None:
    _, info = card(issued)
    result = read_chip(reader_for(issued, tag_loss_after_bytes=300),
                       KeyMaterial.from_can(info["can"]), ReadPolicy(max_retries=0))
    assert result.failure is FailureReason.CARD_LOST
    assert result.identity is None


def test_card_taken_away_ends_at_the_deadline(issued: Path) -> None:
    _, info = card(issued)
    reader = reader_for(issued, tag_loss_after_bytes=300)
    reader.add_listener(lambda event, name: None)
    original = reader.transmit

    def transmit(apdu: bytes) -> bytes:
        try:
            return original(apdu)
        except Exception:
            reader.remove_card()  # the visitor walked away with the card
            raise

    reader.transmit = transmit  # type: ignore[method-assign]
    result = read_chip(reader, KeyMaterial.from_can(info["can"]),
                       ReadPolicy(deadline_s=0.5, reconnect_timeout_s=0.1))
    assert result.failure is FailureReason.DEADLINE
    # The next presentation succeeds.
    reader.present_card()
    assert read_chip(reader_for(issued), KeyMaterial.from_can(info["can"])).ok


class MutatingReader(CardReader):
    """Passes APDUs to a simulated card and mutates one response."""

    def __init__(self, inner: SimCardReader, index: int, mutate: Any) -> None:
        self.inner = inner
        self.index = index
        self.mutate = mutate
        self.count = 0

    def connect(self, timeout: float | None = None) -> Any:
        return self.inner.connect(timeout)

    def transmit(self, apdu: bytes) -> bytes:
        response = self.inner.transmit(apdu)
        self.count += 1
        if self.count == self.index:
            mutated: bytes = self.mutate(response)
            return mutated
        return response

    def disconnect(self) -> None:
        self.inner.disconnect()


_clean_identity: dict[str, Any] = {}
_lock = threading.Lock()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(index=st.integers(1, 24), how=st.sampled_from(["flip", "truncate", "random", "sw", "empty"]),
       where=st.integers(0, 10_000), value=st.binary(min_size=0, max_size=40))
def test_mutated_responses_never_crash_or_mislead(issued: Path, trust: TrustStore, index: int,
                                                  how: str, where: int, value: bytes) -> None:
    _, info = card(issued)
    keys = KeyMaterial.from_can(info["can"])
    with _lock:
        if "identity" not in _clean_identity:
            _clean_identity["identity"] = read_chip(reader_for(issued), keys, trust=trust).identity

    def mutate(response: bytes) -> bytes:
        if how == "flip" and response:
            pos = where % len(response)
            return response[:pos] + bytes([response[pos] ^ 0x01]) + response[pos + 1:]
        if how == "truncate":
            return response[: where % (len(response) + 1)]
        if how == "sw":
            return response[:-2] + bytes([0x6A, 0x80])
        if how == "empty":
            return b""
        return value

    reader = MutatingReader(reader_for(issued), index, mutate)
    result = read_chip(reader, keys, ReadPolicy(deadline_s=5), trust)
    assert result.failure is not FailureReason.INTERNAL_ERROR, result.reason
    if result.ok:
        # Only a change that made no difference may pass, and then with the same identity.
        assert result.identity == _clean_identity["identity"]
    else:
        assert result.failure is not None and result.reason
        assert result.identity is None


# -- trust decisions (passive authentication's chain model) -----------------------------------

def test_lifetime_card_reads_chip_anchored_in_2050_after_its_signer_expired(
        tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cryptography import x509

    issue_cards(tmp_path, 12, seed=58)
    lifetime = [folder for folder in sorted((tmp_path / "cards").iterdir())
                if json.loads((folder / "card.json").read_text("utf-8"))["person"]["expiry"]
                is None]
    assert lifetime, "no card issued at 58 or later among the twelve"
    folder = lifetime[0]
    info = json.loads((folder / "card.json").read_text("utf-8"))
    assert info["mrz"][1][8:14] == "991231"  # no expiry in the MRZ
    in_2050 = datetime(2050, 6, 1, tzinfo=UTC)
    ds = x509.load_pem_x509_certificate((tmp_path / "pki" / "ds.pem").read_bytes())
    csca = x509.load_pem_x509_certificate((tmp_path / "pki" / "csca.pem").read_bytes())
    assert ds.not_valid_after_utc < in_2050 and csca.not_valid_after_utc < in_2050
    trust = load_trust_folder(tmp_path / "trust")
    result = read_chip(SimCardReader(folder, realtime=False), KeyMaterial.from_mrz(*info["mrz"]),
                       trust=trust, now=lambda: in_2050)
    assert result.ok, result.reason
    assert result.assurance is Assurance.CHIP_ANCHORED
    assert result.identity is not None and result.identity.date_of_expiry is None
    assert result.validity_reference is not None
    assert result.validity_reference.startswith("date of issue ")
    assert result.checks["csca_chain"].status is CheckStatus.PASSED


def test_signer_expired_before_the_card_was_issued_is_rejected(issued: Path,
                                                               trust: TrustStore) -> None:
    _, info = card(issued)
    result = read_chip(reader_for(issued, expired_signer=True),
                       KeyMaterial.from_can(info["can"]), trust=trust)
    assert result.failure is FailureReason.SIGNER_EXPIRED
    assert "before the document was issued" in result.reason


def test_forged_signer_naming_the_trusted_csca_is_rejected(issued: Path,
                                                           trust: TrustStore) -> None:
    _, info = card(issued)
    keys = KeyMaterial.from_can(info["can"])
    forged = read_chip(reader_for(issued, forged_signer=True), keys, trust=trust)
    assert forged.failure is FailureReason.SIGNATURE_INVALID
    assert "forged document signer" in forged.reason
    assert forged.issuer_status == "forged-signer"
    assert forged.checks["csca_chain"].status is CheckStatus.FAILED
    # without a trust store nobody can tell: only chip-signed, shown as such
    blind = read_chip(reader_for(issued, forged_signer=True), keys)
    assert blind.ok and blind.assurance is Assurance.CHIP_SIGNED
    assert blind.issuer_status == "no-trust-store"


def test_unknown_csca_is_shown_differently_from_anchored(issued: Path, trust: TrustStore) -> None:
    _, info = card(issued)
    keys = KeyMaterial.from_can(info["can"])
    unknown = read_chip(reader_for(issued, unknown_csca=True), keys, trust=trust)
    anchored = read_chip(reader_for(issued), keys, trust=trust)
    assert unknown.ok and unknown.issuer_status == "unknown-csca"
    assert anchored.ok and anchored.issuer_status == "anchored"
    assert unknown.assurance is not None and not unknown.assurance.anchored
    assert anchored.assurance is not None and anchored.assurance.anchored
    shown = unknown.to_json()["assurance_text"]
    assert shown != anchored.to_json()["assurance_text"]
    assert shown[0].startswith("Chip có chữ ký hợp lệ")  # Vietnamese first
