"""Springboard partitions written before and after a source schema change read together:
the Glue job writes each load in its .dfm's shape; `read_table` reads them as one table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from data_platform.jobs.job_input import JobLoad
from data_platform.jobs.read_springboard import merged_schema, read_table, widest
from tests.jobs.conftest import TABLE, Col, run_job, write_qlik

pytestmark = pytest.mark.spark

SNAPSHOT = datetime(2021, 12, 1, 11, 22, 33, tzinfo=UTC)
OLD = [Col("SAMPLE_ID", "INT4", key=1), Col("AMOUNT", "NUMERIC", 10, 2), Col("RATE", "REAL4")]
NEW = [
    Col("SAMPLE_ID", "INT4", key=1),
    Col("AMOUNT", "NUMERIC", 12, 4),  # widened precision and scale
    Col("RATE", "REAL8"),  # widened float
    Col("ZONE", "STRING"),  # added
]


def _run(env, incoming: Path, name: str, columns: list[Col], body: str) -> None:
    key = f"cubic/ods_qlik/EDW.SAMPLE/{name}.csv.gz"
    write_qlik(incoming, key, columns, body)
    assert run_job(env, loads=[JobLoad.create(key, TABLE, SNAPSHOT)]) == {key: None}


def test_old_and_new_shapes_read_together(spark, env, incoming: Path, springboard: Path) -> None:
    from pyspark.sql import types as T

    _run(env, incoming, "LOAD00000001", OLD, "1,2.40,0.5\n")
    _run(env, incoming, "LOAD00000002", NEW, "2,2.4125,0.25,z2\n")
    path = (springboard / "cubic/ods_qlik/EDW.SAMPLE").as_uri()
    # Spark's mergeSchema alone refuses two DECIMAL shapes.
    with pytest.raises(Exception, match="CANNOT_MERGE"):
        spark.read.option("mergeSchema", "true").parquet(path).collect()
    frame = read_table(spark, path)
    types = {f.name: f.dataType for f in frame.schema.fields}
    assert types["AMOUNT"] == T.DecimalType(12, 4)
    assert types["RATE"] == T.DoubleType()
    assert types["ZONE"] == T.StringType()
    rows = sorted(
        (r["SAMPLE_ID"], r["AMOUNT"], r["RATE"], r["ZONE"], r["identifier"])
        for r in frame.collect()
    )
    assert rows == [
        (1, Decimal("2.4000"), 0.5, None, "LOAD00000001.csv.gz"),
        (2, Decimal("2.4125"), 0.25, "z2", "LOAD00000002.csv.gz"),
    ]


def test_added_columns_alone_use_sparks_merge(spark, env, incoming: Path, springboard: Path):
    _run(env, incoming, "LOAD00000001", OLD[:2], "1,2.40\n")
    _run(env, incoming, "LOAD00000002", [*OLD[:2], Col("ZONE", "STRING")], "2,1.00,z\n")
    frame = read_table(spark, (springboard / "cubic/ods_qlik/EDW.SAMPLE").as_uri())
    assert sorted((r["SAMPLE_ID"], r["ZONE"]) for r in frame.collect()) == [(1, None), (2, "z")]


def test_the_widest_type_never_changes_a_value() -> None:
    from pyspark.sql import types as T

    assert widest(T.LongType(), T.DecimalType(10, 2)) == T.DecimalType(21, 2)
    assert widest(T.DecimalType(10, 2), T.DecimalType(8, 4)) == T.DecimalType(12, 4)
    assert widest(T.IntegerType(), T.LongType()) == T.LongType()
    assert widest(T.LongType(), T.StringType()) == T.StringType()
    with pytest.raises(TypeError):
        widest(T.DateType(), T.LongType())
    schema = merged_schema(
        [T.StructType([T.StructField("a", T.LongType())]),
         T.StructType([T.StructField("b", T.StringType()), T.StructField("a", T.LongType())])]
    )  # fmt: skip
    assert schema.fieldNames() == ["a", "b"]
