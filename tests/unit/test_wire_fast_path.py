"""The compiled fast path of wire never accepts what the reference validator rejects.

Events of every kind (tests/unit/test_protocol.py) are mutated at random — members removed,
replaced by values of other types, enumerations and patterns broken, unknown members added —
and whenever fastjsonschema accepts a message, jsonschema (draft 2020-12) must accept it too.
The fast path compiles one schema per (kind, method) with the ``if`` branches on those members
decided in advance; the mutations change kind and method too, so every specialisation the
messages reach is compared with the reference on the unspecialised schema.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.unit.test_protocol import VALID_DRAFTS, wire
from wire.schemas import _discriminants, _fast_accepts, _fast_validator, load_schema, validate

EVENTS = [wire(d) for d in VALID_DRAFTS.values()]
REFERENCE = Draft202012Validator(load_schema("event.v1"))
FAST = _fast_validator("event.v1")

values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=False),
    st.text(max_size=40), st.sampled_from(["entry", "exit", "visit", "stay.start", "manual",
                                           "rejected", "chip", "card-qr", "qr", "F", "M", "079",
                                           "60+", "2025-04-30T09:15:02.000+07:00", "x" * 100]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=8), st.integers(),
                                                          max_size=3))


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out += paths(value, (*prefix, index))
    return out


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_path_is_never_laxer(data: st.DataObject) -> None:
    assert FAST is not None
    event = copy.deepcopy(data.draw(st.sampled_from(EVENTS)))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths(event)))
        parent = event
        for step in where[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            parent.pop(where[-1], None)
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=10))] = data.draw(values)
        else:
            parent[where[-1]] = data.draw(values)
    if not _fast_accepts("event.v1", event):
        return  # the reference validator decides, through validate()'s slow path
    errors = list(REFERENCE.iter_errors(event))
    assert not errors, f"fast path accepted an invalid event: {errors[0].message}"


def test_valid_events_take_the_fast_path() -> None:
    assert FAST is not None
    for event in EVENTS:
        FAST(event)
        assert _fast_accepts("event.v1", event)
        validate("event", event)


def test_specialised_schemas_are_decided_on_kind_and_method() -> None:
    members = dict(_discriminants("event.v1"))
    assert set(members) == {"kind", "method"}
    assert {"entry", "exit", "visit", "stay.start", "stay.end", "manual", "rejected"} <= \
        members["kind"]
    # An unexpected value gets the general schema (a bounded number of compilations).
    odd = dict(EVENTS[0], kind="x" * 30)
    assert not _fast_accepts("event.v1", odd)
    assert _fast_validator.cache_info().currsize <= 1 + len(members["kind"]) * (
        1 + len(members["method"]))
