"""Every Qlik type: what casts, what is NULL, and what fails the load with row and column.

Few Spark jobs on purpose: the valid values of every type go through one wide DataFrame,
the invalid ones through one DataFrame of validity flags, and a few failing casts show
the raised message end to end (test_ingest.py shows it with the file name).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_platform.batch.cubic_qlik.dfm import DfmColumn, parse_dfm
from data_platform.batch.cubic_qlik.spark import casts
from data_platform.jobs.runtime import configure_output
from tests.jobs.conftest import Col, dfm_document

pytestmark = pytest.mark.spark


def _frame(spark, columns: dict[str, list[str | None]]):
    """One string column per entry, padded with NULLs, one partition (rows in order)."""
    height = max(len(values) for values in columns.values())
    rows = [
        tuple(values[i] if i < len(values) else None for values in columns.values())
        for i in range(height)
    ]
    schema = T.StructType([T.StructField(name, T.StringType()) for name in columns])
    return spark.createDataFrame(rows, schema).coalesce(1)


def _dfm(columns: list[Col]):
    return parse_dfm(json.dumps(dfm_document(columns)))


VALID = [
    (Col("INT1", "INT1"), ["-128", "127", " 42 ", "+5", "-0"], [-128, 127, 42, 5, 0]),
    (Col("INT2", "INT2"), ["-32768", "32767"], [-32768, 32767]),
    (Col("INT4", "INT4"), ["-2147483648", "2147483647"], [-(2**31), 2**31 - 1]),
    (Col("INT8", "INT8"), ["-9223372036854775808", "9223372036854775807"], [-(2**63), 2**63 - 1]),
    (Col("UINT1", "UINT1"), ["0", "255"], [0, 255]),
    (Col("UINT2", "UINT2"), ["65535"], [65535]),
    (Col("UINT4", "UINT4"), ["4294967295"], [4294967295]),
    (Col("UINT8", "UINT8"), ["18446744073709551615", "0"], [Decimal(2**64 - 1), Decimal(0)]),
    (
        Col("NUM", "NUMERIC", 10, 2),
        ["12.3", "1.2300", "-.5", "12345678.99", "7", "7."],
        [Decimal(v) for v in ("12.30", "1.23", "-0.50", "12345678.99", "7.00", "7.00")],
    ),
    (
        Col("NUM_NO_PRECISION", "NUMERIC"),  # no precision in the .dfm: decimal(38,0)
        ["123456789012345678901234567890"],
        [Decimal("123456789012345678901234567890")],
    ),
    (Col("REAL4", "REAL4"), ["1.5", "-2E-3", "3.4e38", "0.0e5"], [1.5, -0.002, 3.4e38, 0.0]),
    (Col("REAL8", "REAL8"), ["1.5e3", "-0.25", "Infinity"], [1500.0, -0.25, float("inf")]),
    (
        Col("BOOL", "BOOLEAN"),
        ["true", "FALSE", "1", "0", "t", "f", "Y", "no"],
        [True, False, True, False, True, False, True, False],
    ),
    (Col("DATE", "DATE"), ["2021-12-01", "2020-02-29"], [date(2021, 12, 1), date(2020, 2, 29)]),
    (
        Col("DATETIME", "DATETIME"),
        [
            "2021-12-01 11:20:30",
            "2021-12-01 11:20:30.4444444",  # 7 digits, as Qlik writes them
            "2021-12-01 11:20:30.123456789",  # 9 digits: rounded to the microsecond
            "2021-12-01 11:20:30.1234564",
            "2021-12-01 11:20:30.1234565",  # a tie goes to the even microsecond
            "2021-12-01 11:20:30.1234575",
            "2021-12-01 23:59:59.9999995",  # rounds into the next day
            "1753-01-01 00:00:00",  # SQL Server's smallest datetime (Spark's rebase)
            "2021-12-01T11:20:30Z",
            "2021-12-01 11:20:30+01:00",  # a zone is converted to UTC
        ],
        [  # as UTC text, so the test does not depend on the machine's time zone
            "2021-12-01 11:20:30",
            "2021-12-01 11:20:30.444444",
            "2021-12-01 11:20:30.123457",
            "2021-12-01 11:20:30.123456",
            "2021-12-01 11:20:30.123456",
            "2021-12-01 11:20:30.123458",
            "2021-12-02 00:00:00",
            "1753-01-01 00:00:00",
            "2021-12-01 11:20:30",
            "2021-12-01 10:20:30",
        ],
    ),
    (Col("TIME", "TIME"), ["23:59:59", "00:00:00.1234567"], ["23:59:59", "00:00:00.1234567"]),
    (Col("BYTES", "BYTES"), ["0aFF", "00"], [bytearray(b"\x0a\xff"), bytearray(b"\x00")]),
    (Col("BLOB", "BLOB"), ["DEADBEEF"], [bytearray(b"\xde\xad\xbe\xef")]),
]
BLANKS = [None, "", "   ", "\t"]
STRINGS = [None, "", "  padded  ", "1.5", "Sample 🔥"]


def test_every_type_casts_exactly_and_blank_is_null(spark) -> None:
    configure_output(spark)
    columns = [col for col, _, _ in VALID]
    strings = [Col(kind, kind) for kind in ("STRING", "WSTRING", "CLOB", "NCLOB")]
    data = {col.name: [*values, *BLANKS] for col, values, _ in VALID}
    data.update({col.name: STRINGS for col in strings})
    out = casts.typed(_frame(spark, data), _dfm([*columns, *strings]))
    out = out.select(
        *(
            F.col(f.name).cast("string").alias(f.name)
            if isinstance(f.dataType, T.TimestampType)
            else F.col(f.name)
            for f in out.schema
        )
    )
    rows = out.collect()
    got = {name: [row[name] for row in rows] for name in out.columns}
    for col, values, expected in VALID:
        assert got[col.name][: len(values)] == expected, col.name
        # After the values: the four blanks, then padding NULLs.
        assert got[col.name][len(values) :] == [None] * (len(rows) - len(values)), col.name
    for col in strings:
        assert got[col.name][: len(STRINGS)] == STRINGS, col.name
    spark_types = {f.name: f.dataType for f in out.schema}
    assert spark_types["INT1"] == T.LongType() and spark_types["UINT8"] == T.DecimalType(20, 0)
    assert spark_types["NUM"] == T.DecimalType(10, 2)


INT4 = "INT4 (integer -2147483648..2147483647)"
UINT8 = "UINT8 (integer 0..18446744073709551615)"
REAL8 = "REAL8 (floating point number)"
DATE = "DATE (YYYY-MM-DD)"
DATETIME = "DATETIME (YYYY-MM-DD HH:MM:SS[.fffffffff])"
INVALID = [
    (Col("C", "INT1"), "128", "INT1 (integer -128..127)"),
    (Col("C", "INT1"), "-129", "INT1 (integer -128..127)"),
    (Col("C", "INT2"), "32768", "INT2 (integer -32768..32767)"),
    (Col("C", "INT4"), "1.5", INT4),  # Spark's cast alone would make this 1
    (Col("C", "INT4"), "abc", INT4),
    (Col("C", "INT4"), "1e3", INT4),
    (Col("C", "INT4"), "2147483648", INT4),
    (
        Col("C", "INT8"),
        "9223372036854775808",
        "INT8 (integer -9223372036854775808..9223372036854775807)",
    ),
    (Col("C", "UINT1"), "-1", "UINT1 (integer 0..255)"),
    (Col("C", "UINT4"), "4294967296", "UINT4 (integer 0..4294967295)"),
    (Col("C", "UINT8"), "18446744073709551616", UINT8),
    (Col("C", "UINT8"), "-1", UINT8),
    (Col("C", "NUMERIC", 10, 2), "1.234", "NUMERIC(10,2)"),  # Spark would round to 1.23
    (Col("C", "NUMERIC", 5, 2), "1234.5", "NUMERIC(5,2)"),  # too many digits before the point
    (Col("C", "NUMERIC", 10, 2), "1e2", "NUMERIC(10,2)"),
    (Col("C", "NUMERIC", 0, 2), "1.234", "NUMERIC(0,2) (as decimal(38,2))"),
    (Col("C", "REAL8"), "1.5d", REAL8),  # Java's parser would take this
    (Col("C", "REAL8"), "one", REAL8),
    (Col("C", "REAL8"), "1e400", REAL8),  # Spark would make it Infinity
    (Col("C", "REAL8"), "1e-400", REAL8),  # Spark would make it 0
    (Col("C", "REAL4"), "1e39", "REAL4 (floating point number)"),  # beyond a 4-byte float
    (Col("C", "BOOLEAN"), "2", "BOOLEAN (true/false, t/f, yes/no, y/n, 1/0)"),
    (Col("C", "DATE"), "2021-02-30", DATE),
    (Col("C", "DATE"), "2021-12-01 10:00:00", DATE),  # Spark would drop the time
    (Col("C", "DATE"), "2021-1-1", DATE),
    (Col("C", "DATETIME"), "2021-12-01", DATETIME),
    (Col("C", "DATETIME"), "2021-12-01 25:00:00", DATETIME),
    (Col("C", "DATETIME"), "2021-12-01 11:20:30.1234567890", DATETIME),
    (Col("C", "TIME"), "24:00:00", "TIME (HH:MM:SS[.fffffffff])"),
    (Col("C", "BYTES"), "abc", "BYTES (hex digits, two per byte)"),  # odd count
    (Col("C", "BLOB"), "zz", "BLOB (hex digits, two per byte)"),
]


def test_every_invalid_value_is_caught(spark) -> None:
    configure_output(spark)
    names = [f"C{i}" for i in range(len(INVALID))]
    frame = _frame(spark, {name: [bad] for name, (_, bad, _) in zip(names, INVALID, strict=True)})
    flags = frame.select(
        *(
            casts.checked_cast(
                DfmColumn(1, name, col.type, 0, col.precision, col.scale)
            ).valid.alias(name)
            for name, (col, _, _) in zip(names, INVALID, strict=True)
        )
    ).collect()[0]
    accepted = [
        (col.type, bad) for name, (col, bad, _) in zip(names, INVALID, strict=True) if flags[name]
    ]
    assert accepted == []


@pytest.mark.parametrize(
    ("col", "bad", "expected"), INVALID, ids=[f"{c.type}-{b}" for c, b, _ in INVALID]
)
def test_the_message_says_what_a_valid_value_looks_like(col: Col, bad: str, expected: str) -> None:
    column = DfmColumn(1, "C", col.type, 0, col.precision, col.scale)
    assert casts.cast_rule(column).expected == expected


@pytest.mark.parametrize(
    ("col", "bad"),
    [
        (Col("AMOUNT", "INT4"), "1.5"),
        (Col("AMOUNT", "NUMERIC", 10, 2), "1.234"),
        (Col("AMOUNT", "DATETIME"), "2021-12-01"),
        (Col("AMOUNT", "DATE"), 'it\'s "quoted",\nover two lines'),  # survives the JSON trip
    ],
    ids=["INT4", "NUMERIC", "DATETIME", "DATE-quotes-newline"],
)
def test_a_failed_cast_raises_with_line_and_column(spark, col: Col, bad: str) -> None:
    configure_output(spark)
    frame = _frame(spark, {"AMOUNT": [None, "", bad, "0"]})
    with pytest.raises(Exception) as failure:  # Spark's own exception types
        casts.typed(frame, _dfm([col])).collect()
    expected = casts.cast_rule(
        DfmColumn(1, "AMOUNT", col.type, 0, col.precision, col.scale)
    ).expected
    # The third record is line 4: the header is line 1.
    assert casts.find_cast_failure(str(failure.value)) == casts.CastFailure(
        4, "AMOUNT", bad, expected
    )
    assert casts.CastFailure(4, "AMOUNT", bad, expected).reason == (
        f"{bad!r} is not a valid {expected}"
    )


def test_decimal_precision_out_of_spark_range_becomes_38() -> None:
    assert casts.decimal_type(DfmColumn(1, "X", "NUMERIC", precision=0, scale=4)) == (
        T.DecimalType(38, 4)
    )
    assert casts.decimal_type(DfmColumn(1, "X", "NUMERIC", precision=50, scale=2)) == (
        T.DecimalType(38, 2)
    )
