"""The job end to end on the local store: files in, Parquet partitions out, read back."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_platform.jobs.job_input import JobLoad
from tests.jobs.conftest import KEY, TABLE, Col, read_partition, run_job, write_qlik

pytestmark = pytest.mark.spark

SNAPSHOT = datetime(2021, 12, 1, 11, 22, 33, tzinfo=UTC)
COLUMNS = [
    Col("SAMPLE_ID", "INT4", key=1),
    Col("SAMPLE_NAME", "STRING"),
    Col("AMOUNT", "NUMERIC", 10, 2),
    Col("BIG", "UINT8"),
    Col("DAY", "DATE"),
    Col("EDW_INSERTED_DTM", "DATETIME"),
    Col("ACTIVE", "BOOLEAN"),
]
BODY = (
    '1,"Sample 1 🔥",12.30,18446744073709551615,2021-12-01,2021-12-01 11:20:30.4444444,true\n'
    '2,"",,, ,,\n'
    '3,"two\nlines, ""quoted""",-0.5,0,2021-12-02,2021-12-01 11:20:31.123456789,0\n'
)


def _load(key: str = KEY, **kwargs) -> JobLoad:
    return JobLoad.create(key, TABLE, SNAPSHOT, **kwargs)


def test_typed_output_read_back_value_by_value(env, incoming: Path, springboard: Path) -> None:
    write_qlik(incoming, KEY, COLUMNS, BODY)
    load = _load()
    assert run_job(env, loads=[load]) == {KEY: None}

    partition = springboard / "cubic/ods_qlik/EDW.SAMPLE/snapshot=20211201T112233Z"
    partition = partition / "identifier=LOAD00000001.csv.gz"
    files = sorted(p.name for p in partition.iterdir() if not p.name.startswith("."))
    assert len(files) == 1 and files[0].endswith(".snappy.parquet")
    table = pq.read_table(partition)
    assert table.schema.types == [
        pa.int64(),
        pa.string(),
        pa.decimal128(10, 2),
        pa.decimal128(20, 0),
        pa.date32(),
        pa.timestamp("us", tz="UTC"),
        pa.bool_(),
    ]
    rows = [tuple(row.values()) for row in table.to_pylist()]
    stamp = datetime(2021, 12, 1, 11, 20, 30, 444444, tzinfo=UTC)
    assert rows == [
        (1, "Sample 1 🔥", Decimal("12.30"), Decimal(2**64 - 1), date(2021, 12, 1), stamp, True),
        (2, "", None, None, None, None, None),
        (
            3,
            'two\nlines, "quoted"',
            Decimal("-0.50"),
            Decimal(0),
            date(2021, 12, 2),
            datetime(2021, 12, 1, 11, 20, 31, 123457, tzinfo=UTC),
            False,
        ),
    ]
    assert pq.ParquetFile(partition / files[0]).metadata.row_group(0).column(0).compression == (
        "SNAPPY"
    )


def test_raw_output_keeps_every_value_as_a_string(env, incoming: Path, springboard: Path) -> None:
    write_qlik(incoming, KEY, COLUMNS, BODY + "4,x,not a number,,,,\n")
    load = _load(is_raw=True)
    assert run_job(env, loads=[load]) == {KEY: None}
    assert load.partition_path.startswith("raw/cubic/ods_qlik/EDW.SAMPLE/snapshot=")
    table = pq.read_table(springboard / load.partition_path)
    assert set(table.schema.types) == {pa.string()}
    assert [tuple(r.values()) for r in table.to_pylist()] == [
        ("1", "Sample 1 🔥", "12.30", "18446744073709551615", "2021-12-01",
         "2021-12-01 11:20:30.4444444", "true"),
        ("2", "", None, None, " ", None, None),
        ("3", 'two\nlines, "quoted"', "-0.5", "0", "2021-12-02",
         "2021-12-01 11:20:31.123456789", "0"),
        ("4", "x", "not a number", None, None, None, None),
    ]  # fmt: skip


