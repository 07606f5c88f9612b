"""The broker's access rules generated from the registry (central.broker_acl) and the CRL
(central.revocation): exact grants per identity, reserved names, and the sync plan."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from central.broker_acl import (
    Acl,
    BrokerAclError,
    Current,
    collector_name,
    device_acls,
    document,
    plan,
    reserved,
    wanted,
)
from central.cli import main as central_main
from central.enrol import DeviceCA
from central.revocation import build_crl, certificate_serial, listed, needs_rewrite

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_device_gets_its_own_topics_and_its_sites_occupancy_only() -> None:
    assert device_acls("gate-1", "hue-dai-noi") == {
        Acl("publishClientSend", "checkin/v1/gate-1/events"),
        Acl("publishClientSend", "checkin/v1/gate-1/status"),
        Acl("subscribeLiteral", "checkin/v1/gate-1/config"),
        Acl("publishClientReceive", "checkin/v1/gate-1/config"),
        Acl("subscribeLiteral", "checkin/v1/gate-1/receipts"),
        Acl("publishClientReceive", "checkin/v1/gate-1/receipts"),
        Acl("subscribeLiteral", "checkin/v1/sites/hue-dai-noi/occupancy"),
        Acl("publishClientReceive", "checkin/v1/sites/hue-dai-noi/occupancy"),
    }
    # literal only: no wildcard and no $share reaches a device's rules
    assert not any("+" in a.topic or "#" in a.topic or a.topic.startswith("$")
                   for a in device_acls("gate-1", "s"))


@pytest.mark.parametrize("device_id, site_id", [("gate/1", "s"), ("gate-1", "+"),
                                                ("Gate", "s"), ("collector-1", "s"),
                                                ("gate-1", "#")])
def test_bad_or_reserved_names_are_refused(device_id: str, site_id: str) -> None:
    with pytest.raises(BrokerAclError):
        device_acls(device_id, site_id)


@pytest.mark.parametrize("name, is_reserved, is_collector", [
    ("collector", True, True), ("collector-1", True, True), ("collector-b2", True, True),
    ("broker-admin", True, False), ("broker", True, False), ("central-x", True, False),
    ("sites", True, False), ("collectors-hall", False, False), ("gate-collector", False, False),
])
def test_reserved_names(name: str, is_reserved: bool, is_collector: bool) -> None:
    assert (reserved(name), collector_name(name)) == (is_reserved, is_collector)


def test_devices_no_topic_can_carry_are_skipped_not_fatal() -> None:
    state = wanted([("gate-1", "a/#"), ("collector-2", "s"), ("gate-2", "s")], ["collector"])
    assert state.skipped == ("collector-2", "gate-1")
    assert "gate-2" in state.clients and "gate-1" not in state.clients


def test_document_denies_by_default_and_lists_every_identity() -> None:
    doc = document(wanted([("gate-1", "s1"), ("collector-7", "s1")], ["collector", "collector-2"]))
    assert doc["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False,
                                       "subscribe": False, "unsubscribe": True}
    assert [c["username"] for c in doc["clients"]] == ["broker-admin", "collector",
                                                       "collector-2", "gate-1"]
    roles = {r["rolename"]: r["acls"] for r in doc["roles"]}
    assert set(roles) == {"broker-admin", "collector", "device-gate-1"}
    assert {"acltype": "subscribePattern", "topic": "$share/ingest/checkin/v1/#", "priority": 0,
            "allow": True} in roles["collector"]


def _current(state_doc: dict[str, object]) -> Current:
    return Current.from_responses(
        {"clients": state_doc["clients"]}, {"roles": state_doc["roles"]},
        {"acls": [{"acltype": k, "allow": v} for k, v in
                  state_doc["defaultACLAccess"].items()]})  # type: ignore[attr-defined]


def test_plan_is_empty_when_in_step_and_removes_revoked_devices() -> None:
    before = wanted([("gate-1", "s1"), ("gate-2", "s1")], ["collector"])
    current = _current(document(before))
    assert plan(current, before).commands == ()
    after = wanted([("gate-1", "s2")], ["collector"])  # gate-2 revoked, gate-1 moved site
    steps = plan(current, after)
    assert [c["command"] for c in steps.commands] == ["modifyRole", "deleteClient",
                                                      "deleteRole"]
    assert steps.removed == ("gate-2",)
    assert steps.commands[0]["rolename"] == "device-gate-1"


def test_plan_keeps_existing_collectors_and_restores_default_deny() -> None:
    doc = document(wanted([], ["collector", "collector-3"]))
    doc["clients"].append({"username": "intruder", "roles": [{"rolename": "collector"}]})
    doc["defaultACLAccess"]["subscribe"] = True
    steps = plan(_current(doc), wanted([("gate-9", "s")], ["collector"]))
    names = [(c["command"], c.get("username") or c.get("rolename")) for c in steps.commands]
    assert names == [("setDefaultACLAccess", None), ("createRole", "device-gate-9"),
                     ("createClient", "gate-9"), ("deleteClient", "intruder")]


def test_crl_names_the_serials_derived_from_revoked_keys() -> None:
    ca = DeviceCA.create()
    keys = [bytes([n]) * 32 for n in (1, 2)]
    pem = build_crl(ca.cert, ca.key, keys, NOW)
    crl = x509.load_pem_x509_crl(pem)
    assert crl.is_signature_valid(ca.key.public_key())
    assert listed(pem) == frozenset(certificate_serial(k) for k in keys)
    assert crl.next_update_utc is not None and crl.next_update_utc > NOW + timedelta(days=3000)
    assert not needs_rewrite(pem, list(reversed(keys)), NOW)
    assert needs_rewrite(pem, keys[:1], NOW)
    assert needs_rewrite(None, [], NOW) and needs_rewrite(b"junk", [], NOW)
    assert 0 < certificate_serial(keys[0]) < 2 ** 159
    with pytest.raises(ValueError):
        certificate_serial(b"short")


def test_broker_identity_issues_only_collector_and_admin_names(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    ca = DeviceCA.create()
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    args = ["--device-ca-cert", str(tmp_path / "ca.crt"), "--device-ca-key",
            str(tmp_path / "ca.key"), "--output-dir", str(tmp_path)]
    assert central_main(["broker-identity", "gate-1", *args]) == 2
    assert "only 'collector'" in capsys.readouterr().err
    assert central_main(["broker-identity", "collector-3", *args]) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "collector-3.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "collector-3"
    assert cert.issuer == ca.cert.subject
    assert stat.S_IMODE((tmp_path / "collector-3.key").stat().st_mode) == 0o600
    assert central_main(["broker-identity", "collector-3", *args]) == 2  # never overwritten
