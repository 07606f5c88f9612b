"""DG13: the Vietnam-specific personal data group (docs/cccd.md §4).

::

    6D L  [APPLICATION 13]
      30 L  SEQUENCE
        02 01 01                     INTEGER 1 (version)
        06 06 28 D3 16 01 00 08      OID 1.0.10646.1.0.8
        31 L  SET of SEQUENCE { INTEGER field-number, value ... }

Parsed generically by field number. A field's value may be nested at any depth inside
SEQUENCEs: its string leaves are collected in order (field 13, the parents, is seen both as one
nested SEQUENCE holding both names and as two sibling SEQUENCEs; field 14, the spouse, as
``30 {02 01 0E, 30 {0C name}}``, or only its INTEGER, or absent, when single). Field 15 (old CMND)
is absent when there is none; field 16 is a 16-character string of unconfirmed meaning; other
numbers are kept as raw bytes. The data group itself is never re-encoded: passive authentication
hashes the bytes as read from the chip.

The chip signs DG13, so a shape this parser does not expect is the issuer's layout, not an
attack: by default a field it cannot read is kept raw and named in :attr:`Dg13.problems`, and only
a data group that is not a DG13 at all (wrong tag, broken TLV, no SET of fields) raises
:class:`Dg13Error`. ``strict=True`` raises on the first problem instead (tests, diagnosis).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from edge_agent.cccd.dates import BirthDate, parse_birth_date, parse_ddmmyyyy
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
    14: "spouse_name", 15: "old_id_number", 16: "field_16",
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
    field_16: str | None = None
    """A 16-character string on current cards whose meaning is not confirmed (kept as read)."""
    unknown_fields: dict[int, bytes] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """Fields this parser could not read as expected (``field N: reason``); they are kept raw in
    :attr:`unknown_fields` when their number is not a known one."""
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

    def birth_date(self) -> BirthDate | None:
        """The date of birth, possibly partial (``yyyy``, ``mm/yyyy``, ``00/00/yyyy``), or None
        when field 3 is absent or not a date."""
        if not self.date_of_birth:
            return None
        try:
            return parse_birth_date(self.date_of_birth.strip(), "date_of_birth", Dg13Error)
        except CccdError:
            return None

    def to_json(self) -> dict[str, object]:
        """The object printed by ``edge-agent inspect dg13``: ISO dates where the text is one."""
        return {
            "id_number": self.id_number,
            "full_name": self.full_name,
            "date_of_birth": _birth_or_text(self.date_of_birth, self.birth_date()),
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
            "field_16": self.field_16,
            "unknown_fields": {str(k): v.hex() for k, v in sorted(self.unknown_fields.items())},
            "problems": list(self.problems),
        }


def _as_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return parse_ddmmyyyy(text.strip(), "date", Dg13Error, slashes=True)
    except CccdError:
        return None


def _birth_or_text(text: str | None, value: BirthDate | None) -> str | None:
    return value.isoformat() if value is not None else text


def _iso_or_text(text: str | None) -> str | None:
    value = _as_date(text)
    return value.isoformat() if value else text


class _Problems:
    """The problems of one parse: raised at once when strict, else collected."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.found: list[str] = []

    def add(self, where: str, reason: str) -> None:
        if self.strict:
            raise Dg13Error(reason, field=where)
        self.found.append(f"{where}: {reason}")


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


MAX_NESTING = 8
"""Deeper SEQUENCEs than any card writes are refused (bounded recursion)."""


def _strings_in(elements: list[Tlv], where: str, depth: int = 0) -> list[str]:
    """Every string leaf inside ``elements`` in order, at any depth of SEQUENCE or SET; raises
    :class:`Dg13Error` for a leaf that is not a string or a string that does not decode."""
    if depth > MAX_NESTING:
        raise Dg13Error(f"nested deeper than {MAX_NESTING} levels", field=where)
    names: list[str] = []
    for element in elements:
        if element.tag in (SEQUENCE, SET):
            try:
                children = element.children()
            except TlvError as exc:
                raise Dg13Error(str(exc), field=where) from None
            names.extend(_strings_in(children, where, depth + 1))
        else:
            names.append(_decode_string(element, where))
    return names


def parse_dg13(data: bytes, *, strict: bool = False) -> Dg13:
    """Parse DG13; raises :class:`Dg13Error` with the reason for input that is not a DG13 (and,
    when ``strict``, for the first field this parser cannot read)."""
    if not isinstance(data, bytes | bytearray):
        raise Dg13Error("must be bytes")
    data = bytes(data)
    if not data:
        raise Dg13Error("is empty")
    try:
        return _parse(data, _Problems(strict))
    except TlvError as exc:
        raise Dg13Error(str(exc), field="tlv") from None


def _parse(data: bytes, problems: _Problems) -> Dg13:
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
    if fields_set.tag != SET:
        raise Dg13Error(f"tag {fields_set.tag:02X} where the SET of fields belongs",
                        field="fields")
    if version.tag != INTEGER:
        problems.add("version", f"tag {version.tag:02X} where the INTEGER version belongs")
    if oid.tag != OID:
        problems.add("oid", f"tag {oid.tag:02X} where the OID belongs")
    if len(parts) > 3:
        problems.add("structure", f"{len(parts) - 3} unexpected elements after the SET")

    values: dict[str, str | None] = {}
    seen: set[int] = set()
    parents: list[str] = []
    unknown: dict[int, bytes] = {}
    for index, entry in enumerate(iter_tlvs(fields_set.value, depth=3)):
        where = f"entry {index + 1}"
        if entry.tag != SEQUENCE:
            problems.add(where, f"tag {entry.tag:02X} in the SET, expected SEQUENCE (30)")
            continue
        try:
            items = entry.children()
        except TlvError as exc:
            problems.add(where, str(exc))
            continue
        if not items:
            problems.add(where, "empty SEQUENCE")
            continue
        try:
            number = _field_number(items[0], where)
        except Dg13Error as exc:
            problems.add(where, exc.reason)
            continue
        where = f"field {number}"
        rest = items[1:]
        raw_value = b"".join(item.raw for item in rest)
        name = _FIELD_NAMES.get(number)
        if number != 13 and number in seen:
            problems.add(where, "appears twice")
            continue
        seen.add(number)
        try:
            strings = _strings_in(rest, where)
        except Dg13Error as exc:
            problems.add(where, exc.reason)
            unknown.setdefault(number, raw_value)
            continue
        if number == 13:
            parents.extend(strings)
            continue
        if name is None:
            unknown[number] = raw_value
            continue
        values[name] = " ".join(strings) if strings else None
    if len(parents) > 2:
        problems.add("field 13", f"{len(parents)} parent names, at most 2 expected")

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
        field_16=values.get("field_16") or None,
        unknown_fields=unknown,
        problems=tuple(problems.found),
        raw=data,
    )
