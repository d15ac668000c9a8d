"""One DATETIME rule on both paths: the Glue job's cast (casts.py) writes to Parquet exactly
what `qlik_datetime` (migration 0003) gives the Postgres tables, and both agree with an
independent reference in exact decimal arithmetic.

The rule: `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}]`, optionally `Z` or `+-HH:MM` (to UTC), blanks
around it trimmed; digits 7-9 rounded to the nearest microsecond, ties to even; never
later than 9999-12-31 23:59:59.999999. Values are compared as microseconds since the
epoch (a `+HH:MM` offset on 0001-01-01 gives a year-0 value no Python datetime holds).
"""

from __future__ import annotations

import json
import random
import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_platform.batch.cubic_qlik.dfm import DfmColumn, parse_dfm
from data_platform.batch.cubic_qlik.spark import casts
from data_platform.jobs.runtime import configure_output
from tests.jobs.conftest import Col, dfm_document

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# --- The reference: the rule in plain Python, exact -----------------------------------------

EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)
LATEST = (datetime(9999, 12, 31, 23, 59, 59, 999999) - EPOCH) // MICROSECOND
REFERENCE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
BLANKS = " \t\r\n\f\v"


def reference(text: str) -> int | None:
    """Microseconds since the epoch, UTC; None when the text is not a valid DATETIME."""
    match = REFERENCE.fullmatch(text.strip(BLANKS))
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match.group(7) or "0", match.group(8)
    try:
        local = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    exact = Decimal("0." + fraction) * 1_000_000
    micros = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    offset = 0
    if zone and zone != "Z":
        offset = (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 60 + int(zone[4:6]))
    return min((local - EPOCH) // MICROSECOND + micros - offset * 60_000_000, LATEST)


# --- The values --------------------------------------------------------------------------

CASE = "2021-12-01 11:20:30"
CASES = {  # fraction -> microseconds (exact ties and their neighbours)
    ".1234565": 123456,
    ".0001255": 126,
    ".0001265": 126,
    ".2602075": 260208,
    ".1293295": 129330,
    ".5029195": 502920,
    ".5205665": 520566,
    ".0627715": 62772,
}
CASE_SECONDS = (datetime.fromisoformat(CASE) - EPOCH) // MICROSECOND
FIXED = [
    *(CASE + fraction for fraction in CASES),
    "9999-12-31 23:59:59.9999999",  # SQL Server's datetime2 maximum
    "9999-12-31 23:59:59.999999",
    "9999-12-31 23:59:59.9999995",
    "9999-12-31 23:59:59.999999999",
    "9999-12-31T23:59:59.9999999Z",
    "9999-12-31 23:59:59.9999999-01:00",  # past the maximum in UTC: the maximum
    "9999-12-31 23:59:59.9999999+01:00",
    " 9999-12-31 23:59:59.9999999 ",
    "9999-12-31 23:59:59.9999985",  # a tie onto an even microsecond: down
    "0001-01-01 00:00:00",
    "0001-01-01 00:00:00.0000005",
    "0001-01-01 00:00:00.0000015+01:00",  # 1 BC in UTC
    "1969-12-31 23:59:59.9999995",  # rounds onto the epoch
    "1969-12-31 23:59:59.9999985",
    "2021-12-01 23:59:59.9999995",  # into the next day
    "2020-02-29 12:00:00.5",
    "2021-12-01 11:20:30-00:30",
    "2021-12-01 11:20:30+00:00",
    "2021-12-01 11:20:30.000000500Z",
    "2021-12-01 11:20:30.000001500+05:30",
    "\t2021-12-01 11:20:30.1234565\r\n",
]
N_RANDOM = 4000
WHITESPACE = " \t\r\n\f"  # not \v: see test_vertical_tab_is_blank_on_both_paths


def _fraction(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:
        return ""
    if kind < 0.55:  # an exact tie: the digits after the microsecond are 5, 50 or 500
        micros = "".join(rng.choices("0123456789", k=rng.randint(0, 6)))
        return "." + micros.ljust(6, rng.choice("09")) + rng.choice(["5", "50", "500"])
    if kind < 0.65:  # just off a tie, or nines that carry into the next second
        micros = rng.choice(["".join(rng.choices("0123456789", k=6)), "999999"])
        return "." + micros + rng.choice(["499", "501", "999", "9", "4"])
    return "." + "".join(rng.choices("0123456789", k=rng.randint(1, 9)))


def _zone(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return ""
    if kind < 0.6:
        return "Z"
    minutes = rng.choice([0, 15, 30, 45, rng.randint(0, 59)])
    return f"{rng.choice('+-')}{rng.randint(0, 18):02d}:{minutes:02d}"


def _blank(rng: random.Random) -> str:
    return "".join(rng.choices(WHITESPACE, k=rng.randint(1, 3))) if rng.random() < 0.15 else ""


def generated(count: int, seed: int = 20261201) -> list[str]:
    rng = random.Random(seed)
    first, last = date(1, 1, 1).toordinal(), date(9999, 12, 31).toordinal()
    values = []
    for _ in range(count):
        if rng.random() < 0.05:  # the edges, where rounding and zones cross days and years
            day = date.fromordinal(rng.choice([first, first + 1, last - 1, last]))
            clock = rng.choice(["00:00:00", "23:59:59", "23:00:00"])
        else:
            day = date.fromordinal(rng.randint(first, last))
            clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        stamp = f"{day.isoformat()}{rng.choice(' T')}{clock}{_fraction(rng)}{_zone(rng)}"
        values.append(_blank(rng) + stamp + _blank(rng))
    return values


# --- The two paths -----------------------------------------------------------------------


def spark_micros(spark, values: list[str], out: Path) -> list[int | None]:
    """The job's typed columns for `values`, written to Parquet and read back as int64."""
    columns = [Col("I", "INT8"), Col("V", "DATETIME")]
    dfm = parse_dfm(json.dumps(dfm_document(columns)))
    schema = T.StructType([T.StructField("I", T.StringType()), T.StructField("V", T.StringType())])
    frame = spark.createDataFrame([(str(i), v) for i, v in enumerate(values)], schema)
    casts.typed(frame.coalesce(1), dfm).write.parquet(str(out))
    table = pq.read_table(out)
    assert table.schema.field("V").type == pa.timestamp("us", tz="UTC")
    order = table.column("I").to_pylist()
    micros = table.column("V").cast(pa.int64()).to_pylist()
    by_index = dict(zip(order, micros, strict=True))
    return [by_index[i] for i in range(len(values))]


def postgres_micros(values: list[str], function: str = "qlik_datetime") -> list[int | None]:
    from data_platform.db.engine import get_engine

    query = sa.text(
        f"SELECT (extract(epoch FROM {function}(v)) * 1000000)::bigint "
        "FROM unnest(CAST(:values AS text[])) WITH ORDINALITY AS t(v, i) ORDER BY i"
    )
    with get_engine().connect() as conn:
        return list(conn.execute(query, {"values": values}).scalars())


def _disagreements(values, *columns) -> list[tuple]:
    return [(v, *got) for v, *got in zip(values, *columns, strict=True) if len(set(got)) != 1]


def test_spark_postgres_and_reference_agree_on_every_value(spark, platform, tmp_path) -> None:
    configure_output(spark)
    values = FIXED + generated(N_RANDOM)
    expected = [reference(v) for v in values]
    assert None not in expected  # every generated value is valid
    from_spark = spark_micros(spark, values, tmp_path / "parquet")
    from_postgres = postgres_micros(values)
    general = postgres_micros(values, "qlik_datetime_general")
    assert _disagreements(values, expected, from_spark, from_postgres, general) == []
    assert len(values) == len(FIXED) + N_RANDOM
    # The generator reaches the cases that matter.
    ties = [v for v in values if re.search(r"\.[0-9]{6}50*(\s|Z|[+-]|$)", v)]
    assert len(ties) > N_RANDOM // 4
    assert sum(1 for v in values if v != v.strip()) > N_RANDOM // 10
    assert sum(1 for v in values if re.search(r"[+-][0-9]{2}:[0-9]{2}\s*$", v)) > N_RANDOM // 4


def test_the_eight_field_cases_and_the_maximum(spark, platform, tmp_path) -> None:
    configure_output(spark)
    values = [CASE + fraction for fraction in CASES]
    values += ["9999-12-31 23:59:59.9999999", "9999-12-31 23:59:59.9999999-01:00"]
    expected = [CASE_SECONDS + micros for micros in CASES.values()] + [LATEST, LATEST]
    assert [reference(v) for v in values] == expected
    assert spark_micros(spark, values, tmp_path / "parquet") == expected
    assert postgres_micros(values) == expected


def test_a_naive_value_is_written_unshifted_whatever_the_session_zone(spark, tmp_path) -> None:
    configure_output(spark)
    values = [CASE + ".1234565", "2021-07-01 02:30:00", "9999-12-31 23:59:59.9999999"]
    try:
        spark.conf.set("spark.sql.session.timeZone", "America/St_Johns")  # -03:30, DST
        written = spark_micros(spark, values, tmp_path / "parquet")
    finally:
        configure_output(spark)
    assert written == [reference(v) for v in values]


# --- Known disagreements: Postgres's side (migration 0003) ---------------------------------


def _both(spark, value: str) -> tuple[object, object]:
    """(Spark, Postgres) for one value: microseconds, or "invalid"."""
    from data_platform.db.engine import get_engine

    configure_output(spark)
    frame = spark.createDataFrame([(value,)], "V string")
    check = casts.checked_cast(DfmColumn(1, "V", "DATETIME", 0, 0, 0))
    row = frame.select(check.valid.alias("ok"), F.unix_micros(check.converted).alias("us")).first()
    spark_side = row.us if row.ok else "invalid"
    try:
        with get_engine().connect() as conn:
            pg_side = conn.execute(
                sa.text("SELECT (extract(epoch FROM qlik_datetime(:v)) * 1000000)::bigint"),
                {"v": value},
            ).scalar()
    except sa.exc.DataError:
        pg_side = "invalid"
    return spark_side, pg_side


@pytest.mark.parametrize("value", ["\v2021-12-01 11:20:30", "v2021-12-01 11:20:30v"])
def test_vertical_tab_is_blank_on_both_paths(spark, platform, value: str) -> None:
    expected = reference(value)
    expected = "invalid" if expected is None else expected
    assert _both(spark, value) == (expected, expected)


@pytest.mark.parametrize(
    "value",
    [
        "2021-12-01 24:00:00",
        "2021-12-01 23:59:60",
        "2021-12-01 23:59:60.5 ",
        "2021-12-01 24:00:00Z",
    ],
)
def test_hour_24_and_second_60_are_invalid_on_both_paths(spark, platform, value: str) -> None:
    assert _both(spark, value) == ("invalid", "invalid")
