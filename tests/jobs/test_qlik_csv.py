"""How Spark's CSV reader sees Qlik files, with the options the job gives it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from data_platform.batch.cubic_qlik.dfm import parse_dfm
from data_platform.batch.cubic_qlik.spark.qlik_csv import NULL_SENTINEL, csv_options, read_qlik_csv
from tests.jobs.conftest import Col, dfm_document

pytestmark = pytest.mark.spark

COLUMNS = [Col("ID", "INT4", key=1), Col("NAME", "STRING"), Col("NOTE", "STRING")]
DFM = parse_dfm(json.dumps(dfm_document(COLUMNS)))


def _write(tmp_path: Path, text: str, *, gz: bool) -> str:
    path = tmp_path / ("data.csv.gz" if gz else "data.csv")
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return f"file://{path}"


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_nulls_empty_strings_quotes_newlines_and_emoji(spark, tmp_path: Path, gz: bool) -> None:
    text = (
        "ID,NAME,NOTE\n"
        '1,,""\n'  # empty unquoted = NULL, quoted "" = empty string
        '2," ","  "\n'  # blanks are kept as they are
        '3,"He said ""hi"", ok","two\nlines"\n'  # doubled quotes, a newline inside quotes
        '4,Sample 4 🔥,"a,b"\n'
        "5,NULL,x\n"  # the text NULL is data unless the .dfm says it is the null value
    )
    rows = [tuple(r) for r in read_qlik_csv(spark, _write(tmp_path, text, gz=gz), DFM).collect()]
    assert rows == [
        ("1", None, ""),
        ("2", " ", "  "),
        ("3", 'He said "hi", ok', "two\nlines"),
        ("4", "Sample 4 🔥", "a,b"),
        ("5", "NULL", "x"),
    ]


def test_spark_default_would_lose_the_empty_string(spark, tmp_path: Path) -> None:
    # Why the job passes a sentinel null value: with Spark's default both fields are NULL.
    uri = _write(tmp_path, 'ID,NAME,NOTE\n1,,""\n', gz=False)
    options = {**csv_options(DFM), "nullValue": ""}
    reader = spark.read.options(**options).schema("ID string, NAME string, NOTE string")
    assert tuple(reader.csv(uri).collect()[0]) == ("1", None, None)
    assert NULL_SENTINEL not in 'ID,NAME,NOTE\n1,,""\n'


def test_a_declared_null_value_reads_as_null(spark, tmp_path: Path) -> None:
    dfm = parse_dfm(json.dumps(dfm_document(COLUMNS, null_value="NULL")))
    uri = _write(tmp_path, 'ID,NAME,NOTE\n1,NULL,""\n', gz=False)
    assert tuple(read_qlik_csv(spark, uri, dfm).collect()[0]) == ("1", None, "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ID,NAME,OTHER\n1,a,b\n", "CSV header does not conform to the schema"),
        ("ID,NAME,NOTE\n1,a\n", "Malformed CSV record"),
        ("ID,NAME,NOTE\n1,a,b,c\n", "Malformed CSV record"),
    ],
)
def test_header_and_field_count_mismatches_fail(spark, tmp_path: Path, text, message) -> None:
    with pytest.raises(Exception, match=message):
        read_qlik_csv(spark, _write(tmp_path, text, gz=True), DFM).collect()
