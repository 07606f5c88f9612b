"""The wire contract as data: JSON Schemas of every MQTT message (docs/protocol.md).

Both the collector's ingest and the agent's tests load the same files (DESIGN.md §2: the wire
contract is written once). This package imports nothing from ``edge_agent`` (DESIGN.md §2
dependency direction).

``load_schema(name)`` returns a schema as a dict; ``validate(name, obj)`` raises
:class:`WireError` naming the JSON path of the first problem and the reason;
``parse_message(name, payload)`` does the size check and the JSON decoding first.

Schema names: ``event.v1``, ``status.v1``, ``occupancy.v1``, ``config.v1`` and
``stay-personal.v1`` (the plaintext inside a sealed box). The version suffix may be omitted
(``"event"`` means ``event.v1``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, cast

import fastjsonschema  # type: ignore[import-untyped, unused-ignore]
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ValidationError,
    best_match,
)

__all__ = [
    "MAX_PAYLOAD_BYTES", "SCHEMA_NAMES", "TOPIC_PREFIX", "WireError", "config_topic",
    "events_topic", "load_schema", "occupancy_topic", "parse_message", "status_topic",
    "validate",
]

MAX_PAYLOAD_BYTES = 16 * 1024
"""Largest MQTT payload of any message in this contract (docs/protocol.md §9)."""

TOPIC_PREFIX = "checkin/v1"
SCHEMA_NAMES = ("event.v1", "status.v1", "occupancy.v1", "config.v1", "stay-personal.v1")


class WireError(ValueError):
    """A message that breaks the wire contract.

    ``path`` is a JSON path into the message (``$`` for the whole message, ``$.details.insurance``
    for a member); ``reason`` says what is wrong in words an integrator can act on.
    """

    def __init__(self, path: str, reason: str, *, schema: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.schema = schema
        super().__init__(f"{path}: {reason}")


def _canonical_name(name: str) -> str:
    full = name if "." in name.removesuffix(".schema.json") else f"{name}.v1"
    full = full.removesuffix(".schema.json")
    if full not in SCHEMA_NAMES:
        raise KeyError(f"no wire schema {name!r} (known: {', '.join(SCHEMA_NAMES)})")
    return full


@cache
def _load_text(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the named schema (e.g. ``"event.v1"``)."""
    schema: dict[str, Any] = json.loads(_load_text(_canonical_name(name)))
    return schema


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _json_path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _relevance(error: ValidationError) -> tuple[int, int]:
    # Prefer the deepest error: "$.details.insurance: 'x' is not one of ..." beats a
    # "$: does not match the 'then' branch" summary.
    return (len(error.absolute_path), -len(error.absolute_schema_path))


def _reason(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        return f"unknown member ({error.message})"
    if error.validator == "const":
        return f"must be {json.dumps(error.validator_value, ensure_ascii=False)}"
    if error.validator == "type" and error.validator_value == "null":
        return "must be null for this kind"
    message: str = error.message
    return message.replace("None", "null")


@cache
def _fast_validator(name: str) -> Callable[[Any], Any] | None:
    """The schema compiled to Python code (fastjsonschema), used only to ACCEPT quickly.

    Every keyword the wire schemas use exists in draft 7, which fastjsonschema implements; a
    differential property test (tests/unit/test_wire_fast_path.py) shows it never accepts what
    the reference validator rejects. Anything it rejects goes to the reference validator, which
    gives the path and reason (and has the last word).
    """
    try:
        return cast(Callable[[Any], Any],
                    fastjsonschema.compile(_draft7_refs(load_schema(name))))
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


def _draft7_refs(node: Any) -> Any:
    """Draft 7 ignores the keywords beside a ``$ref``; draft 2020-12 applies them. Rewrite
    ``{"$ref": r, ...}`` as ``{"allOf": [{"$ref": r}, {...}]}``, which means the same in both."""
    if isinstance(node, list):
        return [_draft7_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _draft7_refs(value) for key, value in node.items()}
    if "$ref" in rewritten and len(rewritten) > 1:
        ref = rewritten.pop("$ref")
        keep = {k: rewritten.pop(k) for k in ("$id", "$schema", "$defs") if k in rewritten}
        return {**keep, "allOf": [{"$ref": ref}, rewritten]}
    return rewritten


def validate(name: str, obj: Any) -> None:
    """Raise :class:`WireError` unless ``obj`` matches the named schema."""
    canonical = _canonical_name(name)
    fast = _fast_validator(canonical)
    if fast is not None:
        try:
            fast(obj)
            return
        except fastjsonschema.JsonSchemaValueException:
            pass
    errors = list(_validator(canonical).iter_errors(obj))
    if not errors:
        return
    leaves: list[ValidationError] = []
    for error in errors:
        stack = [error]
        while stack:
            current = stack.pop()
            if current.context:
                stack.extend(current.context)
            else:
                leaves.append(current)
    chosen = best_match(errors)
    deepest = max(leaves, key=_relevance)
    if len(deepest.absolute_path) > len(chosen.absolute_path):
        chosen = deepest
    raise WireError(_json_path(chosen), _reason(chosen), schema=canonical)


def parse_message(name: str, payload: bytes) -> dict[str, Any]:
    """Decode one MQTT payload (UTF-8 JSON object within the size limit) and validate it."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("$", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}",
                        schema=name)
    try:
        obj = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise WireError("$", "payload is not UTF-8", schema=name) from None
    except json.JSONDecodeError as exc:
        raise WireError("$", f"payload is not JSON ({exc.msg} at {exc.pos})",
                        schema=name) from None
    if not isinstance(obj, dict):
        raise WireError("$", "payload is not a JSON object", schema=name)
    validate(name, obj)
    return obj


def _check_name(value: str, what: str) -> str:
    if not value or any(c in value for c in "/+#") or value != value.strip():
        raise WireError("$", f"{what} {value!r} cannot be a topic level")
    return value


def events_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/events`` (QoS 1, not retained)."""
    return f"{TOPIC_PREFIX}/{_check_name(device_id, 'device id')}/events"


def status_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/status`` (retained; the last will lives here)."""
    return f"{TOPIC_PREFIX}/{_check_name(device_id, 'device id')}/status"


def config_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/config`` (retained, central → device)."""
    return f"{TOPIC_PREFIX}/{_check_name(device_id, 'device id')}/config"


def occupancy_topic(site_id: str) -> str:
    """``checkin/v1/sites/<site_id>/occupancy`` (retained, central → devices)."""
    return f"{TOPIC_PREFIX}/sites/{_check_name(site_id, 'site id')}/occupancy"
