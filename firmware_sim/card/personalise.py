"""Personalisation: build every file of a CCCD chip from a synthetic person, write and load cards.

Card folder layout (``DIR/cards/NNNN``): ``card.json`` (person, CAN, MRZ, QR, faults, timing,
options), ``ef/<NAME>.bin`` (COM, CardAccess, DG1, DG2, DG3, DG13, DG14, DG15, SOD, exactly as
stored on the chip) and ``keys/aa.key.pem``, ``keys/ca.key.pem``. The PKI lives in ``DIR/pki``.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from PIL import Image, ImageDraw

from . import lds, mrz, pki
from .active_auth import AAKey
from .chip import SimulatedChip
from .errors import PersonalisationError
from .faults import Faults
from .people import Person
from .profiles import DEFAULT_PROFILE, PROFILES
from .timing import TimingModel

DG_NUMBERS = {"DG1": 1, "DG2": 2, "DG3": 3, "DG13": 13, "DG14": 14, "DG15": 15}
EF_FILES = ("COM", "CardAccess", "DG1", "DG2", "DG3", "DG13", "DG14", "DG15", "SOD")
NO_EXPIRY_TEXT = "Không thời hạn"


@dataclass(frozen=True, slots=True)
class CardOptions:
    """Per-card personalisation choices."""

    dg13_parents_layout: str = "nested"  # "nested" | "siblings"
    aa: str = "ecdsa"  # "ecdsa" | "rsa"
    refuse_select_mf: bool = False
    profile: str = DEFAULT_PROFILE  # a name in profiles.PROFILES: what the chip refuses
    dg13_values: str = "nested"
    """``nested`` (as real chips write it, docs/cccd.md §4): the spouse nested in a SEQUENCE, fields
    14 and 15 absent when single or without an old CMND, field 16 present. ``flat`` (the older
    profile): the spouse a bare string, fields 14/15 holding only their INTEGER when empty, no
    field 16."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise PersonalisationError(f"unknown card profile {self.profile!r}")
        if self.dg13_parents_layout not in ("nested", "siblings"):
            raise PersonalisationError("dg13_parents_layout must be 'nested' or 'siblings'")
        if self.dg13_values not in ("nested", "flat"):
            raise PersonalisationError("dg13_values must be 'nested' or 'flat'")
        if self.aa not in ("ecdsa", "rsa"):
            raise PersonalisationError("aa must be 'ecdsa' or 'rsa'")


@dataclass(slots=True)
class PersonalisedCard:
    """Files, keys and printed data of one card."""

    person: Person
    files: dict[str, bytes]
    aa_key: AAKey
    ca_key: ec.EllipticCurvePrivateKey
    mrz: list[str]
    options: CardOptions
    sod_signer: str = "ds"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def can(self) -> str:
        """Card access number (last 6 digits of the ID number)."""
        return self.person.can

    @property
    def mrz_information(self) -> str:
        """BAC/PACE MRZ information."""
        return mrz.mrz_information(self.mrz)

    @property
    def qr(self) -> str:
        """Card QR payload (docs/cccd.md §5)."""
        return qr_payload(self.person)


def ddmmyyyy(d: Any, sep: str = "/") -> str:
    """Date as dd/mm/yyyy (or ddmmyyyy with ``sep=''``)."""
    return f"{d.day:02d}{sep}{d.month:02d}{sep}{d.year:04d}"


def qr_payload(p: Person) -> str:
    """``ID|old CMND|name|DOB|sex|address|issue date`` (docs/cccd.md §5)."""
    parts = [
        p.id_number,
        p.old_id or "",
        p.full_name,
        p.dob_qr,
        p.sex,
        p.residence,
        ddmmyyyy(p.issue_date, ""),
    ]
    return "|".join(parts)


