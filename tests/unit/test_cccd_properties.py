"""Property tests: parsers raise only their domain error, work in linear time, and round-trip.

"Linear time" is shown without timing: the TLV reader is instrumented and the number of
elements it reads never exceeds the input length; adversarial large inputs are parsed under
hypothesis' deadline, which catches hangs.
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cccd import (
    CccdError,
    Dg13Error,
    MrzError,
    QrError,
    parse_dg13,
    parse_id_number,
    parse_qr,
    parse_td1,
)
from edge_agent.cccd.keys import expiry_candidates
from edge_agent.cccd.mrz import build_td1, mrz_name
from edge_agent.cccd.qr import format_card_qr
from edge_agent.icao import tlv
from tests.synthetic import Person, dg13_for, people

SETTINGS = settings(max_examples=300, deadline=500,
                    suppress_health_check=[HealthCheck.too_slow])
mrz_chars = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<", min_size=30, max_size=30)


@SETTINGS
@given(st.binary(max_size=600))
def test_qr_bytes_raise_only_qr_error(data: bytes) -> None:
    try:
        parse_qr(data)
    except QrError:
        pass


@SETTINGS
@given(st.lists(st.text(max_size=20), min_size=1, max_size=12))
def test_qr_field_soup_raises_only_qr_error(parts: list[str]) -> None:
    try:
        parse_qr("|".join(parts))
    except QrError:
        pass


@SETTINGS
@given(st.binary(max_size=600))
def test_dg13_bytes_raise_only_dg13_error(data: bytes) -> None:
    try:
        parse_dg13(data)
    except Dg13Error:
        pass


@SETTINGS
@given(people(), st.data())
def test_dg13_mutations_raise_only_dg13_error(person: Person, data: st.DataObject) -> None:
    raw = bytearray(dg13_for(person))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        parse_dg13(bytes(raw))
    except Dg13Error:
        pass


@SETTINGS
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_mrz_any_text_raises_only_mrz_error(a: str, b: str, c: str) -> None:
    try:
        parse_td1(a, b, c)
    except MrzError:
        pass


@SETTINGS
@given(mrz_chars, mrz_chars, mrz_chars)
def test_mrz_well_shaped_noise_raises_only_mrz_error(a: str, b: str, c: str) -> None:
    try:
        parse_td1(a, b, c)
    except MrzError:
        pass


@SETTINGS
@given(st.text(max_size=30))
def test_id_number_any_text(text: str) -> None:
    try:
        parse_id_number(text)
    except CccdError:
        pass


@SETTINGS
@given(st.binary(max_size=2000))
def test_tlv_reads_at_most_one_element_per_byte(data: bytes) -> None:
    calls = 0
    original = tlv.read_tlv

    def counting(*args: object, **kwargs: object) -> tlv.Tlv:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    tlv.read_tlv = counting  # type: ignore[assignment]
    try:
        parse_dg13(data)
    except Dg13Error:
        pass
    finally:
        tlv.read_tlv = original
    assert calls <= max(1, len(data))


def test_deep_nesting_is_bounded() -> None:
    data = b""
    for _ in range(5000):
        data = tlv.encode_tlv(0x30, data)
    data = tlv.encode_tlv(0x6D, data)
    try:
        parse_dg13(data)
    except Dg13Error as exc:
        assert "structure" in str(exc) or "nesting" in str(exc)


def test_huge_field_counts_are_handled() -> None:
    try:
        parse_qr("|" * 4000)
    except QrError as exc:
        assert exc.field is not None
    long_name = "079303001234||" + "Mai " * 900 + "|15052003|Nữ|Hà Nội|20082021"
    assert parse_qr(long_name).id_text == "079303001234"


# Round trips with synthetic people -------------------------------------------------------------


@SETTINGS
@given(people())
def test_card_qr_round_trip(person: Person) -> None:
    payload = format_card_qr(person.id_number, person.full_name, person.date_of_birth,
                             person.sex, person.address, person.issue_date,
                             old_id_number=person.old_id_number)
    qr = parse_qr(payload.encode("utf-8") + b"\r\n")
    assert qr.id_text == person.id_number
    assert qr.full_name == person.full_name
    assert qr.date_of_birth == person.date_of_birth
    assert qr.sex is person.sex
    assert qr.issue_date == person.issue_date
    assert qr.old_id_number == (person.old_id_number or None)
    assert qr.can == person.id_number[-6:]
    assert qr.bac_candidates, "a card QR always yields at least one BAC key"
    assert all(k.document_number == person.id_number[3:] for k in qr.bac_candidates)


@SETTINGS
@given(people())
def test_mrz_round_trip_and_bac_key_matches(person: Person) -> None:
    expiry = expiry_candidates(person.date_of_birth, person.issue_date)[0]
    lines = build_td1(person.id_number, person.date_of_birth, person.sex, expiry,
                      person.surname, person.given_names)
    mrz = parse_td1(*lines)
    assert mrz.id_number is not None and mrz.id_number.value == person.id_number
    assert mrz.date_of_birth == person.date_of_birth
    assert mrz.date_of_expiry == expiry
    assert mrz.surname == mrz_name(person.surname).replace("<", " ")
    qr = parse_qr(format_card_qr(person.id_number, person.full_name, person.date_of_birth,
                                 person.sex, person.address, person.issue_date))
    first = qr.bac_candidates[0]
    assert (first.document_number, first.date_of_birth, first.date_of_expiry) == (
        mrz.document_number, lines[1][0:6], lines[1][8:14])


@SETTINGS
@given(people(), st.sampled_from(["nested", "siblings"]), st.none() | st.just("Lê Văn Chồng"))
def test_dg13_round_trip(person: Person, layout: str, spouse: str | None) -> None:
    data = dg13_for(person, layout=layout, spouse=spouse)
    dg13 = parse_dg13(data)
    assert dg13.id_number == person.id_number
    assert dg13.full_name == person.full_name
    assert dg13.date_of_birth_value() == person.date_of_birth
    assert dg13.sex_code == person.sex.value
    assert dg13.spouse_name == spouse
    assert dg13.old_id_number == (person.old_id_number or None)
    assert dg13.raw == data


def test_expiry_is_never_before_issue() -> None:
    for year in range(1930, 2024, 3):
        for issued in (date(2021, 1, 1), date(2024, 7, 1), date(2026, 6, 1)):
            born = date(year, 6, 15)
            if issued < born:
                continue
            for expiry in expiry_candidates(born, issued):
                assert expiry is None or expiry > issued


# -- DG13 values nested at any depth (docs/cccd.md §4) ----------------------------------------

def _nest(draw: st.DrawFn, leaves: list[str], depth: int) -> bytes:
    """Encode ``leaves`` as UTF8Strings, wrapped in SEQUENCEs in a random tree shape."""
    if len(leaves) == 0:
        return b""
    if depth == 0 or draw(st.booleans()):
        return b"".join(tlv.encode_tlv(0x0C, leaf.encode()) for leaf in leaves)
    cut = draw(st.integers(0, len(leaves)))
    return (tlv.encode_tlv(0x30, _nest(draw, leaves[:cut], depth - 1))
            + _nest(draw, leaves[cut:], depth - 1))


@st.composite
def nested_values(draw: st.DrawFn) -> tuple[list[str], bytes]:
    leaves = draw(st.lists(st.text(alphabet="abcđêơư ", min_size=1, max_size=8)
                           .filter(lambda t: t.strip() == t and t), min_size=1, max_size=5))
    return leaves, _nest(draw, leaves, draw(st.integers(0, 6)))


@SETTINGS
@given(nested_values())
def test_dg13_string_leaves_are_collected_in_order(value: tuple[list[str], bytes]) -> None:
    leaves, encoded = value
    field_1 = tlv.encode_tlv(0x30, tlv.encode_tlv(0x02, b"\x01")
                             + tlv.encode_tlv(0x13, b"079303001234"))
    field_9 = tlv.encode_tlv(0x30, tlv.encode_tlv(0x02, b"\x09") + encoded)
    body = (tlv.encode_tlv(0x02, b"\x01") + tlv.encode_tlv(0x06, bytes.fromhex("28D316010008"))
            + tlv.encode_tlv(0x31, field_1 + field_9))
    dg13 = parse_dg13(tlv.encode_tlv(0x6D, tlv.encode_tlv(0x30, body)), strict=True)
    assert dg13.residence == " ".join(leaves)
    assert dg13.id_number == "079303001234"
