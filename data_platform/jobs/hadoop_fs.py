"""Small file operations through Spark's Hadoop FileSystem.

The job reads .dfm files and writes its result document through the same filesystem
layer as its DataFrames, so one set of URIs (file://, s3a://) and one configuration
(credentials, endpoint) serve everything, and the job needs no boto3.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession


def _jvm(spark: SparkSession) -> Any:
    """The JVM of `spark`'s context, through py4j (pyspark types it None once stopped).

    Raises RuntimeError when the context is stopped."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the SparkContext is stopped: no JVM to reach Hadoop's FileSystem")
    return jvm


def _fs_and_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    path = _jvm(spark).org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_and_path(spark, uri)
    return bool(fs.exists(path)) and bool(fs.getFileStatus(path).isFile())


def read_bytes(spark: SparkSession, uri: str) -> bytes:
    fs, path = _fs_and_path(spark, uri)
    stream = fs.open(path)
    try:
        return bytes(_jvm(spark).org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    fs, path = _fs_and_path(spark, uri)
    # The local filesystem would leave a hidden .crc file beside the object.
    fs.setWriteChecksum(False)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def modified_time(spark: SparkSession, uri: str) -> datetime:
    fs, path = _fs_and_path(spark, uri)
    millis = fs.getFileStatus(path).getModificationTime()
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def delete_tree(spark: SparkSession, uri: str) -> None:
    """Delete a file or a directory and everything below it (absent is fine)."""
    fs, path = _fs_and_path(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def glob_files(spark: SparkSession, pattern_uri: str) -> list[str]:
    """URIs of files matching a Hadoop glob, sorted."""
    fs, path = _fs_and_path(spark, pattern_uri)
    statuses = fs.globStatus(path) or []
    return sorted(str(status.getPath().toString()) for status in statuses if status.isFile())


def has_class(spark: SparkSession, name: str) -> bool:
    """Whether the driver JVM can load a class (Glue runtime, S3A connector)."""
    from py4j.java_gateway import JavaClass

    target: Any = spark.sparkContext._jvm
    for part in name.split("."):
        target = getattr(target, part)
    # py4j answers a JavaPackage for a name it cannot load as a class.
    return isinstance(target, JavaClass)
