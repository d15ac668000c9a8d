"""Statements on the totesys source and on the platform, for the totesys tests."""

from __future__ import annotations

from sqlalchemy import text

from data_platform.batch.totesys.connection import connect
from data_platform.db.engine import get_engine


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
