"""Month arithmetic of the events partitions (central.db.partitions): names, UTC bounds, the
months around a year's end, and the tables the schema comparison leaves out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from central.db.partitions import add_months, is_partition_name, month, month_start


def test_a_month_is_named_and_bounded_in_utc() -> None:
    # 00:30 on 1 December in Vietnam is still 30 November in UTC.
    part = month(datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=7))))
    assert part.name == "events_p202611"
    assert part.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert part.end == datetime(2026, 12, 1, tzinfo=UTC)


def test_months_roll_over_the_year_both_ways() -> None:
    december = month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert add_months(december, 1) == datetime(2027, 1, 1, tzinfo=UTC)
    assert add_months(december, -12) == datetime(2025, 12, 1, tzinfo=UTC)
    assert add_months(december, 14) == datetime(2028, 2, 1, tzinfo=UTC)
    assert month(datetime(2027, 1, 1, tzinfo=UTC)).start == month(december).end


def test_only_the_maintenance_tables_are_partition_names() -> None:
    assert is_partition_name("events_default") and is_partition_name("events_p202612")
    assert not is_partition_name("events") and not is_partition_name("event_keys")
    assert not is_partition_name("events_p2026") and not is_partition_name(None)
