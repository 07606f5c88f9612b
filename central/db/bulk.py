"""Many rows in one statement, the fast way for each dialect (the ingest's batched inserts).

PostgreSQL: ``INSERT … SELECT … FROM unnest(CAST(:c1 AS type[]), …)`` with one array parameter
per column. The statement text is the same for every batch, so psycopg and the server parse it
once; SQLAlchemy's generic "insertmanyvalues" form instead renders a ``VALUES`` list with a
placeholder per value (a 97 KB statement for 200 events) that psycopg re-scans and the server
re-plans every time (docs/performance.md, collector ingest: 30 → a few ms per batch).

SQLite: ``executemany`` of one ``INSERT`` (with ``RETURNING`` when keys are wanted), which
the sqlite3 module runs in C.

Both: ``ON CONFLICT DO NOTHING`` when ``skip_conflicts`` (PostgreSQL docs, INSERT; SQLite
"UPSERT").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]], *,
                returning: Sequence[str] = (), skip_conflicts: bool = False
                ) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (dicts with the same keys); the ``returning`` columns of the rows
    actually inserted (rows skipped on a conflict return nothing)."""
    if not rows:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return _postgresql(session, table, rows, returning, skip_conflicts)
    stmt: Any = sqlite.insert(table) if skip_conflicts or returning else insert(table)
    if skip_conflicts:
        stmt = stmt.on_conflict_do_nothing()
    if returning:
        stmt = stmt.returning(*(table.c[name] for name in returning))
        return [tuple(r) for r in conn.execute(stmt, list(rows))]
    conn.execute(stmt, list(rows))
    return []


def _postgresql(session: Session, table: Table, rows: Sequence[dict[str, Any]],
                returning: Sequence[str], skip_conflicts: bool) -> list[tuple[Any, ...]]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    names = list(rows[0])
    casts, params = [], {}
    for index, name in enumerate(names):
        column = table.c[name]
        values = [row[name] for row in rows]
        if isinstance(column.type, JSON):
            values = [None if v is None else json.dumps(v, ensure_ascii=False)
                      for v in values]
            casts.append(f"CAST(CAST(:p{index} AS text[]) AS json[])")
        else:
            casts.append(f"CAST(:p{index} AS {column.type.compile(dialect=dialect)}[])")
        params[f"p{index}"] = values
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    # Only the model's quoted identifiers and type names go into the text; values are bound.
    target = dialect.identifier_preparer.format_table(table)
    sql = f"INSERT INTO {target} ({quoted}) SELECT * FROM unnest({', '.join(casts)})"  # noqa: S608
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(dialect.identifier_preparer.quote(n)
                                         for n in returning)
        return [tuple(r) for r in session.connection().execute(text(sql), params)]
    session.connection().execute(text(sql), params)
    return []
