"""Monthly partitions of ``events`` on PostgreSQL (docs/operations.md §7, docs/scaling.md).

``events`` is partitioned by RANGE on ``occurred_at``, one partition per calendar month in UTC
(``events_pYYYYMM``, bounds ``[first instant of the month, first instant of the next)``), plus
``events_default`` for anything no month partition holds. ``occurred_at`` is the column every
reader of the table uses: the rollups count by it, the purge ages by it, the ingest bounds it
(``too-old`` beyond the events' retention, ``clock-skew`` beyond the future skew:
central.ingest.validate), so the accepted range is always ``[now - retention, now + skew]``.

* :func:`ensure_partitions` creates the months of that range and ``ahead`` more (run by every
  ingest worker at start and once a day, and by the purge), and moves any row the DEFAULT
  partition caught into its month's new partition: an event is never refused for want of a
  partition, and never stays in the default for longer than one maintenance run.
* :func:`drop_partitions_before` detaches and drops the months that lie entirely before the
  retention horizon (the purge; rows of the boundary month are deleted one by one).

On SQLite and on a PostgreSQL ``events`` that is not partitioned every function here does
nothing: the purge then deletes rows as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

PARENT = "events"
DEFAULT = "events_default"
_NAME = re.compile(r"^events_p(\d{4})(\d{2})$")
_LOCK_KEY = 0x6576_7473  # pg_advisory_xact_lock key of the maintenance ("evts")


@dataclass(frozen=True)
class Partition:
    """One month partition: rows with ``start <= occurred_at < end`` (UTC)."""

    name: str
    start: datetime
    end: datetime


def month_start(at: datetime) -> datetime:
    """The first instant (UTC) of the month ``at`` falls in."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return start.replace(year=index // 12, month=index % 12 + 1, day=1)


def month(at: datetime) -> Partition:
    """The partition ``at`` belongs to."""
    start = month_start(at)
    return Partition(f"events_p{start.year:04d}{start.month:02d}", start, add_months(start, 1))


def is_partitioned(conn: Connection) -> bool:
    """Whether ``events`` is a partitioned PostgreSQL table (False on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table pt "
        "JOIN pg_class c ON c.oid = pt.partrelid "
        "WHERE c.relname = :parent AND pg_table_is_visible(c.oid))"),
        {"parent": PARENT}).scalar())


def partitions(conn: Connection) -> list[Partition]:
    """The month partitions attached to ``events`` (pg_inherits), oldest first."""
    if not is_partitioned(conn):
        return []
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = :parent AND pg_table_is_visible(p.oid)"), {"parent": PARENT}).scalars()
    out = []
    for name in names:
        found = _NAME.match(name)
        if found:
            out.append(month(datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)))
    return sorted(out, key=lambda p: p.start)


def _literal(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S+00")


def create_partition(conn: Connection, part: Partition) -> None:
    """Create (and attach) ``part``; rows of its month caught by the DEFAULT partition are
    moved into it first (PostgreSQL refuses a new partition whose range the default holds)."""
    bounds = f"FOR VALUES FROM ('{_literal(part.start)}') TO ('{_literal(part.end)}')"
    params = {"start": part.start, "end": part.end}
    caught = conn.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} "  # noqa: S608 (names are ours)
        "WHERE occurred_at >= :start AND occurred_at < :end)"), params).scalar()
    if not caught:
        conn.execute(text(f"CREATE TABLE {part.name} PARTITION OF {PARENT} {bounds}"))
        return
    conn.execute(text(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE"))
    conn.execute(text(f"CREATE TABLE {part.name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    conn.execute(text(
        f"WITH moved AS (DELETE FROM {DEFAULT} "  # noqa: S608
        "WHERE occurred_at >= :start AND occurred_at < :end RETURNING *) "
        f"INSERT INTO {part.name} SELECT * FROM moved"), params)
    conn.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {part.name} {bounds}"))


def ensure_partitions(conn: Connection, now: datetime, *, back: timedelta,
                      ahead: int = 3) -> list[str]:
    """Create the month partitions from ``now - back`` to ``ahead`` months after ``now``'s,
    and those of any month the DEFAULT partition holds rows of; returns the names created.

    Serialised by an advisory lock (several workers start at once); the caller commits. Run
    it with a ``lock_timeout``: creating a partition briefly locks ``events``.
    """
    if not is_partitioned(conn):
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    have = {p.name for p in partitions(conn)}
    wanted: dict[str, Partition] = {}
    start, last = month_start(now - back), add_months(month_start(now), ahead)
    while start <= last:
        part = month(start)
        wanted[part.name] = part
        start = part.end
    for (caught,) in conn.execute(text(
            f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') "  # noqa: S608
            f"FROM {DEFAULT}")):
        part = month(caught.replace(tzinfo=UTC))
        wanted[part.name] = part
    created = []
    for name, part in sorted(wanted.items()):
        if name not in have:
            create_partition(conn, part)
            created.append(name)
    return created


def drop_partitions_before(conn: Connection, horizon: datetime) -> tuple[list[str], int]:
    """Detach and drop the month partitions entirely older than ``horizon`` (their ``end`` at
    or before it); returns their names and the number of events they held."""
    dropped, rows = [], 0
    for part in partitions(conn):
        if part.end > horizon:
            continue
        rows += int(conn.execute(text(f"SELECT count(*) FROM {part.name}")).scalar_one())  # noqa: S608
        conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {part.name}"))
        conn.execute(text(f"DROP TABLE {part.name}"))
        dropped.append(part.name)
    return dropped, rows


def is_partition_name(name: str | None) -> bool:
    """A table the partition maintenance owns (left out of the schema comparison)."""
    return name == DEFAULT or bool(name and _NAME.match(name))
