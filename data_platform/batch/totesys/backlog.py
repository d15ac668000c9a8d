"""The totesys backlog at the source (issue 25): per extracted table, the rows the source
has stamped later than the newest stamp landed (its mark's `updated`), and how long the
oldest of them has waited, by the source's own clock. That is how far behind the copy is
before the next extraction reads them; files waiting in incoming are the other half of
a table's backlog (`loads.freshness`).

Read-only, as the reader role, one statement per table with a statement timeout: `run`
probes after each pass (`cli/run.py`). A row written by a transaction that stamped it
earlier than the mark (a late commit) is read by the next pass (by the transaction
horizon) but not counted here: this is a freshness figure, not the pass's work list."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import reader_url
from data_platform.batch.totesys.extract import _read_marks
from data_platform.errors import DatabaseError

TIMEOUT_MS = 5000  # per table: a probe never holds up a pass for long


@dataclass(frozen=True)
class SourceBacklog:
    table: str  # the platform's name: totesys__sales_order
    rows: int  # rows stamped later than the newest stamp landed
    oldest_waiting_seconds: float | None  # since the oldest of them was stamped


def source_backlog() -> list[SourceBacklog]:
    """The backlog at the source of every table extracted at least once (none before
    the first extraction: everything is behind then, and the extraction says so).

    Raises DatabaseError (exit 3) when the source cannot be reached or a table's count
    outlasts TIMEOUT_MS."""
    marks = _read_marks()
    if not marks:
        return []
    url = reader_url().render_as_string(hide_password=False).replace("+psycopg2", "")
    try:
        source = psycopg2.connect(
            url,
            options=f"-c default_transaction_read_only=on -c statement_timeout={TIMEOUT_MS}",
        )
    except psycopg2.OperationalError as exc:
        raise DatabaseError("totesys source unreachable for its backlog") from exc
    found = []
    try:
        with source.cursor() as cur:
            for table in T.TABLES:
                mark = marks.get(table.name)
                if mark is None:
                    continue
                cur.execute(
                    sql.SQL(
                        "SELECT count(*), extract(epoch FROM localtimestamp - min({u})) "
                        "FROM {t} WHERE {u} > %s"
                    ).format(u=sql.Identifier(T.UPDATED), t=sql.Identifier(table.name)),
                    (mark.updated,),
                )
                row = cur.fetchone()
                assert row is not None  # an aggregate always has its row
                rows, waited = row
                found.append(
                    SourceBacklog(
                        f"{T.SOURCE}__{table.name}",
                        int(rows),
                        None if waited is None else max(0.0, float(waited)),
                    )
                )
    except psycopg2.Error as exc:
        raise DatabaseError(f"totesys backlog: {str(exc).strip().splitlines()[0]}") from exc
    finally:
        with contextlib.suppress(psycopg2.Error):
            source.rollback()
        source.close()
    return found
