"""Re-key stored subjects from the legacy value ``p`` to the centre's ``s`` (docs/privacy.md §3,
docs/operations.md "Retiring the province subject key").

A database written before the centre subject key existed holds ``p = HMAC(province key, ID)``
in ``events.subject``, ``presences.subject`` and ``stays.subject``. Once the collector keys
subjects with the centre subject key, every new row holds ``s = HMAC(centre key, p)``
(:mod:`central.subjects`); this converts the old rows so an exit pairs with an entry stored
before the upgrade and unique people are counted once.

Idempotent by construction, with no marker table: a stored ``s`` starts with ``s`` (never a hex
digit), so only rows still holding a 32-hex ``p`` are touched. Running it twice, or again
after an interruption, converts what is left and changes nothing else. It walks each table in
primary-key order in batches, one transaction per batch, so it can run beside a stopped or a
running collector (rows the collector writes meanwhile are already ``s``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, and_, bindparam, select, tuple_, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.schema import Table

from central.db.models import Event, Presence, Stay
from central.subjects import LEGACY, SubjectKeys

TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    # (device_id, seq) is unique in events: the dedupe ledger event_keys holds it once.
    (cast(Table, Event.__table__), ("device_id", "seq")),
    (cast(Table, Presence.__table__), ("id",)),
    (cast(Table, Stay.__table__), ("stay_id",)),
)
"""Every table that stores a subject, with the unique key the walk orders by."""


@dataclass(frozen=True)
class RekeyReport:
    """Rows converted per table, and rows already holding the centre's subject."""

    converted: dict[str, int]
    already: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.converted.values())


def rekey_subjects(engine: Engine, keys: SubjectKeys, *, batch: int = 5000,
                   progress: Callable[[str, int], None] | None = None) -> RekeyReport:
    """Convert every legacy subject to the centre's; see the module docstring."""
    converted: dict[str, int] = {}
    already: dict[str, int] = {}
    for table, key_names in TABLES:
        key: list[Column[Any]] = [table.c[name] for name in key_names]
        subject: Column[Any] = table.c.subject
        converted[table.name] = already[table.name] = 0
        last: tuple[Any, ...] | None = None
        stmt = (update(table)
                .where(and_(*(k == bindparam(f"k{i}") for i, k in enumerate(key))),
                       subject == bindparam("old"))
                .values(subject=bindparam("new")))
        width = len(key)
        while True:
            query = (select(*key, subject).where(subject.is_not(None)).order_by(*key)
                     .limit(batch))
            if last is not None:
                query = query.where(tuple_(*key) > tuple_(*last) if width > 1
                                    else key[0] > last[0])
            with engine.begin() as conn:
                rows = conn.execute(query).all()
                if not rows:
                    break
                last = tuple(rows[-1][:width])
                todo = [{**{f"k{i}": row[i] for i in range(width)}, "old": row[width],
                         "new": keys.stored(row[width])} for row in rows
                        if LEGACY.fullmatch(row[width])]
                if todo:
                    conn.execute(stmt, todo)
            converted[table.name] += len(todo)
            already[table.name] += len(rows) - len(todo)
            if progress is not None:
                progress(table.name, converted[table.name])
    return RekeyReport(converted, already)
