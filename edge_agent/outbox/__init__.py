"""The durable, bounded, ordered outbox of signed events (docs/design.md §2.1 "Outbox").

SQLite in WAL mode with ``synchronous=FULL``; see :mod:`edge_agent.outbox.store` for the
transaction, the bound and the on-full policy (stays are never refused).
"""

from edge_agent.outbox.builder import payload_builder
from edge_agent.outbox.errors import (
    OutboxCorruptError,
    OutboxDiskFullError,
    OutboxError,
    OutboxFullError,
)
from edge_agent.outbox.store import OnFull, Outbox, OutboxCounts, OutboxEntry
from wire.signing import wire_bytes

__all__ = [
    "OnFull",
    "Outbox",
    "OutboxCorruptError",
    "OutboxCounts",
    "OutboxDiskFullError",
    "OutboxEntry",
    "OutboxError",
    "OutboxFullError",
    "payload_builder",
    "wire_bytes",
]
