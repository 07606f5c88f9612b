"""Every value the wire schemas allow fits the column it is stored in, on SQLite and PostgreSQL.

The test walks the schemas (``wire/*.schema.json``) and the SQLAlchemy models
(``central/db/models.py``) side by side: the longest string a member's ``maxLength``,
``pattern``, ``enum`` or ``const`` allows is at most the column's length; an integer's
``maximum``/``minimum`` lie within the column's range (JSON members: within 2^53 − 1, what every
JSON reader keeps exact); a time or date that matches its pattern is either refused by the
ingest's parser (a ``schema`` rejection) or a UTC instant both databases store. A member written
to a column but missing from the walk fails the completeness check, so a new member or a
widened pattern cannot slip past (docs/protocol.md §4.10).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from re import _parser as sre_parse  # type: ignore[attr-defined]  # longest match of a pattern
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Date, DateTime, Integer, String
from sqlalchemy.orm import InstrumentedAttribute

from central.db.models import Device, Event, Stay
from central.ingest.store import _event_row
from central.ingest.validate import BadTime, Incoming, ValidEvent, parse_date, parse_time
from wire import load_schema

JSON_SAFE = 2**53 - 1
RANGES = {Integer: 2**31 - 1, BigInteger: 2**63 - 1}

EVENT = load_schema("event.v1")
STATUS = load_schema("status.v1")
JSON = object()  # stored inside a JSON column
UNSTORED = object()  # checked (signature, sealed box), not stored as such

# (schema, JSON pointer of the member's schema) → column (or JSON / UNSTORED)
WALK: list[tuple[dict[str, Any], str, Any]] = [
    (EVENT, "/properties/event_id", Event.event_id),
    (EVENT, "/properties/device_id", Event.device_id),
    (EVENT, "/properties/site_id", Event.site_id),
    (EVENT, "/properties/seq", Event.seq),
    (EVENT, "/properties/occurred_at", Event.occurred_at),
    (EVENT, "/properties/kind", Event.kind),
    (EVENT, "/properties/method", Event.method),
    (EVENT, "/properties/assurance", Event.assurance),
    (EVENT, "/properties/subject", Event.subject),
    (EVENT, "/properties/count", Event.count),
    (EVENT, "/properties/demographics/properties/age_band", Event.age_band),
    (EVENT, "/properties/demographics/properties/sex", Event.sex),
    (EVENT, "/properties/demographics/properties/birth_province", Event.birth_province),
    (EVENT, "/properties/reason", Event.reason),
    (EVENT, "/properties/details", JSON),
    (EVENT, "/properties/sig", Event.sig),
    (EVENT, "/properties/training", JSON),  # stored as details.training (protocol §4.13)
    (EVENT, "/properties/v", UNSTORED),
    (EVENT, "/properties/sealed", UNSTORED),
    (EVENT, "/properties/subject_sealed", UNSTORED),  # opened, keyed into subject
    (EVENT, "/$defs/manual_reason", Event.reason),
    (EVENT, "/$defs/rejected_reason", Event.reason),
    (EVENT, "/$defs/details_stay/properties/stay_id", Stay.stay_id),
    (EVENT, "/$defs/details_stay/properties/ward_or_room", Stay.ward_or_room),
    (EVENT, "/$defs/details_stay/properties/expected_departure", Stay.expected_departure),
    (EVENT, "/$defs/details_stay/properties/reason_code", Stay.reason_code),
    (EVENT, "/properties/subject", Stay.subject),
    (EVENT, "/properties/site_id", Stay.site_id),
    (EVENT, "/properties/device_id", Stay.device_id),
    (EVENT, "/properties/occurred_at", Stay.started_at),
    (STATUS, "/$defs/online/properties/version", Device.version),
    (STATUS, "/$defs/offline/properties/version", Device.version),
    (STATUS, "/$defs/online/properties/outbox_depth", Device.outbox_depth),
    (STATUS, "/$defs/online/properties/oldest_undelivered_at", Device.oldest_undelivered_at),
    (STATUS, "/$defs/online/properties/at", JSON),
    (STATUS, "/$defs/online/properties/last_seq", JSON),
    (STATUS, "/$defs/online/properties/uptime_s", JSON),
    (STATUS, "/$defs/online/properties/heartbeat_s", JSON),
    (STATUS, "/$defs/online/properties/outbox_bytes", JSON),
    (STATUS, "/$defs/online/properties/readers", JSON),
    (STATUS, "/$defs/online/properties/scanners", JSON),
    (STATUS, "/$defs/online/properties/unreceipted", JSON),
    (STATUS, "/$defs/online/properties/oldest_unreceipted_at", JSON),
]


def _pointer(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = schema
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return _resolve(schema, node)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _pointer(schema, node["$ref"].removeprefix("#"))
    return node


def _alternatives(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The member's schema, or each branch of a ``oneOf``/``anyOf`` (e.g. null or a time)."""
    node = _resolve(schema, node)
    branches = node.get("oneOf") or node.get("anyOf")
    if branches:
        return [alt for b in branches for alt in _alternatives(schema, b)]
    return [node]


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("type")
    if t is None:
        values = node.get("enum", [node["const"]] if "const" in node else [])
        return {"string" if isinstance(v, str) else "integer" if isinstance(v, int)
                else "null" for v in values}
    return {t} if isinstance(t, str) else set(t)


