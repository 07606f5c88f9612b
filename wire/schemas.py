"""The wire contract as data: JSON Schemas of every MQTT message (docs/protocol.md).

Both the collector's ingest and the agent's tests load the same files (docs/design.md §2: the
wire contract is written once); the schema files sit beside this module in the ``wire``
package. Imported on first use through :mod:`wire` (``from wire import validate``), so code that
needs only signing, sealing, topics or masking does not load the JSON Schema libraries.

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

from wire.errors import WireError

__all__ = [
    "MAX_PAYLOAD_BYTES", "SCHEMA_NAMES", "WireError", "load_schema", "parse_message", "validate",
]

MAX_PAYLOAD_BYTES = 16 * 1024
"""Largest MQTT payload of any message in this contract (docs/protocol.md §9)."""

SCHEMA_NAMES = ("event.v1", "status.v1", "occupancy.v1", "config.v1", "stay-personal.v1",
                "receipt.v2")


def _canonical_name(name: str) -> str:
    full = name if "." in name.removesuffix(".schema.json") else f"{name}.v1"
    full = full.removesuffix(".schema.json")
    if full not in SCHEMA_NAMES:
        raise KeyError(f"no wire schema {name!r} (known: {', '.join(SCHEMA_NAMES)})")
    return full


@cache
def _load_text(name: str) -> str:
    return resources.files("wire").joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


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
def _fast_validator(name: str, fixed: tuple[tuple[str, str], ...] = ()
                    ) -> Callable[[Any], Any] | None:
    """The schema compiled to Python code (fastjsonschema), used only to ACCEPT quickly.

    Every keyword the wire schemas use exists in draft 7, which fastjsonschema implements; a
    differential property test (tests/unit/test_wire_fast_path.py) shows it never accepts what
    the reference validator rejects. Anything it rejects goes to the reference validator, which
    gives the path and reason (and has the last word).

    ``fixed`` (member, value) pairs specialise the schema for messages whose top-level members
    have those values (:func:`_specialise`): the ``if`` branches that test them are decided
    once, at compile time, instead of for every message.
    """
    schema = load_schema(name)
    if fixed:
        schema = _specialise(schema, schema.get("$defs", {}), dict(fixed))
    try:
        return cast(Callable[[Any], Any], fastjsonschema.compile(_draft7_refs(schema)))
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


def _member_test(node: Any) -> tuple[str, list[Any]] | None:
    """``{"properties": {m: {"const": c} | {"enum": [...]}}, "required": [m]}`` → (m, values)."""
    if not isinstance(node, dict) or set(node) != {"properties", "required"}:
        return None
    props = node["properties"]
    if not isinstance(props, dict) or len(props) != 1 or node["required"] != list(props):
        return None
    ((member, test),) = props.items()
    if isinstance(test, dict) and set(test) == {"const"}:
        return member, [test["const"]]
    if isinstance(test, dict) and set(test) == {"enum"} and isinstance(test["enum"], list):
        return member, list(test["enum"])
    return None


def _root_nodes(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The subschemas that apply to the root instance through ``allOf``, ``$ref``, ``then``
    and ``else`` (where a top-level member test is meaningful)."""
    out: list[dict[str, Any]] = []
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or any(node is seen for seen in out):
            continue
        out.append(node)
        stack.extend(node.get("allOf", []))
        stack.extend(node[k] for k in ("then", "else") if k in node)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            stack.append(defs[ref[8:]])
    return out


@cache
def _discriminants(name: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """Top-level members that ``if`` branches test, with the string values they test for."""
    schema = load_schema(name)
    found: dict[str, set[str]] = {}
    for node in _root_nodes(schema, schema.get("$defs", {})):
        test = _member_test(node.get("if"))
        if test is not None:
            found.setdefault(test[0], set()).update(v for v in test[1] if isinstance(v, str))
    return tuple((m, frozenset(v)) for m, v in sorted(found.items()))


def _specialise(node: Any, defs: dict[str, Any], fixed: dict[str, str]) -> Any:
    """Partial evaluation of ``node`` for a root instance whose members ``fixed`` hold strings.

    An ``if`` that only tests one fixed member's value (:func:`_member_test`) is true exactly
    when the value is among those it lists, so ``{"if": c, "then": t, "else": e}`` becomes
    ``t`` or ``e`` (``{}`` when absent). Only nodes applied to the root instance are rewritten
    (``allOf``, ``then``/``else`` and ``$ref`` to a ``$defs`` entry holding only ``allOf``); a
    ``$ref`` elsewhere is left as it is. Anything else in the schema is unchanged.
    """
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) == 1 and ref.startswith("#/$defs/"):
        target = defs.get(ref[8:])
        if isinstance(target, dict) and set(target) <= {"allOf", "description"}:
            return {"allOf": [_specialise(x, defs, fixed) for x in target.get("allOf", [])]}
        return node
    out = dict(node)
    test = _member_test(out.get("if"))
    if test is not None and test[0] in fixed:
        branch = out.get("then", {}) if fixed[test[0]] in test[1] else out.get("else", {})
        rest = {k: v for k, v in out.items() if k not in ("if", "then", "else")}
        decided = _specialise(branch, defs, fixed)
        return {"allOf": [_specialise(rest, defs, fixed), decided]} if rest else decided
    if "allOf" in out:
        out["allOf"] = [_specialise(x, defs, fixed) for x in out["allOf"]]
    return out


def _fast_accepts(name: str, obj: Any) -> bool:
    """True if the compiled fast path accepts ``obj`` (False means: ask the reference)."""
    fixed: tuple[tuple[str, str], ...] = ()
    if isinstance(obj, dict):
        pairs = []
        for member, values in _discriminants(name):
            value = obj.get(member)
            if isinstance(value, str) and value in values:  # a bounded set of compilations
                pairs.append((member, value))
        fixed = tuple(pairs)
    fast = _fast_validator(name, fixed)
    if fast is None:
        return False
    try:
        fast(obj)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


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
    if _fast_accepts(canonical, obj):
        return
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
