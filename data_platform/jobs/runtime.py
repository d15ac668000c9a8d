"""Where the job runs: inside Glue (GlueContext + Job) or on plain PySpark.

The data code is the same either way; only the session and the Glue bookkeeping differ.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from data_platform.errors import ConfigError
from data_platform.jobs import hadoop_fs
from data_platform.jobs.job_input import JobEnv

log = logging.getLogger(__name__)

GLUE_CONTEXT_CLASS = "com.amazonaws.services.glue.GlueContext"
S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"


@dataclass
class Runtime:
    spark: SparkSession
    glue_job: Any | None = None  # awsglue.job.Job inside the Glue runtime

    @property
    def is_glue(self) -> bool:
        return self.glue_job is not None

    def commit(self) -> None:
        if self.glue_job is not None:
            self.glue_job.commit()


def configure_output(spark: SparkSession) -> None:
    """Session settings the output depends on, set the same way in every runtime."""
    # Qlik DATETIME values carry no zone: read them as UTC, whatever the machine's zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # INT96 is deprecated; int64 microseconds is what Athena and pyarrow expect.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    # The cast checks rely on a failed cast being NULL; ANSI mode would raise instead,
    # without the line and column.
    spark.conf.set("spark.sql.ansi.enabled", "false")
    # Dates before 1582 and timestamps before 1900 (SQL Server's 1753-01-01, 0001-01-01)
    # are written as they are (proleptic Gregorian); Spark's default refuses them.
    spark.conf.set("spark.sql.parquet.datetimeRebaseModeInWrite", "CORRECTED")
    spark.conf.set("spark.sql.parquet.int96RebaseModeInWrite", "CORRECTED")


def configure_session(spark: SparkSession, env: JobEnv) -> None:
    """Output settings, and S3A pointed at the zones when they are on S3."""
    configure_output(spark)
    if env.is_local:
        return
    if not hadoop_fs.has_class(spark, S3A_CLASS):
        raise ConfigError(
            "--ENV names S3 buckets but this Spark has no S3A connector (plain PySpark reads "
            "file:// only): run in the Glue container or on AWS Glue, or use the local store"
        )
    if env.s3_endpoint_url:
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        conf.set("fs.s3a.endpoint", env.s3_endpoint_url)
        conf.set("fs.s3a.path.style.access", "true")
        conf.set(
            "fs.s3a.connection.ssl.enabled", str(env.s3_endpoint_url.startswith("https")).lower()
        )


def _glue_job(spark: SparkSession, job_name: str, glue_args: dict[str, Any]) -> Any | None:
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
    except ImportError:
        return None
    # The awsglue package from PyPI imports fine on plain PySpark; only the Glue runtime
    # has the JVM classes behind GlueContext.
    if not hadoop_fs.has_class(spark, GLUE_CONTEXT_CLASS):
        return None
    job = Job(GlueContext(spark.sparkContext))
    job.init(job_name, glue_args)
    return job


def start_runtime(job_name: str, glue_args: dict[str, Any], env: JobEnv) -> Runtime:
    """The active session (a test's, the CLI's) or a new one; in Glue, an initialised Job."""
    spark = SparkSession.getActiveSession() or SparkSession.builder.appName(job_name).getOrCreate()
    glue_job = _glue_job(spark, job_name, glue_args)
    configure_session(spark, env)
    log.info("running %s on %s", job_name, "AWS Glue runtime" if glue_job else "plain PySpark")
    return Runtime(spark, glue_job)


def local_session(app_name: str = "data_platform") -> SparkSession:
    """A local session for the CLI and the bench: all cores, no UI."""
    return (
        SparkSession.builder.appName(app_name)
        .master("local[*]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
