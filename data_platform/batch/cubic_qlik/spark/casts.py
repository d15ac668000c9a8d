"""Qlik column types to Spark types, with casts that fail loudly.

Spark's cast answers NULL for text it cannot parse, and silently changes some text it
can: `1.5` becomes 1 as a long, `1.234` becomes 1.23 as decimal(5,2), `2021-12-01 10:00`
becomes a date. So every typed column is checked: the trimmed text must match the type's
pattern where Spark's cast is lenient, the cast must not be NULL, and integers must fit
their Qlik width. A value that fails raises (Spark's `raise_error`) inside the write,
naming the line and column; empty or blank (whitespace only) text is NULL. Lines count
CSV records with the header as line 1, as the Postgres load path counts them.

Type mapping (string columns are never trimmed or changed):
  INT1/2/4/8, UINT1/2/4 -> long      UINT8 -> decimal(20,0)
  NUMERIC(p,s) -> decimal(p,s)       (p 0 or above 38 -> decimal(38,s))
  REAL4, REAL8 -> double             BOOLEAN -> boolean
  DATE -> date                       DATETIME -> timestamp (UTC, microseconds, rounded)
                                     (as Postgres's qlik_datetime: see `_datetime`)
  TIME -> string (checked HH:MM:SS)  BYTES, BLOB -> binary (from hex text)
  STRING, WSTRING, CLOB, NCLOB -> string
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_platform.batch.cubic_qlik.dfm import Dfm, DfmColumn
from data_platform.batch.cubic_qlik.types import INTEGER_RANGES

LINE_COLUMN = "__dp_line"
# A failed cast's line, column and value travel inside Spark's exception text as JSON
# between these markers (JSON, so any value survives the trip).
ERROR_START = "<<dp-cast-error>>"
ERROR_END = "<</dp-cast-error>>"
_ERROR_RE = re.compile(re.escape(ERROR_START) + "(.*?)" + re.escape(ERROR_END), re.DOTALL)

STRING_TYPES = frozenset({"STRING", "WSTRING", "CLOB", "NCLOB"})


_INTEGER = r"^[+-]?[0-9]+$"
_REAL = r"(?i)^[+-]?((?=\.?[0-9])[0-9]*(\.[0-9]*)?(e[+-]?[0-9]+)?|nan|inf|infinity)$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_FRACTION = r"(\.[0-9]{1,9})?"
# Groups: the date and time to the second, fraction digits, zone suffix. `\z`, not `$`:
# Java's `$` also matches before a final line terminator (\u2028, \u0085), which Postgres's
# does not. Year 0000 is refused as Postgres refuses it (Spark's cast would take it).
_DATETIME = (
    r"^((?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})?\z"
)
# 9999-12-31 23:59:59.999999 UTC in microseconds: the latest DATETIME of both paths, so
# SQL Server's 9999-12-31 23:59:59.9999999 stays in year 9999.
DATETIME_MAX_MICROS = 253402300799999999
_TIME = rf"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{_FRACTION}$"
_WHITESPACE = " \t\r\n\f\v"


@dataclass(frozen=True)
class CastRule:
    """How one Qlik column becomes a Spark column."""

    spark_type: T.DataType
    pattern: str | None  # the trimmed text must match, where the cast alone is lenient
    expected: str  # what a valid value looks like, for the error message
    bounds: tuple[int, int] | None = None


def decimal_type(column: DfmColumn) -> T.DecimalType:
    precision = column.precision if 0 < column.precision <= 38 else 38
    return T.DecimalType(precision, min(max(column.scale, 0), precision))


def _decimal_pattern(scale: int) -> str:
    # Digits after the scale must be zeros: 1.2300 fits NUMERIC(5,2), 1.234 does not.
    return rf"^[+-]?(?=\.?[0-9])[0-9]*(\.[0-9]{{0,{scale}}}0*)?$"


def cast_rule(column: DfmColumn) -> CastRule:
    kind = column.type
    if kind in STRING_TYPES:
        return CastRule(T.StringType(), None, kind)
    if kind in INTEGER_RANGES:
        low, high = INTEGER_RANGES[kind]
        spark_type = T.DecimalType(20, 0) if kind == "UINT8" else T.LongType()
        return CastRule(spark_type, _INTEGER, f"{kind} (integer {low}..{high})", (low, high))
    if kind == "NUMERIC":
        dec = decimal_type(column)
        expected = f"NUMERIC({column.precision},{column.scale})"
        if (dec.precision, dec.scale) != (column.precision, column.scale):
            expected += f" (as decimal({dec.precision},{dec.scale}))"
        return CastRule(dec, _decimal_pattern(dec.scale), expected)
    if kind in ("REAL4", "REAL8"):
        return CastRule(T.DoubleType(), _REAL, f"{kind} (floating point number)")
    if kind == "BOOLEAN":
        # Spark's cast takes exactly true/false, t/f, yes/no, y/n, 1/0 in any case.
        return CastRule(T.BooleanType(), None, "BOOLEAN (true/false, t/f, yes/no, y/n, 1/0)")
    if kind == "DATE":
        return CastRule(T.DateType(), _DATE, "DATE (YYYY-MM-DD)")
    if kind == "DATETIME":
        return CastRule(T.TimestampType(), _DATETIME, "DATETIME (YYYY-MM-DD HH:MM:SS[.fffffffff])")
    if kind == "TIME":
        return CastRule(T.StringType(), _TIME, "TIME (HH:MM:SS[.fffffffff])")
    if kind in ("BYTES", "BLOB"):
        return CastRule(T.BinaryType(), None, f"{kind} (hex digits, two per byte)")
    raise ValueError(f"no Spark type for Qlik type {kind}")


def column_ref(name: str) -> Column:
    """A column by its exact name, even with dots or backticks in it."""
    return F.col("`" + name.replace("`", "``") + "`")


def add_line_numbers(df: DataFrame) -> DataFrame:
    """Number the records 2, 3, ... in file order (the header is line 1).

    monotonically_increasing_id counts rows within a partition, and a multiLine CSV file
    is one partition. It must be its own column: inside the error branch of a CASE it
    would only count the rows that reach that branch.
    """
    return df.withColumn(LINE_COLUMN, F.monotonically_increasing_id() + 2)


def _convert(value: Column, rule: CastRule) -> Column:
    if isinstance(rule.spark_type, T.TimestampType):
        return _datetime(value)
    if isinstance(rule.spark_type, T.BinaryType):
        # unhex reads an odd digit count as if it had a leading 0; Qlik writes two per byte.
        return F.when(F.length(value) % 2 == 0, F.unhex(value))
    return value.cast(rule.spark_type)


def _datetime(value: Column) -> Column:
    """A trimmed Qlik DATETIME as the Postgres path's `qlik_datetime` (migration 0003) has it.

    Spark's cast drops fraction digits 7-9 and accepts only zone offsets up to 18:00; so
    only the whole seconds go through the cast, and the rest is integer arithmetic on
    microseconds since the epoch: the nine fraction digits rounded to the nearest
    microsecond, ties to even; the `+-HH:MM` offset subtracted (to UTC); the result at
    most DATETIME_MAX_MICROS. The seconds are cast with a `Z`, so a value without a zone
    is read as UTC whatever spark.sql.session.timeZone says. NULL when the text does not
    match `_DATETIME` or names no valid date and time.
    """
    seconds = F.concat(F.regexp_extract(value, _DATETIME, 1), F.lit("Z")).cast(T.TimestampType())
    nine = F.rpad(F.regexp_extract(value, _DATETIME, 2), 9, "0")
    micros, rest = F.substring(nine, 1, 6).cast("long"), F.substring(nine, 7, 3).cast("long")
    up = (rest > 500) | ((rest == 500) & (micros % 2 == 1))
    zone = F.regexp_extract(value, _DATETIME, 3)
    sign = F.when(F.substring(zone, 1, 1) == "-", F.lit(-1)).otherwise(F.lit(1))
    offset_minutes = F.when(
        F.length(zone) == 6,
        sign * (F.substring(zone, 2, 2).cast("long") * 60 + F.substring(zone, 5, 2).cast("long")),
    ).otherwise(F.lit(0))
    total = F.unix_micros(seconds) + micros + up.cast("long") - offset_minutes * F.lit(60_000_000)
    # Not F.least: it skips NULLs, and would make an invalid value the maximum.
    latest = F.lit(DATETIME_MAX_MICROS)
    return F.timestamp_micros(F.when(total > latest, latest).otherwise(total))


@dataclass(frozen=True)
class CheckedCast:
    """The expressions one typed column is made of."""

    blank: Column  # NULL, empty or whitespace only: the result is NULL
    converted: Column  # the cast value
    valid: Column  # the text is a valid value of the type (meaningless when blank)


def checked_cast(column: DfmColumn) -> CheckedCast:
    rule = cast_rule(column)
    source = column_ref(column.name)
    value = F.btrim(source, F.lit(_WHITESPACE))
    converted = _convert(value, rule)
    valid = converted.isNotNull()
    if rule.pattern is not None:
        valid = value.rlike(rule.pattern) & valid
    if rule.bounds is not None and column.type != "INT8":  # a long cannot exceed INT8
        low, high = (F.lit(Decimal(bound)) for bound in rule.bounds)
        valid = valid & converted.between(low, high)
    if column.type in REAL_LIMITS:
        valid = valid & _real_in_range(value, converted, REAL_LIMITS[column.type])
    return CheckedCast(source.isNull() | (value == ""), converted, valid)


# Largest finite value of a 4- and an 8-byte float.
REAL_LIMITS = {"REAL4": 3.4028234663852886e38, "REAL8": 1.7976931348623157e308}


def _real_in_range(text: Column, converted: Column, limit: float) -> Column:
    """Spark reads `1e400` as Infinity and `1e-400` as 0, where Postgres says out of range:
    infinity and zero must be written as such, and REAL4 must fit a 4-byte float."""
    special = text.rlike(r"(?i)^[+-]?(nan|inf|infinity)$")
    zero = text.rlike(r"(?i)^[+-]?[0.]*(e[+-]?[0-9]+)?$")
    fits = F.abs(converted) <= F.lit(limit)
    not_flushed = (converted != F.lit(0.0)) | zero
    return special | (fits & not_flushed)


def typed_column(column: DfmColumn) -> Column:
    """The column cast to its Spark type; a value that does not fit raises with its line."""
    source = column_ref(column.name)
    if column.type in STRING_TYPES:
        return source.alias(column.name)
    rule = cast_rule(column)
    check = checked_cast(column)
    failure = F.struct(
        F.col(LINE_COLUMN).alias("line"),
        F.lit(column.name).alias("column"),
        F.substring(source, 1, 80).alias("value"),
        F.lit(rule.expected).alias("expected"),
    )
    message = F.concat(F.lit(ERROR_START), F.to_json(failure), F.lit(ERROR_END))
    return (
        F.when(check.blank, F.lit(None).cast(rule.spark_type))
        .when(check.valid, check.converted)
        .otherwise(F.raise_error(message))
        .alias(column.name)
    )


def typed(df: DataFrame, dfm: Dfm) -> DataFrame:
    """Every column of a string DataFrame cast to the .dfm's types (header__ ones too)."""
    numbered = add_line_numbers(df)
    return numbered.select(*(typed_column(column) for column in dfm.columns))


def raw(df: DataFrame, dfm: Dfm) -> DataFrame:
    """The string DataFrame unchanged, in the .dfm's column order."""
    return df.select(*(column_ref(column.name) for column in dfm.columns))


@dataclass(frozen=True)
class CastFailure:
    line: int  # CSV record, the header being line 1
    column: str
    value: str  # the first 80 characters of the text
    expected: str

    @property
    def reason(self) -> str:
        return f"{self.value!r} is not a valid {self.expected}"


def find_cast_failure(text: str) -> CastFailure | None:
    """The failed cast a Spark exception's text carries, if any."""
    match = _ERROR_RE.search(text)
    if not match:
        return None
    fields = json.loads(match.group(1))
    return CastFailure(int(fields["line"]), fields["column"], fields["value"], fields["expected"])
