"""Statements on the totesys source and on the platform, for the totesys tests."""

from __future__ import annotations

from sqlalchemy import text

from data_platform.batch.totesys.connection import connect
from data_platform.db.engine import get_engine

# The totesys marks with the columns extract_marks had (revision 0016 moved them into
# landing_marks, the position as JSON), to read in a FROM clause.
MARKS = (
    "(SELECT item AS table_name, (mark->>'updated')::timestamp AS mark_updated, "
    "mark->>'key' AS mark_key, last_key, rows, marked_at AS extracted_at, "
    "(mark->>'horizon')::bigint AS horizon, mark->>'identity' AS source_identity "
    "FROM landing_marks WHERE source = 'totesys') AS extract_marks"
)


def set_marks(assignments: str) -> None:
    """Change every totesys mark's position: `assignments` as JSON to merge into it,
    e.g. '{"horizon": null}'."""
    on_platform(
        "UPDATE landing_marks SET mark = mark || CAST(:a AS jsonb) WHERE source = 'totesys'",
        {"a": assignments},
    )


def on_source(url: str, statement: str, params=None) -> list[tuple]:
    """Run `statement` on the source database at `url` and commit; its rows, if any."""
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def on_platform(query: str, params=None) -> list[tuple]:
    """Run `query` on the platform's database and commit; its rows, if any."""
    with get_engine().begin() as conn:
        result = conn.execute(text(query), params or {})
        return result.all() if result.returns_rows else []
