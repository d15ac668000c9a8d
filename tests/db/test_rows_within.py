"""`rows_within`: a page's optional read (an exact count, a preview) gives up when it runs
out of its own time, and leaves the transaction and its statement timeout as they were."""

from __future__ import annotations

from sqlalchemy import text

from data_platform.db.engine import get_engine, rows_within


def test_a_read_out_of_time_is_none_and_leaves_the_transaction_as_it_was(platform) -> None:
    with get_engine().connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL statement_timeout = '7s'"))
        assert rows_within(conn, text("SELECT 1, 'one'"), 1000) == [(1, "one")]
        assert rows_within(conn, text("SELECT pg_sleep(2)"), 50) is None
        assert conn.scalar(text("SELECT current_setting('statement_timeout')")) == "7s"
        assert conn.scalar(text("SELECT 2")) == 2  # the transaction goes on
