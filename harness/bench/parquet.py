"""Qlik full-load file -> Parquet: the Spark job's code against a single pyarrow process.

Both write snappy Parquet with the same column types (from the job's cast rules). The
Spark side is the real job code, so it also validates every value (patterns, integer
ranges) and numbers rows for error messages; the pyarrow side only parses and casts.
Session start-up is timed apart: a Glue run pays it once per job, not per file. The
Spark conversion runs twice: the first run in a fresh JVM also loads classes and compiles
code (`spark_cold_seconds`); the second is the steady state of a job converting many files
(`spark_seconds`, and the rate and ratio).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyspark.sql import types as T

from data_platform.batch.cubic_qlik.dfm import Dfm, parse_dfm
from data_platform.batch.cubic_qlik.spark.casts import cast_rule
from data_platform.errors import LoadError
from data_platform.loads.arrow_csv import as_text


def arrow_type(spark_type: T.DataType) -> pa.DataType:
    if isinstance(spark_type, T.DecimalType):
        return pa.decimal128(spark_type.precision, spark_type.scale)
    types = {
        T.LongType: pa.int64(),
        T.DoubleType: pa.float64(),
        T.BooleanType: pa.bool_(),
        T.DateType: pa.date32(),
        T.TimestampType: pa.timestamp("us", tz="UTC"),
        T.BinaryType: pa.binary(),
        T.StringType: pa.string(),
    }
    return types[type(spark_type)]


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_string(target):
        return array
    trimmed = pc.utf8_trim_whitespace(array)
    value = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    if pa.types.is_binary(target):
        return pa.array([None if v is None else bytes.fromhex(v) for v in value.to_pylist()])
    if pa.types.is_timestamp(target):
        # Arrow parses up to nanoseconds; keep microseconds as Spark does (truncating).
        nanos = pc.cast(value, pa.timestamp("ns"))
        return pc.cast(pc.cast(nanos, pa.timestamp("us"), safe=False), target)
    return pc.cast(value, target)


def convert_with_pyarrow(data_path: Path, dfm: Dfm, output: Path) -> int:
    """Stream the CSV in blocks and write one Parquet file; answers the row count."""
    names = [column.name for column in dfm.columns]
    schema = pa.schema([(c.name, arrow_type(cast_rule(c).spark_type)) for c in dfm.columns])
    dialect = dfm.dialect
    reader = pacsv.open_csv(
        data_path,  # .gz is decompressed by extension
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=16 << 20),
        **as_text(dialect, names),
    )
    output.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pq.ParquetWriter(output / "part-00000.parquet", schema, compression="snappy") as writer:
        for batch in reader:
            arrays = [_cast(batch.column(i), schema.field(i).type) for i in range(len(names))]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += batch.num_rows
    return rows


def convert_with_spark(data_path: Path, dfm: Dfm, output: Path) -> int:
    """The job's typed conversion of one file; answers the rows written."""
    from data_platform.batch.cubic_qlik.spark.convert import convert_to_parquet
    from data_platform.jobs.runtime import configure_output, local_session

    spark = local_session("bench")
    configure_output(spark)
    convert_to_parquet(
        spark,
        f"file://{data_path.resolve()}",
        dfm,
        f"file://{output.resolve()}",
        partitions={"snapshot": "20000101T000000Z", "identifier": data_path.name},
        is_raw=False,
        key=data_path.name,
    )
    return sum(pq.ParquetFile(path).metadata.num_rows for path in output.rglob("*.parquet"))


def bench_parquet(data_path: Path, dfm_path: Path, workdir: Path) -> dict[str, float]:
    """Convert `data_path` both ways under `workdir`.

    Answers `rows`; `spark_seconds`, `spark_rows_per_s` (warm run); `pyarrow_seconds`,
    `pyarrow_rows_per_s`; `ratio` = spark_seconds / pyarrow_seconds; and
    `spark_startup_seconds`, `spark_cold_seconds` (first run in the JVM).
    """
    from data_platform.jobs.runtime import local_session

    dfm = parse_dfm(dfm_path.read_bytes(), key=str(dfm_path))
    for name in ("spark", "pyarrow"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    started = time.perf_counter()
    local_session("bench")
    startup = time.perf_counter() - started

    started = time.perf_counter()
    convert_with_spark(data_path, dfm, workdir / "spark")
    cold_seconds = time.perf_counter() - started
    started = time.perf_counter()
    spark_rows = convert_with_spark(data_path, dfm, workdir / "spark")
    spark_seconds = time.perf_counter() - started

    started = time.perf_counter()
    arrow_rows = convert_with_pyarrow(data_path, dfm, workdir / "pyarrow")
    arrow_seconds = time.perf_counter() - started

    if spark_rows != arrow_rows:
        raise LoadError(f"Spark wrote {spark_rows} rows, pyarrow {arrow_rows}", key=str(data_path))
    return {
        "rows": float(spark_rows),
        "spark_startup_seconds": startup,
        "spark_cold_seconds": cold_seconds,
        "spark_seconds": spark_seconds,
        "spark_rows_per_s": spark_rows / spark_seconds,
        "pyarrow_seconds": arrow_seconds,
        "pyarrow_rows_per_s": arrow_rows / arrow_seconds,
        "ratio": spark_seconds / arrow_seconds,
    }