def face_jpeg(rng: random.Random, female: bool) -> tuple[bytes, int, int]:
    """A small drawn face (JPEG, a few KB)."""
    w, h = 180, 240
    bg = (200 + rng.randrange(40), 210 + rng.randrange(30), 230 + rng.randrange(25))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    skin = (220 + rng.randrange(30), 180 + rng.randrange(30), 140 + rng.randrange(30))
    hair = (20 + rng.randrange(40),) * 3
    d.ellipse((20, 200, 160, 300), fill=(40 + rng.randrange(80), 60, 110))  # shoulders
    d.rectangle((75, 170, 105, 215), fill=skin)  # neck
    d.ellipse((45, 40, 135, 180), fill=skin)  # face
    d.chord((40, 25, 140, 120), 180, 360, fill=hair)  # hair
    if female:
        d.rectangle((38, 70, 52, 190), fill=hair)
        d.rectangle((128, 70, 142, 190), fill=hair)
    for ex in (70, 110):
        d.ellipse((ex - 7, 95, ex + 7, 105), fill=(255, 255, 255))
        d.ellipse((ex - 3, 97, ex + 3, 103), fill=(30, 20, 10))
        d.line((ex - 9, 88, ex + 9, 86), fill=hair, width=3)
    d.line((90, 105, 86, 135, 93, 137), fill=(170, 120, 90), width=2)
    d.arc((72, 135, 108, 160), 20, 160, fill=(150, 60, 60), width=3)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70, optimize=True)
    return buf.getvalue(), w, h


def field_16(p: Person) -> str:
    """A stable 16-character value for field 16 (its meaning on real cards is unconfirmed)."""
    return hashlib.sha256(b"dg13-16:" + p.id_number.encode()).hexdigest()[:16].upper()


def dg13_fields(p: Person, layout: str, values: str = "nested") -> list[tuple[int, list[bytes]]]:
    """DG13 fields (docs/cccd.md §4); field 13 nested or as two siblings; ``values`` as in
    :attr:`CardOptions.dg13_values`."""
    expiry = ddmmyyyy(p.expiry) if p.expiry else NO_EXPIRY_TEXT
    fields: list[tuple[int, list[bytes]]] = [
        (1, [lds.printable(p.id_number)]),
        (2, [lds.utf8(p.full_name)]),
        (3, [lds.utf8(p.dob_dg13)]),
        (4, [lds.utf8(p.sex)]),
        (5, [lds.utf8(p.nationality)]),
        (6, [lds.utf8(p.ethnicity)]),
        (7, [lds.utf8(p.religion)]),
        (8, [lds.utf8(p.place_of_origin)]),
        (9, [lds.utf8(p.residence)]),
        (10, [lds.utf8(p.identifying_marks)]),
        (11, [lds.utf8(ddmmyyyy(p.issue_date))]),
        (12, [lds.utf8(expiry)]),
    ]
    if layout == "nested":
        fields.append((13, [lds.der_seq(lds.utf8(p.father), lds.utf8(p.mother))]))
    else:
        fields += [(13, [lds.utf8(p.father)]), (13, [lds.utf8(p.mother)])]
    if values == "flat":
        fields.append((14, [lds.utf8(p.spouse)] if p.spouse else []))
        fields.append((15, [lds.printable(p.old_id)] if p.old_id else []))
        return fields
    if p.spouse:
        fields.append((14, [lds.der_seq(lds.utf8(p.spouse))]))
    if p.old_id:
        fields.append((15, [lds.printable(p.old_id)]))
    fields.append((16, [lds.printable(field_16(p))]))
    return fields


def personalise(
    person: Person,
    signer: pki.Signer,
    options: CardOptions | None = None,
    rng: random.Random | None = None,
    sod_signer: str = "ds",
) -> PersonalisedCard:
    """Build all files; EF.SOD hashes the exact stored DG bytes."""
    options = options or CardOptions()
    rng = rng or random.Random(person.id_number)
    female = person.sex == "Nữ"
    lines = mrz.td1(
        person.id_number, person.date_of_birth, person.sex, person.expiry_yymmdd, person.full_name,
        birth=person.dob_mrz,
    )
    jpeg, w, h = face_jpeg(rng, female)
    aa_key: AAKey = (
        ec.generate_private_key(ec.BrainpoolP256R1())
        if options.aa == "ecdsa"
        else rsa.generate_private_key(65537, 1024)  # noqa: S505 - AA key size of deployed eMRTDs
    )
    ca_key = ec.generate_private_key(ec.BrainpoolP256R1())
    files = {
        "COM": lds.ef_com(),
        "CardAccess": lds.CARD_ACCESS_CCCD,
        "DG1": lds.dg1(lines),
        "DG2": lds.dg2(lds.iso19794_5(jpeg, w, h, female)),
        # DG3 exists (EF.COM lists it) but is never readable without Terminal Authentication.
        "DG3": bytes.fromhex("6303020100"),
        "DG13": lds.dg13(dg13_fields(person, options.dg13_parents_layout, options.dg13_values)),
        "DG14": lds.dg14(ca_key.public_key(), options.aa == "ecdsa"),
        "DG15": lds.dg15(aa_key.public_key()),
    }
    files["SOD"] = sod_for(files, signer)
    return PersonalisedCard(person, files, aa_key, ca_key, lines, options, sod_signer)


