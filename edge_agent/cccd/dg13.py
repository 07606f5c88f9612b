"""DG13: the Vietnam-specific personal data group (CCCD.md §4).

::

    6D L  [APPLICATION 13]
      30 L  SEQUENCE
        02 01 01                     INTEGER 1 (version)
        06 06 28 D3 16 01 00 08      OID 1.0.10646.1.0.8
        31 L  SET of SEQUENCE { INTEGER field-number, value ... }

Parsed generically by field number. Field 13 (parents) is accepted both as one nested SEQUENCE
holding both names and as two sibling SEQUENCEs; field 14 (spouse) may hold only its INTEGER;
unknown fields are kept as raw bytes. The data group itself is never re-encoded: passive
authentication hashes the bytes as read from the chip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from edge_agent.cccd.dates import parse_ddmmyyyy
from edge_agent.cccd.errors import CccdError, Dg13Error
from edge_agent.cccd.id_number import Sex
from edge_agent.icao.tlv import Tlv, TlvError, iter_tlvs, parse_single

DG13_TAG = 0x6D
SEQUENCE, SET, INTEGER, OID = 0x30, 0x31, 0x02, 0x06
STRING_TAGS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x14: "latin-1",  # T61String (treated as Latin-1)
    0x1E: "utf-16-be",  # BMPString
}
DG13_OID = bytes.fromhex("28D316010008")
"""1.0.10646.1.0.8, written on CCCD chips after the version."""

MAX_FIELD_NUMBER = 255
_FIELD_NAMES = {
    1: "id_number", 2: "full_name", 3: "date_of_birth", 4: "sex", 5: "nationality",
    6: "ethnicity", 7: "religion", 8: "place_of_origin", 9: "residence",
    10: "identifying_marks", 11: "issue_date", 12: "valid_until", 13: "parents",
    14: "spouse_name", 15: "old_id_number",
}


@dataclass(frozen=True, slots=True)
class Dg13:
    """The personal data of DG13. Dates are kept as the card's text; see :meth:`to_json`."""

    id_number: str | None = None
    full_name: str | None = None
    date_of_birth: str | None = None
    sex: str | None = None
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    place_of_origin: str | None = None
    residence: str | None = None
    identifying_marks: str | None = None
    issue_date: str | None = None
    valid_until: str | None = None
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None
    old_id_number: str | None = None
    unknown_fields: dict[int, bytes] = field(default_factory=dict)
    raw: bytes = field(default=b"", repr=False)

    @property
    def sex_code(self) -> str | None:
        """``M`` / ``F`` for ``Nam`` / ``Nữ``; the card's text otherwise."""
        if self.sex is None:
            return None
        sex = Sex.from_vietnamese(self.sex)
        return sex.value if sex else self.sex

    def date_of_birth_value(self) -> date | None:
        """The date of birth as a date, or None when the card's text is not ``dd/mm/yyyy``."""
        return _as_date(self.date_of_birth)

    def to_json(self) -> dict[str, object]:
        """The object printed by ``edge-agent inspect dg13``: ISO dates where the text is one."""
        return {
            "id_number": self.id_number,
            "full_name": self.full_name,
            "date_of_birth": _iso_or_text(self.date_of_birth),
            "sex": self.sex_code,
            "nationality": self.nationality,
            "ethnicity": self.ethnicity,
            "religion": self.religion,
            "place_of_origin": self.place_of_origin,
            "residence": self.residence,
            "identifying_marks": self.identifying_marks,
            "issue_date": _iso_or_text(self.issue_date),
            "valid_until": _iso_or_text(self.valid_until),
            "father_name": self.father_name,
            "mother_name": self.mother_name,
            "spouse_name": self.spouse_name,
            "old_id_number": self.old_id_number,
            "unknown_fields": {str(k): v.hex() for k, v in sorted(self.unknown_fields.items())},
        }


def _as_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return parse_ddmmyyyy(text.strip(), "date", Dg13Error, slashes=True)
    except CccdError:
        return None


def _iso_or_text(text: str | None) -> str | None:
    value = _as_date(text)
    return value.isoformat() if value else text


def _decode_string(element: Tlv, where: str) -> str:
    encoding = STRING_TAGS.get(element.tag)
    if encoding is None:
        raise Dg13Error(f"tag {element.tag:02X} is not a string type", field=where)
    try:
        return element.value.decode(encoding)
    except UnicodeDecodeError:
        raise Dg13Error(f"string is not valid {encoding}", field=where) from None


