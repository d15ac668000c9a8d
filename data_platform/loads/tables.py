"""One table, whatever name it is given by: the platform name (`cubic_ods_qlik__edw_sample`,
what output and logs show), the database name (`cubic_ods_qlik.edw_sample`) or the
source's (`EDW.SAMPLE` for Qlik, `agg_daily_fareprod` for DMAP)."""

from __future__ import annotations

import difflib

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from data_platform.db.models import SourceTable
from data_platform.errors import DataPlatformError


class UnknownTable(DataPlatformError):
    """No table goes by that name; the message lists the close matches. Exit code 2 (a
    wrong argument)."""

    exit_code = 2


def source_name(s3_prefix: str) -> str:
    """The source's own name of a table: the last folder of its prefix (`EDW.SAMPLE` for
    `cubic/ods_qlik/EDW.SAMPLE/`, a DMAP type for `cubic/dmap/<type>/`)."""
    return s3_prefix.rstrip("/").rsplit("/", 1)[-1]


def names_of(table: SourceTable) -> list[str]:
    """Every name `table` answers to, the platform name first."""
    names = [table.name]
    if table.db_schema and table.db_table:
        names.append(f"{table.db_schema}.{table.db_table}")
    if source_name(table.s3_prefix):
        names.append(source_name(table.s3_prefix))
    return names


def resolve_tables(conn: Connection, given: list[str]) -> list[SourceTable]:
    """The tables `given` names (any of their names; Qlik and database names compare
    case-insensitively). Raises UnknownTable, naming the close matches."""
    with Session(conn) as session:
        tables = list(session.scalars(select(SourceTable).order_by(SourceTable.name)))
    by_name: dict[str, SourceTable] = {}
    for table in tables:
        for name in names_of(table):
            by_name.setdefault(name.lower(), table)
    found = []
    for name in given:
        match = by_name.get(name.strip().lower())
        if match is None:
            close = difflib.get_close_matches(name.lower(), list(by_name), n=5, cutoff=0.6)
            hint = (
                f"; did you mean {', '.join(sorted({by_name[c].name for c in close}))}?"
                if close
                else f"; known tables: {', '.join(t.name for t in tables) or 'none onboarded'}"
            )
            raise UnknownTable(f"no table {name!r}{hint}")
        found.append(match)
    return found