def sod_for(files: dict[str, bytes], signer: pki.Signer) -> bytes:
    """EF.SOD over the data groups present in ``files``."""
    dgs = {n: files[name] for name, n in DG_NUMBERS.items() if name in files}
    return lds.ef_sod(pki.sign_sod(dgs, signer))


def write_card(
    folder: Path,
    card: PersonalisedCard,
    faults: Faults | None = None,
    timing: TimingModel | None = None,
) -> Path:
    """Write ``card.json``, ``ef/*.bin`` and ``keys/*.pem`` into ``folder``."""
    (folder / "ef").mkdir(parents=True, exist_ok=True)
    (folder / "keys").mkdir(exist_ok=True)
    for name in EF_FILES:
        (folder / "ef" / f"{name}.bin").write_bytes(card.files[name])
    pki.write_private_key(folder / "keys" / "aa.key.pem", pki.private_pem(card.aa_key))
    pki.write_private_key(folder / "keys" / "ca.key.pem", pki.private_pem(card.ca_key))
    doc = {
        "person": card.person.to_json(),
        "can": card.can,
        "mrz": card.mrz,
        "mrz_information": card.mrz_information,
        "qr": card.qr,
        "faults": (faults or Faults()).to_json(),
        "timing": (timing or TimingModel.zero()).to_json(),
        "options": {
            "dg13_parents_layout": card.options.dg13_parents_layout,
            "aa": card.options.aa,
            "refuse_select_mf": card.options.refuse_select_mf,
            "profile": card.options.profile,
            "dg13_values": card.options.dg13_values,
        },
        "sod_signer": card.sod_signer,
        "synthetic": True,
    }
    (folder / "card.json").write_text(
        json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return folder


def _load_key(path: Path) -> Any:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise PersonalisationError(f"cannot load {path}: {exc}") from exc


def load_card(
    card_dir: Path | str,
    faults: Faults | None = None,
    timing: TimingModel | None = None,
    **chip_options: Any,
) -> SimulatedChip:
    """Load a card folder as a :class:`SimulatedChip`; ``faults``/``timing`` override card.json.

    ``profile=NAME`` (see :mod:`.profiles`) overrides the profile the card was issued with.

    If the faults ask for a different SOD signer than the one baked in (``unknown_csca``,
    ``expired_signer``), EF.SOD is re-signed with the PKI in ``card_dir/../../pki``.
    """
    folder = Path(card_dir)
    try:
        doc = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        files = {name: (folder / "ef" / f"{name}.bin").read_bytes() for name in EF_FILES}
    except (OSError, ValueError) as exc:
        raise PersonalisationError(f"cannot load card {folder}: {exc}") from exc
    faults = faults if faults is not None else Faults.from_json(doc.get("faults"))
    timing = timing if timing is not None else TimingModel.from_json(doc.get("timing"))
    wanted = faults.sod_signer
    if wanted != doc.get("sod_signer", "ds"):
        test_pki = pki.TestPKI.load(folder.parent.parent / "pki")
        files["SOD"] = sod_for(files, test_pki.signer(wanted))
    aa_key = _load_key(folder / "keys" / "aa.key.pem")
    ca_key = _load_key(folder / "keys" / "ca.key.pem")
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PersonalisationError("CA key must be an EC key")
    options = doc.get("options", {})
    chip_options.setdefault("refuse_select_mf", bool(options.get("refuse_select_mf", False)))
    chip_options.setdefault("profile", options.get("profile", DEFAULT_PROFILE))
    return SimulatedChip(
        files,
        mrz_information=doc["mrz_information"],
        can=doc["can"],
        aa_key=aa_key,
        ca_key=ca_key,
        faults=faults,
        timing=timing,
        **chip_options,
    )