def _field_number(element: Tlv, where: str) -> int:
    if element.tag != INTEGER:
        raise Dg13Error(f"starts with tag {element.tag:02X}, expected INTEGER (02)", field=where)
    if not 1 <= len(element.value) <= 2:
        raise Dg13Error(f"field number of {len(element.value)} bytes", field=where)
    number = int.from_bytes(element.value, "big", signed=True)
    if not 1 <= number <= MAX_FIELD_NUMBER:
        raise Dg13Error(f"field number {number} is out of range", field=where)
    return number


def _strings_in(elements: list[Tlv], where: str) -> list[str]:
    """Every string inside ``elements`` in order, looking into SEQUENCEs (field 13 forms)."""
    names: list[str] = []
    for element in elements:
        if element.tag == SEQUENCE:
            names.extend(_strings_in(element.children(), where))
        else:
            names.append(_decode_string(element, where))
    return names


def parse_dg13(data: bytes) -> Dg13:
    """Parse DG13; raises :class:`Dg13Error` with the reason for any malformed input."""
    if not isinstance(data, bytes | bytearray):
        raise Dg13Error("must be bytes")
    data = bytes(data)
    if not data:
        raise Dg13Error("is empty")
    try:
        return _parse(data)
    except TlvError as exc:
        raise Dg13Error(str(exc), field="tlv") from None


def _parse(data: bytes) -> Dg13:
    if data[0] != DG13_TAG:
        raise Dg13Error(f"starts with tag {data[0]:02X}, expected 6D", field="tag")
    outer = parse_single(data, expected_tag=DG13_TAG)
    top = outer.children()
    if len(top) != 1 or top[0].tag != SEQUENCE:
        raise Dg13Error("must hold exactly one SEQUENCE", field="structure")
    parts = top[0].children()
    if len(parts) < 3:
        raise Dg13Error("SEQUENCE must hold version, OID and the SET of fields",
                        field="structure")
    version, oid, fields_set = parts[0], parts[1], parts[2]
    if version.tag != INTEGER:
        raise Dg13Error(f"tag {version.tag:02X} where the INTEGER version belongs",
                        field="version")
    if oid.tag != OID:
        raise Dg13Error(f"tag {oid.tag:02X} where the OID belongs", field="oid")
    if fields_set.tag != SET:
        raise Dg13Error(f"tag {fields_set.tag:02X} where the SET of fields belongs",
                        field="fields")
    if len(parts) > 3:
        raise Dg13Error(f"{len(parts) - 3} unexpected elements after the SET", field="structure")

    values: dict[str, str | None] = {}
    seen: set[int] = set()
    parents: list[str] = []
    unknown: dict[int, bytes] = {}
    for index, entry in enumerate(iter_tlvs(fields_set.value, depth=3)):
        where = f"entry {index + 1}"
        if entry.tag != SEQUENCE:
            raise Dg13Error(f"tag {entry.tag:02X} in the SET, expected SEQUENCE (30)",
                            field=where)
        items = entry.children()
        if not items:
            raise Dg13Error("empty SEQUENCE", field=where)
        number = _field_number(items[0], where)
        where = f"field {number}"
        rest = items[1:]
        if number == 13:
            parents.extend(_strings_in(rest, where))
            if len(parents) > 2:
                raise Dg13Error(f"{len(parents)} parent names, at most 2 expected", field=where)
            continue
        if number in seen:
            raise Dg13Error("appears twice", field=where)
        seen.add(number)
        name = _FIELD_NAMES.get(number)
        if name is None:
            unknown[number] = b"".join(item.raw for item in rest)
            continue
        if len(rest) > 1:
            raise Dg13Error(f"{len(rest)} values, expected one", field=where)
        values[name] = _decode_string(rest[0], where) if rest else None

    return Dg13(
        id_number=values.get("id_number"),
        full_name=values.get("full_name"),
        date_of_birth=values.get("date_of_birth"),
        sex=values.get("sex"),
        nationality=values.get("nationality"),
        ethnicity=values.get("ethnicity"),
        religion=values.get("religion"),
        place_of_origin=values.get("place_of_origin"),
        residence=values.get("residence"),
        identifying_marks=values.get("identifying_marks"),
        issue_date=values.get("issue_date"),
        valid_until=values.get("valid_until"),
        father_name=parents[0] if parents else None,
        mother_name=parents[1] if len(parents) > 1 else None,
        spouse_name=values.get("spouse_name") or None,
        old_id_number=values.get("old_id_number") or None,
        unknown_fields=unknown,
        raw=data,
    )
