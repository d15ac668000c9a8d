"""Bad files: one clear error naming file, line and column; the load's transaction rolls
back, the file and .dfm go to the error zone, later loads of the table wait, other tables
go on, and `retry` re-queues the load once the file is fixed."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from data_platform.batch.cubic_qlik.dfm import dfm_key
from data_platform.cli.main import cli
from data_platform.storage import get_zone
from harness.samples.qlik import Column
from tests.qlik.conftest import SAMPLE_COLUMNS, QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def _only_error(qlik: QlikWorld) -> tuple[str, str]:
    errored = [(key, error) for key, status, error in qlik.loads() if status == "errored"]
    assert len(errored) == 1, qlik.loads()
    return errored[0]


def _assert_errored_file_moved(qlik: QlikWorld, key: str) -> None:
    assert key in qlik.filed("error")
    assert key not in qlik.keys("incoming")


def test_bad_value_names_file_line_and_column(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 5, "five", T), (seq(2), "I", T, "six", "bad id", T)])
    summary = qlik.run()
    assert summary.ingest.errored == 1
    assert _only_error(qlik) == (
        key,
        f'{key}: line 3, column SAMPLE_ID: invalid input syntax for type integer: "six" '
        "(table cubic_ods_qlik__test_sample, load 2)",
    )
    _assert_errored_file_moved(qlik, key)
    assert dfm_key(key) in qlik.filed("error")
    # The whole file rolled back: row 5 (line 2, valid) is not there.
    assert [r[0] for r in sample.rows()] == [1, 2]


def test_bad_value_in_a_full_load(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.full_load([(3, "x" * 101, T)], part=2)
    qlik.run()
    _, error = _only_error(qlik)
    assert error.startswith(f"{key}: line 2, column SAMPLE_NAME: value too long")


def test_full_load_failure_keeps_the_old_contents(qlik: QlikWorld, sample: QlikTable) -> None:
    qlik.run()
    sample.full_load([(9, "new", T), (10, "bad date", "2021-13-45")])  # a new snapshot
    qlik.run()
    _, error = _only_error(qlik)
    assert "line 3, column EDW_INSERTED_DTM" in error
    assert [r[0] for r in sample.rows()] == [1, 2]  # TRUNCATE rolled back too


def test_corrupt_gzip(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(n), "I", T, n, "x", T) for n in range(10, 2000)], land=False)
    path = qlik.files / key.removeprefix("cubic/ods_qlik/")
    data = path.read_bytes()
    qlik.land(path)
    qlik.land_bytes(key, data[: len(data) // 2])  # truncated in transit
    qlik.run()
    _, error = _only_error(qlik)
    assert error.startswith(f"{key}: corrupt gzip data after line ")
    assert len(sample.rows()) == 2


def test_not_gzip_at_all(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T)])
    qlik.land_bytes(key, b"\x1f\x8b\x08garbage")
    qlik.run()
    assert "corrupt gzip data" in _only_error(qlik)[1]


def test_header_differs_from_the_dfm(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T)], gz=False)
    content = gzip.compress(
        b"header__change_seq,header__change_oper,header__timestamp,SAMPLE_ID,NAME,EDW_INSERTED_DTM\n"
    )
    qlik.land_bytes(key, content)
    qlik.run()
    error = _only_error(qlik)[1]
    assert error.startswith(
        f"{key}: line 1: header does not match the .dfm (6 column(s) in the file, 6 in the "
        ".dfm): column 5: NAME, the .dfm has SAMPLE_NAME (table"
    )


def test_header_mismatch_shows_a_byte_order_mark_and_every_difference(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """Never cut to the first few names; invisible characters shown."""
    key = sample.changes([(seq(1), "I", T, 3, "x", T)], gz=False)
    header = "\ufeffheader__change_seq,header__change_oper,header__timestamp,SAMPLE_ID,N,E,X\n"
    qlik.land_bytes(key, header.encode())
    qlik.run()
    error = _only_error(qlik)[1]
    assert "(7 column(s) in the file, 6 in the .dfm)" in error
    assert "column 1: '\\ufeffheader__change_seq', the .dfm has header__change_seq" in error
    assert "column 5: N, the .dfm has SAMPLE_NAME" in error
    assert "column 6: E, the .dfm has EDW_INSERTED_DTM" in error
    assert "column 7: X is not in the .dfm" in error


def test_columns_differ_from_the_table(qlik: QlikWorld, sample: QlikTable) -> None:
    columns = [*SAMPLE_COLUMNS, Column("NEW_COL", "INT4")]
    key = sample.changes([(seq(1), "I", T, 3, "x", T, 1)], columns=columns)
    qlik.run()
    error = _only_error(qlik)[1]
    assert error.startswith(
        f"{key}: line 1, column NEW_COL: schema change: TEST.SAMPLE (table version 1) "
        "differs from table cubic_ods_qlik.test_sample: NEW_COL (INT4) is new; nothing was "
        "loaded. Resolve it by a reviewed revision: data-platform cubic-qlik evolve-table "
        "--table TEST.SAMPLE --apply"
    )


def test_row_with_too_many_fields(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T)])
    text = (
        "header__change_seq,header__change_oper,header__timestamp,SAMPLE_ID,SAMPLE_NAME,"
        f"EDW_INSERTED_DTM\n{seq(1)},I,{T},3,x,{T},extra\n"
    )
    qlik.land_bytes(key, gzip.compress(text.encode()))
    qlik.run()
    error = _only_error(qlik)[1]
    assert error.startswith(f"{key}: line 2")
    assert "extra data after last expected column" in error


def test_null_key(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "U", T, 3, "x", T), (seq(2), "D", T, None, None, None)])
    qlik.run()
    assert _only_error(qlik)[1] == (
        f"{key}: line 3, column SAMPLE_ID: key column is empty (NULL) "
        "(table cubic_ods_qlik__test_sample, load 2)"
    )


def test_unknown_operation(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T), (seq(2), "X", T, 4, "y", T)])
    qlik.run()
    error = _only_error(qlik)[1]
    assert error.startswith(f"{key}: line 3, column header__change_oper: unknown operation 'X'")


def test_missing_dfm(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T)])
    get_zone("incoming").delete(dfm_key(key))
    qlik.run()
    assert _only_error(qlik)[1].startswith(f"{key}: missing .dfm ({dfm_key(key)})")
    _assert_errored_file_moved(qlik, key)


def test_unparseable_dfm(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T)])
    qlik.land_bytes(dfm_key(key), b"{not json")
    qlik.run()
    assert _only_error(qlik)[1].startswith(f"{dfm_key(key)}: not a valid .dfm (JSON)")


def test_record_count_mismatch(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(1), "I", T, 3, "x", T)], record_count=2)
    qlik.run()
    assert "file has 1 record(s) but its .dfm says recordCount 2" in _only_error(qlik)[1]


def test_an_error_blocks_later_loads_of_its_table_but_not_other_tables(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    other = qlik.table("TEST.OTHER", [Column("ID", "INT4", key_pos=1)])
    other.full_load([(1,), (2,)])
    other.onboard()
    bad = sample.changes([(seq(1), "I", T, "bad", "x", T)], name="20211201-000000001")
    later = sample.changes([(seq(2), "I", T, 7, "later", T)], name="20211201-000000002")
    summary = qlik.run()
    assert summary.ingest.blocked_tables == ["cubic_ods_qlik__test_sample"]
    statuses = qlik.statuses()
    assert statuses[bad] == "errored"
    assert statuses[later] == "ready"
    assert other.rows() == [(1,), (2,)]
    # Fix the file, put it back, retry: the table catches up in order.
    fixed = sample.changes([(seq(1), "I", T, 6, "fixed", T)], name="20211201-000000001")
    load_id = next(i for i, (k, _, _) in enumerate(qlik.loads(), start=1) if k == bad)
    result = CliRunner().invoke(cli, ["cubic-qlik", "retry", str(load_id)])
    assert result.exit_code == 0, result.stderr
    assert "ready again (using the file put back in incoming)" in result.stdout
    assert fixed == bad
    qlik.run()
    assert set(qlik.statuses().values()) == {"archived"}
    assert [r[:2] for r in sample.rows()] == [(1, "one"), (2, "two"), (6, "fixed"), (7, "later")]


def test_retry_moves_the_file_back_from_the_error_zone(qlik: QlikWorld) -> None:
    # The table is fixed rather than the file: a column was too narrow.
    table = qlik.table("TEST.NARROW", [Column("ID", "INT4", key_pos=1), Column("V", "STRING", 2)])
    table.full_load([(1, "ok")])
    table.onboard()
    key = table.changes([(seq(1), "U", T, 1, "toolong")])
    qlik.run()
    from sqlalchemy import text

    from data_platform.db.engine import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("ALTER TABLE cubic_ods_qlik.test_narrow ALTER COLUMN v TYPE text"))
    load_id = len(qlik.loads())
    result = CliRunner().invoke(cli, ["cubic-qlik", "retry", str(load_id)])
    assert result.exit_code == 0
    assert "moved the file back from the error zone" in result.stdout
    assert key in qlik.keys("incoming") and dfm_key(key) in qlik.keys("incoming")
    qlik.run()
    assert table.rows() == [(1, "toolong")]


@pytest.mark.parametrize(
    ("load_id", "message"),
    [
        (999, "Error: no load 999\n"),
        (1, "Error: load 1 is archived; only errored loads can be retried\n"),
    ],
)
def test_retry_refuses_what_it_cannot_do(
    qlik: QlikWorld, sample: QlikTable, load_id: int, message: str
) -> None:
    qlik.run()
    result = CliRunner().invoke(cli, ["cubic-qlik", "retry", str(load_id)])
    assert (result.exit_code, result.stderr) == (1, message)


def test_hostile_table_and_column_names(qlik: QlikWorld) -> None:
    columns = [
        Column('Id"; DROP TABLE loads; --', "INT4", key_pos=1),
        Column("select", "STRING", 20),
        Column("Mixed Case", "INT4"),
        Column("naïve-col", "STRING", 20),
    ]
    table = qlik.table("EDW.Robert'); DROP TABLE source_tables;--", columns)
    table.full_load([(1, "a", 10, "x")])
    table.onboard()
    assert table.db_table == ("cubic_ods_qlik", "edw_robert'); drop table source_tables;--")
    table.changes([(seq(1), "U", T, 1, "b", 11, "y"), (seq(2), "I", T, 2, "c", 12, "z")])
    summary = qlik.run()
    assert summary.ingest.errored == 0
    assert table.rows() == [(1, "b", 11, "y"), (2, "c", 12, "z")]
    assert len(qlik.loads()) == 2  # the loads table is still there


def test_dfm_with_a_different_dialect(qlik: QlikWorld, sample: QlikTable) -> None:
    key = sample.changes([(seq(1), "I", T, 3, "x", T)], gz=False)
    text = (
        "header__change_seq|header__change_oper|header__timestamp|SAMPLE_ID|SAMPLE_NAME|"
        f"EDW_INSERTED_DTM\n{seq(1)}|I|{T}|3|'pipe|quoted'|{T}\n"
    )
    qlik.land_bytes(key, text.encode())
    doc = json.loads((qlik.files / dfm_key(key).removeprefix("cubic/ods_qlik/")).read_text())
    doc["formatInfo"]["options"].update(fieldDelimiter="|", quoteChar="'")
    qlik.land_bytes(dfm_key(key), json.dumps(doc).encode())
    qlik.run()
    assert (3, "pipe|quoted") in [r[:2] for r in sample.rows()]


def test_columns_clashing_by_case_error_the_load_and_other_tables_go_on(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    other = qlik.table("TEST.ZOTHER", [Column("ID", "INT4", key_pos=1)])
    other.full_load([(1,)])
    other.onboard()
    columns = [*SAMPLE_COLUMNS, Column("sample_name", "STRING", 5)]
    key = sample.changes([(seq(1), "I", T, 3, "x", T, "y")], columns=columns)
    summary = qlik.run()
    assert summary.ingest.errored == 1
    assert _only_error(qlik)[1].startswith(
        f"{dfm_key(key)}: invalid .dfm: duplicate column names SAMPLE_NAME, sample_name"
    )
    assert other.rows() == [(1,)]


def test_a_database_error_in_one_table_does_not_stop_the_others(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    from sqlalchemy import text

    from data_platform.db.engine import get_engine
    from data_platform.errors import DataPlatformError

    other = qlik.table("TEST.ZOTHER", [Column("ID", "INT4", key_pos=1)])
    other.full_load([(1,)])
    other.onboard()
    with get_engine().begin() as conn:  # the table is gone: not the file's fault
        conn.execute(text("ALTER TABLE cubic_ods_qlik.test_sample RENAME TO moved"))
    with pytest.raises(DataPlatformError, match=r"ingest stopped for 1 table\(s\), the others"):
        qlik.run()
    assert other.rows() == [(1,)]
    statuses = qlik.statuses()
    assert statuses["cubic/ods_qlik/TEST.SAMPLE/LOAD00000001.csv.gz"] == "ready"