def test_a_bad_value_fails_its_load_with_file_line_and_column(
    env, incoming: Path, springboard: Path
) -> None:
    good = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000002.csv"  # not gzip: both kinds in one run
    write_qlik(incoming, KEY, COLUMNS, BODY + "4,x,1.234,,,,\n")
    write_qlik(incoming, good, COLUMNS, "5,y,1,,,,\n")
    results = run_job(env, loads=[_load(), _load(good)])
    assert results == {
        KEY: f"{KEY}: line 5, column AMOUNT: '1.234' is not a valid NUMERIC(10,2) (table {TABLE})",
        good: None,
    }
    assert not (springboard / _load().partition_path).exists()
    assert [r["SAMPLE_ID"] for r in read_partition(springboard, _load(good))] == [5]


def _files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir() if p.suffix == ".parquet"}


def test_rerun_replaces_only_its_own_partition(env, incoming: Path, springboard: Path) -> None:
    second = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000002.csv.gz"
    older = JobLoad.create(KEY, TABLE, datetime(2021, 11, 1, tzinfo=UTC))
    write_qlik(incoming, KEY, COLUMNS, "1,a,,,,,\n2,b,,,,,\n")
    write_qlik(incoming, second, COLUMNS, "3,c,,,,,\n")
    assert run_job(env, loads=[_load(), _load(second)]) == {KEY: None, second: None}
    assert run_job(env, loads=[older]) == {KEY: None}  # same file, an older snapshot
    untouched = {
        path: _files(springboard / path)
        for path in (_load(second).partition_path, older.partition_path)
    }

    write_qlik(incoming, KEY, COLUMNS, "9,new,,,,,\n")
    assert run_job(env, loads=[_load()]) == {KEY: None}
    assert len(_files(springboard / _load().partition_path)) == 1
    assert [(r["SAMPLE_ID"], r["SAMPLE_NAME"]) for r in read_partition(springboard, _load())] == [
        (9, "new")
    ]
    assert {path: _files(springboard / path) for path in untouched} == untouched
    table = pq.read_table(springboard / "cubic/ods_qlik/EDW.SAMPLE")  # the whole table
    assert sorted(table.column("SAMPLE_ID").to_pylist()) == [1, 2, 3, 9]

    # A failed re-run replaces nothing: the partition keeps the last good data.
    write_qlik(incoming, KEY, COLUMNS, "x,bad,,,,,\n")
    assert run_job(env, loads=[_load()])[KEY].startswith(f"{KEY}: line 2, column SAMPLE_ID:")
    assert [r["SAMPLE_ID"] for r in read_partition(springboard, _load())] == [9]


CHANGE_KEY = "cubic/ods_qlik/EDW.SAMPLE__ct/20211201-112233444.csv.gz"
CHANGE_COLUMNS = [
    Col("header__change_seq", "STRING"),
    Col("header__change_oper", "STRING"),
    Col("header__timestamp", "DATETIME"),
    Col("SAMPLE_ID", "INT4", key=1),
    Col("SAMPLE_NAME", "STRING"),
]


def test_change_files_keep_their_header_columns(env, incoming: Path, springboard: Path) -> None:
    write_qlik(
        incoming,
        CHANGE_KEY,
        CHANGE_COLUMNS,
        "20210915031230320000000000000000041,I,2021-10-08 13:12:31.320000,4,Sample 4\n"
        "20210915031230320000000000000000042,D,2021-10-08 13:12:32.000000,4,\n",
        table="SAMPLE__ct",
    )
    load = JobLoad.create(CHANGE_KEY, f"{TABLE}__ct", SNAPSHOT)
    assert run_job(env, loads=[load]) == {CHANGE_KEY: None}
    assert load.partition_path == (
        "cubic/ods_qlik/EDW.SAMPLE__ct/snapshot=20211201T112233Z/"
        "identifier=20211201-112233444.csv.gz/"
    )
    table = pq.read_table(springboard / load.partition_path)
    assert table.schema.names == [c.name for c in CHANGE_COLUMNS]
    assert table.schema.field("header__timestamp").type == pa.timestamp("us", tz="UTC")
    assert [
        (r["header__change_oper"], r["SAMPLE_ID"], r["SAMPLE_NAME"]) for r in table.to_pylist()
    ] == [
        ("I", 4, "Sample 4"),
        ("D", 4, None),
    ]


