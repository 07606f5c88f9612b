"""Full sessions against the simulated chip, driven by a minimal test-local terminal.

The terminal here is deliberately tiny and is *not* the product reader (edge_agent): it only
exists to exercise the card side (BAC, PACE, SM, CA, AA, file access, faults).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.card import (
    ATR,
    DEFAULT_PROFILE,
    PROFILES,
    Faults,
    SimulatedChip,
    TagLost,
    TimingModel,
    atr_for,
    crypto,
    issue_cards,
    load_card,
    pace,
)
from firmware_sim.card.bac import BacKeys
from firmware_sim.card.ec import BRAINPOOL_P256R1 as CURVE
from firmware_sim.card.oids import PACE_ECDH_GM_AES_128
from firmware_sim.card.tlv import parse_all, read_tlv, tlv


class MacError(Exception):
    pass


class Terminal:
    """Minimal reader side: plain and SM APDUs, BAC, PACE, CA, AA, file reads."""

    def __init__(self, chip: SimulatedChip) -> None:
        self.chip = chip
        self.alg: str | None = None
        self.ks_enc = self.ks_mac = b""
        self.ssc = 0

    # -- transport -----------------------------------------------------------------------
    def plain(self, apdu: bytes) -> tuple[bytes, int]:
        resp = self.chip.process(apdu)
        return resp[:-2], int.from_bytes(resp[-2:], "big")

    @property
    def _bs(self) -> int:
        return 8 if self.alg == "3DES" else 16

    def _mac(self, data: bytes) -> bytes:
        padded = crypto.pad(data, self._bs)
        if self.alg == "3DES":
            return crypto.retail_mac(self.ks_mac, padded)
        return crypto.aes_cmac(self.ks_mac, padded)

    def _iv(self) -> bytes:
        if self.alg == "3DES":
            return bytes(8)
        return crypto.aes_ecb_block(self.ks_enc, self.ssc.to_bytes(16, "big"))

    def _enc(self, data: bytes) -> bytes:
        f = crypto.des3_encrypt if self.alg == "3DES" else crypto.aes_encrypt
        return f(self.ks_enc, crypto.pad(data, self._bs), self._iv())

    def _dec(self, data: bytes) -> bytes:
        f = crypto.des3_decrypt if self.alg == "3DES" else crypto.aes_decrypt
        return crypto.unpad(f(self.ks_enc, data, self._iv()))

    def sm(
        self, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None, cla: int = 0x0C
    ) -> tuple[bytes, int]:
        self.ssc += 1
        dos = b""
        if data:
            dos += tlv(0x85, self._enc(data)) if ins & 1 else tlv(0x87, b"\x01" + self._enc(data))
        if le is not None:
            dos += tlv(0x97, bytes([le & 0xFF]))
        header = bytes([cla, ins, p1, p2])
        mac = self._mac(self.ssc.to_bytes(self._bs, "big") + crypto.pad(header, self._bs) + dos)
        body = dos + tlv(0x8E, mac)
        resp = self.chip.process(header + bytes([len(body)]) + body + b"\x00")
        sw = int.from_bytes(resp[-2:], "big")
        if len(resp) == 2:
            return b"", sw
        self.ssc += 1
        objs = parse_all(resp[:-2])
        covered = b"".join(tlv(t, v) for t, v in objs if t != 0x8E)
        if self._mac(self.ssc.to_bytes(self._bs, "big") + covered) != dict(objs)[0x8E]:
            raise MacError("response MAC")
        d = dict(objs)
        out = b""
        if 0x87 in d:
            out = self._dec(d[0x87][1:])
        elif 0x85 in d:
            out = self._dec(d[0x85])
        assert int.from_bytes(d[0x99], "big") == sw
        return out, sw

    # -- access --------------------------------------------------------------------------
    def bac(self, mrz_information: str) -> None:
        keys = BacKeys.from_mrz(mrz_information)
        # plain SELECT first: a strict chip answers GET CHALLENGE 6985 before it
        assert self.plain(bytes.fromhex("00A4040C07A0000002471001"))[1] == 0x9000
        rnd_icc, sw = self.plain(bytes.fromhex("0084000008"))
        assert sw == 0x9000
        rnd_ifd, k_ifd = os.urandom(8), os.urandom(16)
        e = crypto.des3_encrypt(keys.k_enc, rnd_ifd + rnd_icc + k_ifd)
        m = crypto.retail_mac(keys.k_mac, crypto.pad(e))
        resp, sw = self.plain(bytes.fromhex("0082000028") + e + m + b"\x28")
        assert sw == 0x9000, hex(sw)
        assert crypto.retail_mac(keys.k_mac, crypto.pad(resp[:32])) == resp[32:]
        r = crypto.des3_decrypt(keys.k_enc, resp[:32])
        assert r[:8] == rnd_icc and r[8:16] == rnd_ifd
        seed = crypto.xor(k_ifd, r[16:32])
        self.alg, self.ks_enc, self.ks_mac = "3DES", crypto.kdf(seed, 1), crypto.kdf(seed, 2)
        self.ssc = int.from_bytes(rnd_icc[4:] + rnd_ifd[4:], "big")

    def _ga(self, cla: int, inner: bytes) -> bytes:
        body = tlv(0x7C, inner)
        resp, sw = self.plain(bytes([cla, 0x86, 0, 0, len(body)]) + body + b"\x00")
        assert sw == 0x9000, hex(sw)
        _, value, _ = read_tlv(resp)
        return parse_all(value)[0][1]

    def pace(self, password: str, ref: int) -> None:
        mse = tlv(0x80, PACE_ECDH_GM_AES_128) + tlv(0x83, bytes([ref]))
        assert self.plain(bytes([0, 0x22, 0xC1, 0xA4, len(mse)]) + mse)[1] == 0x9000
        key = pace.k_pi(ref, password, password)
        z = self._ga(0x10, b"")
        s = int.from_bytes(crypto.aes_decrypt(key, z), "big")
        sk_map = int.from_bytes(os.urandom(32), "big") % (CURVE.n - 1) + 1
        pk_map_icc = CURVE.decode(
            self._ga(0x10, tlv(0x81, CURVE.encode(CURVE.multiply(sk_map, CURVE.g))))
        )
        g2 = CURVE.add(CURVE.multiply(s, CURVE.g), CURVE.multiply(sk_map, pk_map_icc))
        sk = int.from_bytes(os.urandom(32), "big") % (CURVE.n - 1) + 1
        pk_ifd = CURVE.encode(CURVE.multiply(sk, g2))
        pk_icc = self._ga(0x10, tlv(0x83, pk_ifd))
        x = CURVE.multiply(sk, CURVE.decode(pk_icc))[0].to_bytes(32, "big")
        ks_enc, ks_mac = crypto.kdf(x, 1, "AES"), crypto.kdf(x, 2, "AES")
        t_icc = self._ga(0x00, tlv(0x85, pace.auth_token(ks_mac, PACE_ECDH_GM_AES_128, pk_icc)))
        assert t_icc == pace.auth_token(ks_mac, PACE_ECDH_GM_AES_128, pk_ifd)
        self.alg, self.ks_enc, self.ks_mac, self.ssc = "AES", ks_enc, ks_mac, 0

    # -- files ---------------------------------------------------------------------------
    def select_app(self) -> None:
        aid = bytes.fromhex("A0000002471001")
        if self.alg:
            assert self.sm(0xA4, 0x04, 0x0C, aid)[1] == 0x9000
        else:
            assert self.plain(bytes.fromhex("00A4040C07") + aid)[1] == 0x9000

    def read_file(self, fid: int, chunk: int = 0xDF) -> bytes:
        _, sw = self.sm(0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))
        assert sw == 0x9000, hex(sw)
        head, sw = self.sm(0xB0, 0, 0, le=4)
        assert sw == 0x9000
        lb = head[1]
        total = 2 + (
            lb if lb < 0x80 else int.from_bytes(head[2 : 2 + (lb & 0x7F)], "big") + (lb & 0x7F)
        )
        out = b""
        while len(out) < total:
            part, sw = self.sm(
                0xB0, len(out) >> 8, len(out) & 0xFF, le=min(chunk, total - len(out))
            )
            assert sw == 0x9000, hex(sw)
            out += part
        return out


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("issued")
    issue_cards(out, 2, seed=7)
    issue_cards(out, 1, seed=8, aa="rsa", dg13_layout="siblings")
    return out


def card_json(card: Path) -> dict[str, object]:
    import json

    data: dict[str, object] = json.loads((card / "card.json").read_text(encoding="utf-8"))
    return data


def connect(card: Path, **kw: object) -> tuple[SimulatedChip, Terminal]:
    chip = load_card(card, **kw)  # type: ignore[arg-type]
    assert chip.power_on() == ATR
    return chip, Terminal(chip)


def test_atr_has_correct_tck() -> None:
    assert ATR[0] == 0x3B and ATR[1] >> 4 == 8
    tck = 0
    for b in ATR[1:]:
        tck ^= b
    assert tck == 0


def test_full_bac_session_reads_every_file(issued: Path) -> None:
    card = issued / "cards" / "0001"
    info = card_json(card)
    chip, t = connect(card)
    t.select_app()
    t.bac(str(info["mrz_information"]))
    for name, fid in (
        ("COM", 0x011E),
        ("DG1", 0x0101),
        ("DG2", 0x0102),
        ("DG13", 0x010D),
        ("DG14", 0x010E),
        ("DG15", 0x010F),
        ("SOD", 0x011D),
    ):
        assert t.read_file(fid) == (card / "ef" / f"{name}.bin").read_bytes(), name
    assert chip.apdu_count > 10 and chip.bytes_sent > 4000


def test_full_pace_can_session_with_ca_and_aa(issued: Path) -> None:
    card = issued / "cards" / "0002"
    info = card_json(card)
    chip, t = connect(card)
    assert t.plain(bytes.fromhex("00A4020C02011C"))[1] == 0x9000
    card_access, sw = t.plain(bytes.fromhex("00B0000000"))
    assert card_access == (card / "ef" / "CardAccess.bin").read_bytes() and sw == 0x9000
    t.pace(str(info["can"]), pace.PASSWORD_CAN)
    assert chip.access == "PACE"
    t.select_app()
    dg1 = t.read_file(0x0101)
    assert dg1 == (card / "ef" / "DG1.bin").read_bytes()
    _chip_authenticate(t, t.read_file(0x010E))
    assert chip.chip_authenticated
    assert t.read_file(0x0101) == dg1  # new AES keys, SSC restarted at zero
    _active_authenticate(t, t.read_file(0x010F))


def test_pace_with_mrz_password(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = connect(card)
    t.pace(str(card_json(card)["mrz_information"]), pace.PASSWORD_MRZ)
    t.select_app()
    assert t.read_file(0x011E) == (card / "ef" / "COM.bin").read_bytes()


def test_rsa_active_authentication(issued: Path) -> None:
    card = issued / "cards" / "0003"
    _chip, t = connect(card)
    t.pace(str(card_json(card)["can"]), pace.PASSWORD_CAN)
    t.select_app()
    _active_authenticate(t, t.read_file(0x010F))


def _chip_authenticate(t: Terminal, dg14: bytes) -> None:
    # find the SubjectPublicKeyInfo after id-PK-ECDH
    marker = bytes.fromhex("060904007F000702020102")
    start = dg14.index(marker) + len(marker)
    _, _spki, end = read_tlv(dg14, start)
    chip_pub = serialization.load_der_public_key(dg14[start:end])
    assert isinstance(chip_pub, ec.EllipticCurvePublicKey)
    eph = ec.generate_private_key(ec.BrainpoolP256R1())
    point = eph.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    mse = tlv(0x80, bytes.fromhex("04007F00070202030202"))
    assert t.sm(0x22, 0x41, 0xA4, mse)[1] == 0x9000
    resp, sw = t.sm(0x86, 0, 0, tlv(0x7C, tlv(0x80, point)), le=0)
    assert (resp, sw) == (b"\x7c\x00", 0x9000)
    x = eph.exchange(ec.ECDH(), chip_pub)
    t.ks_enc, t.ks_mac, t.ssc = crypto.kdf(x, 1, "AES"), crypto.kdf(x, 2, "AES"), 0


def _active_authenticate(t: Terminal, dg15: bytes) -> None:
    _, spki, _ = read_tlv(dg15)
    pub = serialization.load_der_public_key(spki)
    challenge = os.urandom(8)
    sig, sw = t.sm(0x88, 0, 0, challenge, le=0)
    assert sw == 0x9000
    if isinstance(pub, ec.EllipticCurvePublicKey):
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        pub.verify(encode_dss_signature(r, s), challenge, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(pub, rsa.RSAPublicKey)
        n, e = pub.public_numbers().n, pub.public_numbers().e
        f = pow(int.from_bytes(sig, "big"), e, n).to_bytes(len(sig), "big")
        if f[-1] != 0xBC:
            raise InvalidSignature("ISO 9796-2 trailer")
        assert f[0] == 0x6A
        m1, digest = f[1:-21], f[-21:-1]
        if hashlib.sha1(m1 + challenge).digest() != digest:
            raise InvalidSignature("ISO 9796-2 hash")


def test_access_rules(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = connect(card)
    assert t.plain(bytes.fromhex("00A4040C07A0000002471001"))[1] == 0x9000
    assert t.plain(bytes.fromhex("00A4020C020101"))[1] == 0x6982  # before authentication
    assert t.plain(bytes.fromhex("00B0810004"))[1] == 0x6982  # short EF DG1
    assert t.plain(bytes.fromhex("0088000008" + "00" * 8 + "00"))[1] == 0x6982
    t.bac(str(card_json(card)["mrz_information"]))
    assert t.sm(0xA4, 0x02, 0x0C, bytes.fromhex("0103"))[1] == 0x9000
    assert t.sm(0xB0, 0, 0, le=4)[1] == 0x6982  # DG3 needs Terminal Authentication
    assert t.sm(0xB0, 0x83, 0, le=4)[1] == 0x6982
    assert t.sm(0xA4, 0x02, 0x0C, bytes.fromhex("010B"))[1] == 0x6A82  # DG11
    assert t.sm(0xA4, 0x02, 0x0C, bytes.fromhex("010C"))[1] == 0x6A82  # DG12
    assert t.sm(0xB0, 0x81, 0, le=4) == ((card / "ef" / "DG1.bin").read_bytes()[:4], 0x9000)
    assert t.sm(0xB0, 0x7F, 0, le=4)[1] == 0x6B00  # offset beyond the file
    # a plain command ends secure messaging and the access it gave
    assert t.plain(bytes.fromhex("00B0810004"))[1] == 0x6982


def test_select_mf_may_be_refused(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = connect(card)
    assert t.plain(bytes.fromhex("00A4000C023F00"))[1] == 0x9000
    _chip, t = connect(card, refuse_select_mf=True)
    assert t.plain(bytes.fromhex("00A4000C023F00"))[1] == 0x6D00
    assert t.plain(bytes.fromhex("00A4020C02011C"))[1] == 0x9000


def test_read_binary_odd_ins_beyond_32k(issued: Path) -> None:
    card = issued / "cards" / "0001"
    big = tlv(0x75, bytes(range(256)) * 160)  # ~40 KB DG2
    base = load_card(card)
    files = dict(base.fs.contents, DG2=big)
    chip = SimulatedChip(files, mrz_information=base.mrz_information, can=base.can)
    chip.power_on()
    t = Terminal(chip)
    t.select_app()
    t.bac(base.mrz_information)
    assert t.sm(0xA4, 0x02, 0x0C, bytes.fromhex("0102"))[1] == 0x9000
    offset = 0x8123
    resp, sw = t.sm(0xB1, 0, 0, tlv(0x54, offset.to_bytes(2, "big")), le=0x80)
    assert sw == 0x9000
    tag, value, end = read_tlv(resp)
    assert tag == 0x53 and end == len(resp) == 0x80 and value == big[offset : offset + len(value)]
    resp, sw = t.sm(0xB1, 0x01, 0x02, tlv(0x54, (len(big) - 5).to_bytes(3, "big")), le=0x80)
    assert sw == 0x6282 and read_tlv(resp)[1] == big[-5:]
    assert t.sm(0xB1, 0, 0, tlv(0x54, len(big).to_bytes(3, "big")), le=0x80)[1] == 0x6B00
    assert t.sm(0xB0, 0x7F, 0xFF, le=4) == (big[0x7FFF : 0x7FFF + 4], 0x9000)  # B0's last offset


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00", 0x6700),
        ("00A4", 0x6700),
        ("00A4020C0201", 0x6700),
        ("00A4020C03011C", 0x6700),
        ("00A4030C02011C", 0x6A86),
        ("00A4020102011C", 0x6A86),
        ("00CA000000", 0x6D00),
        ("80A4020C02011C", 0x6E00),
        ("FFCA000000", 0x6E00),
        ("0084000004", 0x6700),
        ("0084010008", 0x6A86),
        ("0082000028" + "00" * 40 + "28", 0x6985),
        ("0CB0000000", 0x6882),
        ("00860000027C0000", 0x6985),
        ("002241A6028000", 0x6A86),
    ],
)
def test_malformed_apdus_get_status_words(issued: Path, apdu: str, sw: int) -> None:
    chip, _ = connect(issued / "cards" / "0001")
    assert chip.process(bytes.fromhex(apdu)) == sw.to_bytes(2, "big")


def test_sm_missing_and_wrong_dos(issued: Path) -> None:
    card = issued / "cards" / "0001"
    chip, t = connect(card)
    t.bac(str(card_json(card)["mrz_information"]))
    assert chip.process(bytes.fromhex("0CB0000003970104" + "00")) == bytes.fromhex("6987")
    t.bac(str(card_json(card)["mrz_information"]))
    assert chip.process(bytes.fromhex("0CB000000E" + "99029000" + "8E08" + "00" * 8)) == (
        bytes.fromhex("6988")
    )


# -- faults -------------------------------------------------------------------------------
def test_tag_loss_fires_once_then_disarms(issued: Path) -> None:
    card = issued / "cards" / "0001"
    mrz = str(card_json(card)["mrz_information"])
    chip, t = connect(card, faults=Faults(tag_loss_after_bytes=300))
    t.select_app()
    t.bac(mrz)
    with pytest.raises(TagLost):
        t.read_file(0x0102)
    assert not chip.powered
    with pytest.raises(TagLost):
        chip.process(bytes.fromhex("0084000008"))
    chip.power_on()
    t = Terminal(chip)
    t.select_app()
    t.bac(mrz)
    assert t.read_file(0x0102) == (card / "ef" / "DG2.bin").read_bytes()


def test_wrong_mac_fault(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = connect(card, faults=Faults(wrong_mac=True))
    t.pace(str(card_json(card)["can"]), pace.PASSWORD_CAN)  # PACE itself still succeeds
    with pytest.raises(MacError):
        t.select_app()


def test_forged_dg_fault(issued: Path) -> None:
    card = issued / "cards" / "0001"
    for dg, fid in ((1, 0x0101), (2, 0x0102), (13, 0x010D), (15, 0x010F)):
        _chip, t = connect(card, faults=Faults(forged_dg=dg))
        t.pace(str(card_json(card)["can"]), pace.PASSWORD_CAN)
        t.select_app()
        data = t.read_file(fid)
        stored = (card / "ef" / f"DG{dg}.bin").read_bytes()
        assert (data != stored and len(data) == len(stored)) or dg == 15
        assert read_tlv(data)[2] == len(data)  # still a well-formed TLV
        if dg == 15:
            _active_authenticate(t, data)  # the forger's key really is on the chip


def test_clone_fault_breaks_ca_and_aa(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = connect(card, faults=Faults(clone=True))
    t.pace(str(card_json(card)["can"]), pace.PASSWORD_CAN)
    t.select_app()
    dg1 = t.read_file(0x0101)
    assert dg1 == (card / "ef" / "DG1.bin").read_bytes()  # same data
    dg15 = t.read_file(0x010F)
    with pytest.raises(InvalidSignature):
        _active_authenticate(t, dg15)
    _chip_authenticate(t, t.read_file(0x010E))
    assert t.sm(0xB0, 0x81, 0, le=4)[1] == 0x6988  # keys do not agree: the chip rejects the MAC


def test_timing_model_accumulates(issued: Path) -> None:
    card = issued / "cards" / "0001"
    chip, t = connect(card, timing=TimingModel.realistic())
    t.pace(str(card_json(card)["can"]), pace.PASSWORD_CAN)
    pace_time = chip.card_time_s
    assert 0.4 <= pace_time < 0.6  # 5 public-key operations at 80 ms plus link time
    t.select_app()
    t.read_file(0x0102)
    assert chip.card_time_s > pace_time + 0.3  # ~4 KB at 106 kbit/s
    assert TimingModel.zero().delay(100, 100) == 0.0
    assert TimingModel(per_apdu_s=0.001, bit_rate=9000).delay(497, 497) == pytest.approx(1.001)


# -- robustness ----------------------------------------------------------------------------
FUZZ_CHIP: dict[str, SimulatedChip] = {}


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    apdu=st.one_of(
        st.binary(max_size=300),
        st.tuples(
            st.sampled_from([0x00, 0x0C, 0x10, 0x1C, 0x80]),
            st.sampled_from([0xA4, 0xB0, 0xB1, 0x84, 0x82, 0x22, 0x86, 0x88, 0xCA]),
            st.integers(0, 255),
            st.integers(0, 255),
            st.binary(max_size=260),
        ).map(lambda c: bytes(c[:4]) + (bytes([len(c[4])]) + c[4] if 0 < len(c[4]) < 256 else b"")),
    ),
    bac_first=st.booleans(),
)
def test_random_apdus_only_get_status_words(issued: Path, apdu: bytes, bac_first: bool) -> None:
    card = issued / "cards" / "0001"
    chip = FUZZ_CHIP.get("chip")
    if chip is None:
        chip = FUZZ_CHIP["chip"] = load_card(card)
    chip.power_on()
    if bac_first:
        t = Terminal(chip)
        t.select_app()
        t.bac(str(card_json(card)["mrz_information"]))
    resp = chip.process(apdu)
    assert len(resp) >= 2
    sw = int.from_bytes(resp[-2:], "big")
    assert sw != 0x6F00
    assert resp[-2] in (0x90, 0x62, 0x63, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6D, 0x6E)


def test_firmware_sim_imports_nothing_from_the_reader_side() -> None:
    import ast

    root = Path(__file__).resolve().parents[2] / "firmware_sim"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                # The simulated reader implements the reader interface, and only that.
                if name in ("drivers.card_reader", "drivers.uri"):
                    continue
                assert name.split(".")[0] not in ("edge_agent", "drivers"), (path, name)


def test_dg14_ca_oid_matches_card_access(issued: Path) -> None:
    card = issued / "cards" / "0001"
    ca_oid = bytes.fromhex("060A04007F00070202030202")  # id-CA-ECDH-AES-CBC-CMAC-128
    assert ca_oid in (card / "ef" / "CardAccess.bin").read_bytes()
    assert ca_oid in (card / "ef" / "DG14.bin").read_bytes()


# -- profiles: what the strict default refuses, as real chips do --------------------------------
def _profiled(card: Path, profile: str) -> tuple[SimulatedChip, Terminal]:
    chip = load_card(card, profile=profile)
    assert chip.power_on() == atr_for(PROFILES[profile])
    return chip, Terminal(chip)


SELECT_APP = bytes.fromhex("00A4040C07A0000002471001")
MSE_PACE_CAN = bytes([0, 0x22, 0xC1, 0xA4, 15]) + tlv(0x80, PACE_ECDH_GM_AES_128) + tlv(0x83, b"\x02")


def test_strict_is_the_default_profile(issued: Path) -> None:
    chip = load_card(issued / "cards" / "0001")
    assert chip.profile == PROFILES[DEFAULT_PROFILE] == PROFILES["strict"]
    assert chip.power_on() == ATR == atr_for(PROFILES["strict"])


def test_strict_refuses_bac_before_select_and_pace_after_it(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = _profiled(card, "strict")
    assert t.plain(bytes.fromhex("0084000008")) == (b"", 0x6985)
    assert t.plain(SELECT_APP)[1] == 0x9000
    challenge, sw = t.plain(bytes.fromhex("0084000008"))
    assert sw == 0x9000 and len(challenge) == 8
    assert t.plain(MSE_PACE_CAN)[1] == 0x6985  # PACE runs at the MF level
    _chip, t = _profiled(card, "lenient")
    assert t.plain(bytes.fromhex("0084000008"))[1] == 0x9000  # the old, forgiving order
    assert t.plain(SELECT_APP)[1] == 0x9000
    assert t.plain(MSE_PACE_CAN)[1] == 0x9000


def test_strict_no_mf_reaches_card_access_by_fid_only(issued: Path) -> None:
    card = issued / "cards" / "0001"
    _chip, t = _profiled(card, "strict-no-mf")
    assert t.plain(bytes.fromhex("00A4000C023F00"))[1] == 0x6D00
    assert t.plain(bytes.fromhex("00B09C0000"))[1] == 0x6A86
    assert t.plain(bytes.fromhex("00A4020C02011C"))[1] == 0x9000
    data, sw = t.plain(bytes.fromhex("00B0000000"))
    assert sw == 0x9000 and data == (card / "ef" / "CardAccess.bin").read_bytes()
    _chip, t = _profiled(card, "strict")
    assert t.plain(bytes.fromhex("00B09C0000"))[0] == (card / "ef" / "CardAccess.bin").read_bytes()
    assert t.plain(SELECT_APP)[1] == 0x9000
    assert t.plain(bytes.fromhex("00B09C0000"))[1] == 0x6A82  # an EF of the MF, not the app


def test_bac_only_has_no_card_access_and_no_pace(issued: Path) -> None:
    card = issued / "cards" / "0001"
    chip, t = _profiled(card, "bac-only")
    assert t.plain(bytes.fromhex("00B09C0000"))[1] == 0x6A82
    assert t.plain(bytes.fromhex("00A4020C02011C"))[1] == 0x6A82
    assert t.plain(MSE_PACE_CAN)[1] == 0x6A80
    t.bac(str(card_json(card)["mrz_information"]))
    assert chip.access == "BAC" and t.alg == "3DES"
    assert t.read_file(0x0101) == (card / "ef" / "DG1.bin").read_bytes()


@pytest.mark.parametrize(("profile", "sw"), [("strict", 0x6700), ("extended", 0x9000),
                                             ("lenient", 0x9000)])
def test_responses_beyond_short_length_need_advertised_extended_length(
        issued: Path, profile: str, sw: int) -> None:
    card = issued / "cards" / "0001"
    _chip, t = _profiled(card, profile)
    t.bac(str(card_json(card)["mrz_information"]))
    # 0xE8 bytes of DG2 under 3DES SM: DO87 of 244 bytes, DO99, DO8E → 258 > 256
    data, got = t.sm(0xB0, 0x82, 0, le=0xE8)
    assert got == sw
    if sw == 0x9000:
        assert data == (card / "ef" / "DG2.bin").read_bytes()[:0xE8]
    ext = bytes.fromhex("00B0000000" + "0400")
    _chip, t = _profiled(card, profile)
    assert t.plain(ext)[1] == (0x6700 if profile == "strict" else 0x6985)  # 6985: no EF yet
