"""Which runtime the job picks, on the plain PySpark these tests run on."""

from __future__ import annotations

import pytest

from data_platform.errors import ConfigError
from data_platform.jobs import hadoop_fs
from data_platform.jobs.job_input import JobEnv, ZoneLocation
from data_platform.jobs.runtime import GLUE_CONTEXT_CLASS, S3A_CLASS, start_runtime

pytestmark = pytest.mark.spark

ZONES = {z: ZoneLocation(f"{z}-bucket") for z in ("incoming", "springboard", "operations")}


def test_plain_pyspark_has_neither_glue_nor_s3a(spark) -> None:
    assert not hadoop_fs.has_class(spark, GLUE_CONTEXT_CLASS)
    assert not hadoop_fs.has_class(spark, S3A_CLASS)
    assert hadoop_fs.has_class(spark, "org.apache.hadoop.fs.LocalFileSystem")


def test_plain_pyspark_runs_the_job_on_the_active_session(spark, env) -> None:
    runtime = start_runtime("ingest_incoming", {"JOB_NAME": "ingest_incoming"}, env)
    assert runtime.spark is spark and not runtime.is_glue
    runtime.commit()  # nothing to commit outside Glue
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"


def test_s3_zones_on_plain_pyspark_are_one_clear_error(spark) -> None:
    with pytest.raises(ConfigError, match="this Spark has no S3A connector"):
        start_runtime("ingest_incoming", {}, JobEnv(ZONES))
