"""A large new snapshot loads over several COPY streams (`loads.parallel_copy`) into its
fresh table: the same rows as over one connection, and on any trouble (a bad value, a
repeated key) the one-connection path with its exact error or rule. A fresh table left by
a stopped load is dropped by the next load."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from data_platform.db.engine import get_engine
from data_platform.loads import parallel_copy
from data_platform.settings import reset_settings
from harness.samples.qlik import Column
from tests.qlik.conftest import QlikTable, QlikWorld, seq

DIRECT = [Column("ID", "INT4", key_pos=1), Column("NAME", "STRING", 40)]
STAGED = [*DIRECT, Column("AT", "DATETIME"), Column("BLOB", "BYTES", 8)]
MANY = "loaded over 3 connections"
FALLBACK = "loading over one connection instead of 3"


@pytest.fixture
def streams(qlik: QlikWorld, monkeypatch: pytest.MonkeyPatch, caplog) -> QlikWorld:
    """Every new snapshot in 3 streams, cut into small chunks so each stream gets many."""
    monkeypatch.setenv("LOAD_COPY_STREAMS", "3")
    monkeypatch.setenv("LOAD_PARALLEL_MIN_ROWS", "0")
    monkeypatch.setattr(parallel_copy, "BLOCK", 512)
    reset_settings()
    caplog.set_level(logging.DEBUG, logger="data_platform.batch.cubic_qlik.new_snapshot")
    return qlik


def _name(i: int) -> str:
    # Commas, doubled quotes and newlines inside quoted fields, across chunk cuts.
    return ["plain", 'with "quotes", and a comma', "two\nlines", ""][i % 4] + f" {i}"


def _rows(columns: list[Column], first: int, n: int) -> list[tuple]:
    if columns is DIRECT:
        return [(i, _name(i)) for i in range(first, first + n)]
    return [
        (i, _name(i), f"2021-12-01 11:20:{i % 60:02d}.{i:07d}"[:27], f"{i % 256:02X}")
        for i in range(first, first + n)
    ]


def _snapshot(qlik: QlikWorld, columns: list[Column], rows: list[tuple]) -> QlikTable:
    table = qlik.table("PAR.FARES", columns)
    table.full_load(_rows(columns, 1, 10))
    table.onboard()
    qlik.run()
    qlik.later()  # a newer LOAD00000001: a new snapshot
    table.full_load(rows)
    return table


def _fresh_tables() -> list[str]:
    with get_engine().connect() as conn:
        return list(
            conn.scalars(text("SELECT relname FROM pg_class WHERE relname LIKE 'dp_new_%'"))
        )


@pytest.mark.parametrize("columns", [DIRECT, STAGED], ids=["direct", "staged"])
def test_a_new_snapshot_in_streams_holds_every_row(
    streams: QlikWorld, columns: list[Column], caplog
) -> None:
    rows = _rows(columns, 100, 3000)
    table = _snapshot(streams, columns, rows)
    caplog.clear()
    assert streams.run().ingest.archived == 1
    assert MANY in caplog.text and FALLBACK not in caplog.text
    loaded = table.rows()
    assert len(loaded) == 3000
    assert [r[:2] for r in loaded] == [r[:2] for r in rows]
    if columns is STAGED:
        # The DATETIME rule (7 digits rounded, ties to even) and hex binary, as always.
        assert str(loaded[0][2]) == "2021-12-01 11:20:40.000010"
        assert loaded[1][3] == bytes([101])
    assert _fresh_tables() == []


@pytest.mark.parametrize("columns", [DIRECT, STAGED], ids=["direct", "staged"])
def test_a_bad_value_falls_back_and_names_its_record(
    streams: QlikWorld, columns: list[Column], caplog
) -> None:
    rows = _rows(columns, 100, 3000)
    bad = list(rows[2000])
    bad[0] = "x12"  # not an INT4, in record 2001 (line 2002, after the header)
    rows[2000] = tuple(bad)
    table = _snapshot(streams, columns, rows)
    before = table.rows()
    caplog.clear()
    streams.run()
    assert FALLBACK in caplog.text
    error = next(e for k, status, e in streams.loads() if status == "errored")
    assert ": line 2002, column ID: invalid input syntax for type integer" in error
    assert table.rows() == before  # the live table as it was
    assert _fresh_tables() == []


def test_a_repeated_key_keeps_the_row_read_last(streams: QlikWorld, caplog) -> None:
    rows = _rows(DIRECT, 1, 2000)
    rows.append((5, "read last"))
    table = _snapshot(streams, DIRECT, rows)
    caplog.clear()
    assert streams.run().ingest.archived == 1
    assert f"{FALLBACK}: the file repeats a key" in caplog.text
    loaded = dict(table.rows())
    assert len(loaded) == 2000 and loaded[5] == "read last"
    assert _fresh_tables() == []


def test_a_fresh_table_left_by_a_stopped_load_is_dropped(streams: QlikWorld) -> None:
    rows = _rows(DIRECT, 1, 500)
    table = _snapshot(streams, DIRECT, rows)
    schema, name = table.db_table
    with get_engine().begin() as conn:
        table_id = conn.scalar(
            text("SELECT id FROM source_tables WHERE db_schema = :s AND db_table = :t"),
            {"s": schema, "t": name},
        )
        # What a load killed after its streams committed leaves: rows nobody reads.
        conn.execute(
            text(f'CREATE TABLE "{schema}".dp_new_{table_id} AS SELECT * FROM "{schema}"."{name}"')
        )
    assert streams.run().ingest.archived == 1
    assert len(table.rows()) == 500
    assert _fresh_tables() == []


def test_a_fresh_table_left_behind_is_dropped_by_the_next_run_of_its_table(
    streams: QlikWorld,
) -> None:
    """The load's transaction rolled back (or the process died) after the streams had
    committed: the next run of the table drops the table, whatever file comes next."""
    table = _snapshot(streams, DIRECT, _rows(DIRECT, 1, 500))
    assert streams.run().ingest.archived == 1
    schema, name = table.db_table
    with get_engine().begin() as conn:
        table_id = conn.scalar(
            text("SELECT id FROM source_tables WHERE db_schema = :s AND db_table = :t"),
            {"s": schema, "t": name},
        )
        conn.execute(text(f'CREATE TABLE "{schema}".dp_new_{table_id} (id int)'))
    table.changes([(seq(1), "U", "2021-12-01 11:20:30", 7, "changed")])
    assert streams.run().ingest.archived == 1
    assert _fresh_tables() == []
    assert dict(table.rows())[7] == "changed"
