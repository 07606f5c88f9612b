"""The wire contract both sides import (docs/design.md §2; docs/protocol.md).

The agent and the collector meet only on the wire; what both must agree on is written once,
here, and this package imports neither ``edge_agent`` nor ``central``:

* :mod:`wire.schemas` — the JSON Schemas of every message and their validator
  (``load_schema``, ``validate``, ``parse_message``, re-exported here and loaded on first use);
* :mod:`wire.signing` — canonical JSON, base64url and Ed25519 signatures (§4.8);
* :mod:`wire.sealing` — the sealed box of ``stay.*`` personal data and its constants (§4.7);
* :mod:`wire.topics` — topic names and the collector's topic parser (§3);
* :mod:`wire.kinds` — the ``kind``, ``method`` and ``assurance`` enumerations (§4.2, §4.3);
* :mod:`wire.masking` — ID numbers as screens and logs may show them;
* :mod:`wire.errors` — :class:`WireError`, the root of every error of the package.

Schema names: ``event.v1``, ``status.v1``, ``occupancy.v1``, ``config.v1`` and
``stay-personal.v1`` (the plaintext inside a sealed box). The version suffix may be omitted
(``"event"`` means ``event.v1``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wire.errors import WireError
from wire.topics import (
    TOPIC_PREFIX,
    config_topic,
    events_topic,
    occupancy_topic,
    status_topic,
)

if TYPE_CHECKING:
    from wire.schemas import (
        MAX_PAYLOAD_BYTES,
        SCHEMA_NAMES,
        load_schema,
        parse_message,
        validate,
    )

__all__ = [
    "MAX_PAYLOAD_BYTES", "SCHEMA_NAMES", "TOPIC_PREFIX", "WireError", "config_topic",
    "events_topic", "load_schema", "occupancy_topic", "parse_message", "status_topic",
    "validate",
]

_FROM_SCHEMAS = frozenset({"MAX_PAYLOAD_BYTES", "SCHEMA_NAMES", "load_schema", "parse_message",
                           "validate"})


def __getattr__(name: str) -> Any:
    """The schema API, imported on first use (jsonschema and fastjsonschema load only then)."""
    if name in _FROM_SCHEMAS:
        return getattr(importlib.import_module("wire.schemas"), name)
    raise AttributeError(f"module 'wire' has no attribute {name!r}")