def longest(node: dict[str, Any]) -> int | None:
    """The longest string a node allows (None: unbounded)."""
    bounds: list[int] = []
    if "maxLength" in node:
        bounds.append(int(node["maxLength"]))
    if "pattern" in node:
        pattern = node["pattern"]
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        high = sre_parse.parse(pattern).getwidth()[1]
        if high < 2**16:  # sre's "unbounded" is MAXREPEAT
            bounds.append(high)
    values = node.get("enum", [node["const"]] if "const" in node else None)
    if values is not None:
        bounds.append(max((len(v) for v in values if isinstance(v, str)), default=0))
    return min(bounds) if bounds else None


def _is_time(node: dict[str, Any]) -> bool:
    return bool(node.get("pattern") == EVENT["$defs"]["timestamp"]["pattern"])


def _is_date(node: dict[str, Any]) -> bool:
    return bool(node.get("pattern") == EVENT["$defs"]["date"]["pattern"])


@pytest.mark.parametrize(("schema", "pointer", "column"), WALK,
                         ids=[f"{s['$id'].split(':')[-2]}{p}" for s, p, _ in WALK])
def test_every_schema_value_fits_its_column(schema: dict[str, Any], pointer: str,
                                            column: Any) -> None:
    for node in _alternatives(schema, _pointer(schema, pointer)):
        types = _types(node)
        if column is UNSTORED or types <= {"null"}:
            continue
        if column is JSON:
            if "integer" in types:
                assert node.get("maximum", JSON_SAFE + 1) <= JSON_SAFE, (pointer, node)
            continue
        assert isinstance(column, InstrumentedAttribute)
        col = column.property.columns[0]
        if "integer" in types:
            kind = next(k for k in RANGES if type(col.type) is k)
            assert "maximum" in node, f"{pointer}: integer without a maximum"
            assert node["maximum"] <= RANGES[kind], (pointer, node["maximum"], col.type)
            assert node.get("minimum", -RANGES[kind] - 2) >= -RANGES[kind] - 1, pointer
        elif _is_time(node):
            assert isinstance(col.type, DateTime) and col.type.timezone, (pointer, col.type)
        elif _is_date(node):
            assert isinstance(col.type, Date), (pointer, col.type)
        elif "string" in types:
            assert isinstance(col.type, String) and col.type.length is not None, pointer
            high = longest(node)
            assert high is not None, f"{pointer}: string without a bound"
            assert high <= col.type.length, (pointer, high, col.type.length)
            # PostgreSQL text refuses NUL: free text needs a pattern that excludes it.
            assert "enum" in node or "const" in node or "pattern" in node, pointer
            if "pattern" in node:
                assert not any(re.fullmatch(node["pattern"], "\x00" * n)
                               for n in range(1, high + 1)), pointer
        else:
            raise AssertionError(f"{pointer}: type {types} not walked")


def test_the_walk_covers_every_column_the_store_writes() -> None:
    """``_event_row`` writes these columns: each is in the walk (or derived by the collector)."""
    walked = {c.key for _s, _p, c in WALK if isinstance(c, InstrumentedAttribute)
              and c.class_ is Event}
    derived = {"received_at", "details"}  # the collector's clock; the JSON column
    message: dict[str, Any] = dict.fromkeys(EVENT["properties"])
    message.update(seq=1, demographics=dict.fromkeys(("age_band", "sex", "birth_province")))
    now = datetime.now(UTC)
    row = _event_row(ValidEvent(message, now, now, None, Incoming("t", b"")))
    row_columns = set(row)
    assert row_columns <= {c.key for c in Event.__table__.columns}
    assert row_columns - derived <= walked, sorted(row_columns - derived - walked)
    every_event_member = set(EVENT["properties"])
    assert every_event_member <= {p.split("/")[2] for s, p, _ in WALK
                                  if s is EVENT and p.startswith("/properties/")}
    online = set(STATUS["$defs"]["online"]["properties"]) - {"v", "state", "device_id",
                                                              "site_id", "sig"}
    assert online <= {p.split("/")[4] for s, p, _ in WALK if s is STATUS and "online" in p}


def test_longest_reads_patterns_enums_and_max_length() -> None:
    assert longest({"pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"}) == 64
    assert longest({"enum": ["chip", "card-qr", None]}) == 7
    assert longest({"pattern": "^[0-9]{3}$", "maxLength": 2}) == 2
    assert longest({"pattern": "^[a-z]+$"}) is None


TIME = EVENT["$defs"]["timestamp"]["pattern"]
DATE = EVENT["$defs"]["date"]["pattern"]
FLOOR = datetime(1, 1, 1, tzinfo=UTC)
CEILING = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.from_regex(TIME, fullmatch=True),
                 st.sampled_from(["2026-02-31T10:00:00Z", "0000-01-01T00:00:00Z",
                                  "0001-01-01T00:00:00+23:00", "9999-12-31T23:59:59-23:59",
                                  "9999-12-31T23:59:59.999999-00:01",
                                  "0001-01-01T00:00:00.000001+00:01"])))
def test_every_time_the_pattern_allows_is_refused_or_storable(text: str) -> None:
    assert re.fullmatch(TIME, text)
    try:
        value = parse_time(text)
    except BadTime:
        return
    assert value.tzinfo is UTC or value.utcoffset() == timedelta(0)
    assert FLOOR <= value <= CEILING  # PostgreSQL timestamptz and SQLite text both hold it


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.from_regex(DATE, fullmatch=True),
                 st.sampled_from(["2026-02-31", "0000-01-01", "2025-04-31"])))
def test_every_date_the_pattern_allows_is_refused_or_storable(text: str) -> None:
    try:
        value = parse_date(text)
    except BadTime:
        return
    assert 1 <= value.year <= 9999
