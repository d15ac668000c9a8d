"""One load: a Qlik CSV file in the incoming zone -> one Parquet partition in the springboard.

A failure of one load never stops the others: `run_loads` answers, per source key, None
or the reason, and the caller decides what a failed load means.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from data_platform.batch.cubic_qlik.dfm import Dfm, dfm_key, parse_dfm
from data_platform.batch.cubic_qlik.spark import casts
from data_platform.batch.cubic_qlik.spark.qlik_csv import read_qlik_csv
from data_platform.errors import DataPlatformError, LoadError
from data_platform.jobs import hadoop_fs
from data_platform.jobs.job_input import JobEnv, JobLoad

log = logging.getLogger(__name__)


def convert_to_parquet(
    spark: SparkSession,
    data_uri: str,
    dfm: Dfm,
    output_uri: str,
    *,
    partitions: dict[str, str],
    is_raw: bool,
    key: str,
) -> None:
    """Write `data_uri` as Parquet under `output_uri`, partitioned by `partitions`.

    Dynamic partition overwrite: the write replaces exactly the partitions it produces and
    leaves every other partition of the table alone; a failed write replaces nothing.
    """
    clash = {c.name.lower() for c in dfm.columns} & {name.lower() for name in partitions}
    if clash:
        raise LoadError(
            f"column(s) {', '.join(sorted(clash))} clash with partition columns", key=key
        )
    strings = read_qlik_csv(spark, data_uri, dfm)
    frame = casts.raw(strings, dfm) if is_raw else casts.typed(strings, dfm)
    for name, value in partitions.items():
        frame = frame.withColumn(name, F.lit(value))
    partition_uri = (
        output_uri.rstrip("/")
        + "/"
        + "/".join(f"{name}={value}" for name, value in partitions.items())
    )
    before = set(hadoop_fs.glob_files(spark, partition_uri + "/*"))
    (
        frame.write.mode("overwrite")
        .partitionBy(*partitions)
        .option("partitionOverwriteMode", "dynamic")
        .option("compression", "snappy")
        .parquet(output_uri)
    )
    written = set(hadoop_fs.glob_files(spark, partition_uri + "/*")) - before
    if not written:
        # No rows: dynamic overwrite writes no partition, so it would leave an earlier
        # run's rows in place. A file with no rows has an empty partition.
        hadoop_fs.delete_tree(spark, partition_uri)
        rows = 0
    else:
        rows = spark.read.parquet(partition_uri).count()  # from the Parquet footers
    if dfm.record_count is not None and rows != dfm.record_count:
        # Spark's CSV reader skips blank lines (a NULL row of a one-column table): the
        # count is what shows a row went missing.
        hadoop_fs.delete_tree(spark, partition_uri)
        raise LoadError(
            f"file has {rows} record(s) but its .dfm says recordCount {dfm.record_count}",
            key=key,
        )


def read_dfm(spark: SparkSession, env: JobEnv, source_key: str) -> Dfm:
    key = dfm_key(source_key)
    uri = env.uri("incoming", key)
    if not hadoop_fs.exists(spark, uri):
        raise LoadError(f"no .dfm beside the data file (expected {uri})", key=source_key)
    return parse_dfm(hadoop_fs.read_bytes(spark, uri), key=key)


def ingest_load(spark: SparkSession, env: JobEnv, load: JobLoad) -> str:
    """Convert one load; answers the URI of the partition written."""
    data_uri = env.uri("incoming", load.source_key)
    if not hadoop_fs.exists(spark, data_uri):
        raise LoadError(f"no such object: {data_uri}", key=load.source_key)
    dfm = read_dfm(spark, env, load.source_key)
    convert_to_parquet(
        spark,
        data_uri,
        dfm,
        env.uri("springboard", load.output_path),
        partitions=load.partitions,
        is_raw=load.is_raw,
        key=load.source_key,
    )
    return env.uri("springboard", load.partition_path)


def describe_failure(exc: BaseException, load: JobLoad) -> str:
    """One line for a failed load: the cast error's line and column, or the root cause."""
    if isinstance(exc, LoadError):
        return LoadError(
            exc.reason,
            key=exc.key or load.source_key,
            line=exc.line,
            column=exc.column,
            table=exc.table or load.table,
        ).describe()
    if isinstance(exc, DataPlatformError):
        return f"{load.source_key}: {exc}"
    text = str(exc)
    failure = casts.find_cast_failure(text)
    if failure:
        return LoadError(
            failure.reason,
            key=load.source_key,
            line=failure.line,
            column=failure.column,
            table=load.table,
        ).describe()
    return LoadError(
        _root_cause(text) or type(exc).__name__, key=load.source_key, table=load.table
    ).describe()


def _root_cause(text: str) -> str:
    """The innermost "Caused by" of a Java stack trace, with its message's own lines (the
    header check puts expected and found names there), as one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Caused by:")]
    start = starts[-1] if starts else 0
    message: list[str] = []
    for line in lines[start:]:
        if message and (line.startswith("at ") or line.startswith("...")):
            break
        message.append(line.removeprefix("Caused by: "))
    return " ".join(message)[:500]


def run_loads(
    spark: SparkSession, env: JobEnv, loads: tuple[JobLoad, ...]
) -> dict[str, str | None]:
    """Convert each load; per source key None (written) or why it failed."""
    results: dict[str, str | None] = {}
    for load in loads:
        ids = {"source_key": load.source_key, "table": load.table}
        try:
            written = ingest_load(spark, env, load)
        # The job's boundary per load: whatever Spark raises (Py4J, analysis, parse errors)
        # fails this load only and is reported with its cause.
        except Exception as exc:
            results[load.source_key] = describe_failure(exc, load)
            log.error("load failed: %s", results[load.source_key], extra=ids)
            continue
        results[load.source_key] = None
        log.info("wrote %s", written, extra=ids)
    return results