def test_single_object_form_derives_the_load(env, incoming: Path, springboard: Path) -> None:
    first = write_qlik(incoming, KEY, COLUMNS, "1,a,,,,,\n")
    write_qlik(incoming, CHANGE_KEY, CHANGE_COLUMNS, "1,U,,1,b\n", table="SAMPLE__ct")
    # The snapshot is the table's LOAD00000001 time, for the change file too.
    stamp = SNAPSHOT.timestamp()
    os.utime(first, (stamp, stamp))
    assert run_job(env, object_key=KEY) == {KEY: None}
    assert run_job(env, object_key=CHANGE_KEY) == {CHANGE_KEY: None}
    expected = JobLoad.create(KEY, TABLE, SNAPSHOT)
    assert [r["SAMPLE_NAME"] for r in read_partition(springboard, expected)] == ["a"]
    change = JobLoad.create(CHANGE_KEY, TABLE, SNAPSHOT)
    assert [r["SAMPLE_NAME"] for r in read_partition(springboard, change)] == ["b"]

    missing = "cubic/ods_qlik/EDW.OTHER/LOAD00000001.csv.gz"
    error = run_job(env, object_key=missing)[missing]
    assert error.startswith(f"{missing}: no such object: file://") and error.endswith(missing)


def test_missing_files_and_the_result_document(env, incoming: Path) -> None:
    no_dfm = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000003.csv.gz"
    write_qlik(incoming, no_dfm, COLUMNS, "1,a,,,,,\n")
    (incoming / "cubic/ods_qlik/EDW.SAMPLE/LOAD00000003.dfm").unlink()
    absent = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000004.csv.gz"
    result_key = "glue_job_runs/ingest_incoming/test.json"
    results = run_job(env, loads=[_load(no_dfm), _load(absent)], extra=("--RESULT_KEY", result_key))
    assert results[no_dfm].startswith(f"{no_dfm}: no .dfm beside the data file (expected file://")
    assert results[absent].startswith(f"{absent}: no such object: file://")
    document = json.loads((Path(env.local_root) / "operations" / result_key).read_text())
    assert document == {"job_name": "ingest_incoming", "results": results}
    # The result is written without the .crc file Hadoop's local filesystem would add.
    assert sorted(
        p.name for p in (Path(env.local_root) / "operations" / result_key).parent.iterdir()
    ) == ["test.json"]


def test_a_header_that_does_not_match_the_dfm_fails_the_load(env, incoming: Path) -> None:
    path = write_qlik(incoming, KEY, COLUMNS, "1,a,,,,,\n")
    (path.parent / "LOAD00000001.dfm").write_text(
        (path.parent / "LOAD00000001.dfm").read_text().replace("SAMPLE_NAME", "OTHER_NAME")
    )
    error = run_job(env, loads=[_load()])[KEY]
    assert error.startswith(f"{KEY}: ") and "CSV header does not conform to the schema" in error
    assert "Expected: OTHER_NAME but found: SAMPLE_NAME" in error


def test_rerun_with_an_empty_file_empties_the_partition(
    env, incoming: Path, springboard: Path
) -> None:
    write_qlik(incoming, KEY, COLUMNS, BODY)
    load = _load()
    assert run_job(env, loads=[load]) == {KEY: None}
    assert len(read_partition(springboard, load)) == 3
    write_qlik(incoming, KEY, COLUMNS, "")  # the same file again, now header only
    assert run_job(env, loads=[load]) == {KEY: None}
    assert not (springboard / load.partition_path).exists()


def test_a_row_spark_would_skip_fails_on_the_record_count(
    env, incoming: Path, springboard: Path
) -> None:
    columns = [Col("ID", "INT4", key=1)]
    write_qlik(incoming, KEY, columns, "1\n\n3\n")  # a NULL in a one-column table is a blank line
    dfm_path = incoming / KEY.replace(".csv.gz", ".dfm")
    doc = json.loads(dfm_path.read_text())
    doc["fileInfo"]["recordCount"] = 3
    dfm_path.write_text(json.dumps(doc))
    load = _load()
    result = run_job(env, loads=[load])
    assert result[KEY] == (
        f"{KEY}: file has 2 record(s) but its .dfm says recordCount 3 (table {TABLE})"
    )
    assert not (springboard / load.partition_path).exists()
