"""Device enrolment from the admin page: the bundle's certificate, keys and agent.toml."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from sqlalchemy import select

from central.db.models import AuditLog, Device
from central.enrol import DeviceCA, fingerprint
from edge_agent.config import parse_config
from tests.web_support import World, csrf, login, make_world


@pytest.fixture
def setup(tmp_path: Path) -> tuple[World, DeviceCA, X25519PrivateKey]:
    ca = DeviceCA.create()
    ca.save(tmp_path / "ca.pem", tmp_path / "ca.key")
    centre = X25519PrivateKey.generate()
    world = make_world(tmp_path, DEVICE_CA_CERT=str(tmp_path / "ca.pem"),
                       DEVICE_CA_KEY=str(tmp_path / "ca.key"),
                       CENTRE_X25519_PUBLIC=centre.public_key().public_bytes(
                           serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo),
                       BROKER_URL="mqtts://broker.hue.example:8883")
    return world, ca, centre


def test_enrolment_bundle(setup: tuple[World, DeviceCA, X25519PrivateKey],
                          tmp_path: Path) -> None:
    world, ca, centre = setup
    c = world.app.test_client()
    login(c, "admin")
    token = csrf(c, "/admin/devices")
    r = c.post("/admin/devices/enrol", data={
        "device_id": "gate-hien-nhon-01", "site_id": "hue-dai-noi", "name": "Cổng Hiển Nhơn",
        "direction": "exit", "csrf_token": token})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    files = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
    cert = x509.load_pem_x509_certificate(files["tls/gate-hien-nhon-01.crt"])
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "gate-hien-nhon-01"
    cert.verify_directly_issued_by(ca.cert)  # chains to the device CA
    assert x509.load_pem_x509_certificate(files["tls/ca.pem"]) == ca.cert
    key = serialization.load_pem_private_key(files["tls/gate-hien-nhon-01.key"], None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    signing = serialization.load_pem_private_key(files["keys/device-ed25519.pem"], None)
    assert isinstance(signing, Ed25519PrivateKey)
    centre_pub = serialization.load_pem_public_key(files["keys/centre-x25519.pub.pem"])
    assert isinstance(centre_pub, X25519PublicKey)
    assert centre_pub.public_bytes_raw() == centre.public_key().public_bytes_raw()
    with world.maker() as db:
        device = db.get(Device, "gate-hien-nhon-01")
        assert device is not None and device.site_id == "hue-dai-noi"
        assert device.signing_public_key == signing.public_key().public_bytes_raw()
        assert device.cert_fingerprint == fingerprint(cert)
        assert db.scalar(select(AuditLog).where(AuditLog.action == "device.enrol"))
    # agent.toml parses with the agent's own parser.
    folder = tmp_path / "bundle"
    zf.extractall(folder)
    text = files["agent.toml"].decode()
    config = parse_config(text, folder / "gate-hien-nhon-01")
    assert config.device.id == "gate-hien-nhon-01"
    assert config.device.site_id == "hue-dai-noi"
    assert str(config.device.direction.value if hasattr(config.device.direction, "value")
               else config.device.direction) == "exit"
    assert config.keys.signing_key == folder / "gate-hien-nhon-01" / "keys/device-ed25519.pem"
    assert config.broker.url == "mqtts://broker.hue.example:8883"
    mode = zf.getinfo("gate-hien-nhon-01/keys/device-ed25519.pem").external_attr >> 16
    assert mode == 0o600


def test_enrolment_refuses_bad_or_taken_ids(setup: tuple[World, DeviceCA, X25519PrivateKey],
                                            ) -> None:
    world, _, _ = setup
    c = world.app.test_client()
    login(c, "admin")
    token = csrf(c, "/admin/devices")
    for device_id in ("Gate_01", "sites", "gate-ngo-mon-01", "-x"):
        r = c.post("/admin/devices/enrol", data={"device_id": device_id,
                                                 "site_id": "hue-dai-noi",
                                                 "csrf_token": token})
        assert r.status_code == 400, device_id
    assert c.post("/admin/devices/enrol", data={"device_id": "ok-1", "site_id": "nowhere",
                                                "csrf_token": token}).status_code == 400


def test_hospital_and_accommodation_kinds(setup: tuple[World, DeviceCA, X25519PrivateKey],
                                          tmp_path: Path) -> None:
    world, _, _ = setup
    c = world.app.test_client()
    login(c, "admin")
    token = csrf(c, "/admin/devices")
    for device_id, site, kind in (("desk-bv-2", "bv-hue", "hospital-reception"),
                                  ("desk-ks-2", "ks-phu-vang", "accommodation-desk")):
        r = c.post("/admin/devices/enrol", data={"device_id": device_id, "site_id": site,
                                                 "csrf_token": token})
        zf = zipfile.ZipFile(io.BytesIO(r.data))
        text = zf.read(f"{device_id}/agent.toml").decode()
        config = parse_config(text, tmp_path)
        assert str(getattr(config.device.site_kind, "value", config.device.site_kind)) == kind


def test_retire_then_enrol_the_replacement_under_the_same_id(
        setup: tuple[World, DeviceCA, X25519PrivateKey]) -> None:
    world, _, _ = setup
    c = world.app.test_client()
    login(c, "admin")
    token = csrf(c, "/admin/devices")
    enrol = {"device_id": "gate-thay-01", "site_id": "hue-dai-noi", "csrf_token": token}
    assert c.post("/admin/devices/enrol", data=enrol).status_code == 200
    assert c.post("/admin/devices/enrol", data=enrol).status_code == 400  # in use
    r = c.post("/admin/devices/gate-thay-01/revoke", data={"drain": "1", "csrf_token": token})
    assert r.status_code == 302
    page = c.get("/admin/devices").get_data(as_text=True)
    assert "Đang cho nghỉ" in page
    assert "Đang cho nghỉ" in c.get("/devices").get_data(as_text=True)
    assert c.post("/admin/devices/enrol", data=enrol).status_code == 400  # still draining
    assert c.post("/admin/devices/gate-thay-01/revoke",
                  data={"csrf_token": token}).status_code == 302  # end the drain
    r = c.post("/admin/devices/enrol", data=enrol)
    assert r.status_code == 200, r.get_data(as_text=True)
    with world.maker() as db:
        device = db.get(Device, "gate-thay-01")
        assert device is not None and (device.generation, device.revoked) == (2, False)
        actions = list(db.scalars(select(AuditLog.action).where(
            AuditLog.target == "gate-thay-01").order_by(AuditLog.id)))
        assert actions == ["device.enrol", "device.retire", "device.revoke", "device.enrol"]
