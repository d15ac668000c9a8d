"""Read a springboard table whose partitions were written in several shapes.

Each load's partition keeps the shape of its `.dfm` when the Glue job wrote it. After a
source schema change (README, "When the source changes shape") newer partitions have
more columns or wider types. Spark's own `mergeSchema` reads partitions with added
columns together (missing columns are null), but Spark 3.5 cannot merge two DECIMAL
shapes or a LONG with a DECIMAL or STRING (CANNOT_MERGE_SCHEMAS), nor read an old
partition through a wider schema ("Parquet column cannot be converted"). `read_table`
tries `mergeSchema` first and, when it fails, reads each group of same-shaped files by
itself, casts it to the widest shape, and unions them by name: no value changes, since
every widening evolution allows (README) is a lossless cast.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.utils import AnalysisException

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_INTEGRAL_DIGITS = {T.ByteType: 3, T.ShortType: 5, T.IntegerType: 10, T.LongType: 19}


def widest(left: T.DataType, right: T.DataType) -> T.DataType:
    """The type both `left` and `right` cast to without changing a value: the wider
    integer, a DECIMAL with the larger integer digits and scale (at most 38 digits), a
    DOUBLE for two floats, a STRING for anything with a string. Raises TypeError."""
    if left == right:
        return left
    if isinstance(left, T.StringType) or isinstance(right, T.StringType):
        return T.StringType()
    if isinstance(left, _INTEGRAL) and isinstance(right, _INTEGRAL):
        return max(left, right, key=lambda t: _INTEGRAL_DIGITS[type(t)])
    shapes = [_decimal_shape(t) for t in (left, right)]
    if all(shape is not None for shape in shapes):
        digits = max(shape[0] - shape[1] for shape in shapes)  # type: ignore[index]
        scale = max(shape[1] for shape in shapes)  # type: ignore[index]
        if digits + scale > 38:
            raise TypeError(f"{left} and {right} need more than 38 digits")
        return T.DecimalType(digits + scale, scale)
    if {type(left), type(right)} == {T.FloatType, T.DoubleType}:
        return T.DoubleType()
    raise TypeError(f"no lossless common type for {left} and {right}")


def _decimal_shape(data_type: T.DataType) -> tuple[int, int] | None:
    if isinstance(data_type, T.DecimalType):
        return data_type.precision, data_type.scale
    if isinstance(data_type, _INTEGRAL):
        return _INTEGRAL_DIGITS[type(data_type)], 0
    return None


def merged_schema(schemas: list[T.StructType]) -> T.StructType:
    """Every column of `schemas`, in first-seen order, each of its widest type."""
    fields: dict[str, T.DataType] = {}
    for schema in schemas:
        for field in schema.fields:
            known = fields.get(field.name)
            fields[field.name] = field.dataType if known is None else widest(known, field.dataType)
    return T.StructType([T.StructField(name, data_type) for name, data_type in fields.items()])


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """Every partition under `path` (a table of the springboard zone, `file://` or
    `s3://` as the job's filesystem reads it), old and new shapes together, with the
    partition columns (`snapshot`, `identifier`, `dp__load_id`). Raises TypeError when
    two shapes have no lossless common type (a change evolution refuses)."""
    try:
        frame = spark.read.option("mergeSchema", "true").parquet(path)
        frame.schema  # noqa: B018 - the merge happens when the schema is resolved
        return frame
    except Exception as exc:  # Spark raises its merge failure as a Py4J or Spark error
        if "CANNOT_MERGE" not in str(exc) and not isinstance(exc, AnalysisException):
            raise
    files = spark.read.parquet(path).inputFiles()
    groups: dict[str, list[str]] = {}
    shapes: dict[str, T.StructType] = {}
    for name in sorted(files):
        schema = spark.read.option("basePath", path).parquet(name).schema
        groups.setdefault(schema.json(), []).append(name)
        shapes[schema.json()] = schema
    target = merged_schema(list(shapes.values()))
    frames = []
    for shape, names in groups.items():
        part = spark.read.option("basePath", path).parquet(*names)
        present = set(shapes[shape].fieldNames())
        frames.append(
            part.select(
                *(
                    F.col(f"`{field.name}`").cast(field.dataType).alias(field.name)
                    if field.name in present
                    else F.lit(None).cast(field.dataType).alias(field.name)
                    for field in target.fields
                )
            )
        )
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result
