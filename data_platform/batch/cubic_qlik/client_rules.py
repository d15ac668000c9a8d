"""Qlik's field rules in Arrow's compute kernels, for values converted or checked on the
client while a file streams (`loads.arrow_csv`): DATETIME and NUMERIC.

The rule is `qlik_datetime` (revision 0003) and the Glue job's `spark.casts._datetime`:
the nine fraction digits rounded to the nearest microsecond, ties to even, in decimal;
at most 9999-12-31 23:59:59.999999. Here only its common form is taken, the form Qlik
writes: `YYYY-MM-DD HH:MM:SS[.f{1,9}]` (or `T` between date and time), hours 00-23,
seconds 00-59, a real date of years 0001-9999, nothing around it. Any other value
(surrounding spaces, a zone suffix, invalid text) raises NotConvertible, and the caller
loads the file through the SQL rule, which converts or refuses it and names its record.
tests/jobs/test_datetime_parity.py holds the three to the same values.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from data_platform.loads.arrow_csv import Converter, NotConvertible

# As revision 0003's PATTERN, with the fraction and the end: RE2 (Arrow's regex engine).
COMMON_FORM = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,9})?$"
)
# 9999-12-31 23:59:59.999999 in microseconds since 1970: SQL Server's maximum
# 9999-12-31 23:59:59.9999999 stays in year 9999 (spark.casts.DATETIME_MAX_MICROS).
MAX_MICROS = 253402300799999999


def qlik_datetimes(values: pa.Array) -> pa.Array:
    """Qlik DATETIME text (an Arrow string array, NULLs kept) as timestamp[us] values.

    Raises NotConvertible when a value is not of the common form or names no date and
    time (the SQL rule decides those)."""
    form = pc.match_substring_regex(values, COMMON_FORM)
    # Year 0000 matches the form; PostgreSQL and the Glue job refuse it.
    if pc.any(pc.invert(form)).as_py() or pc.any(pc.starts_with(values, "0000")).as_py():
        raise NotConvertible("a DATETIME value not of the common form")
    try:
        # Arrow's ISO 8601 parse: refuses a day the month does not have.
        seconds = pc.cast(pc.utf8_slice_codeunits(values, 0, 19), pa.timestamp("s"))
    except pa.ArrowInvalid as exc:
        raise NotConvertible(f"a DATETIME value names no date: {exc}") from exc
    # The fraction's digits padded to nine (nanoseconds; none is 0): a join and a slice,
    # a tenth of utf8_rpad's time.
    fraction = pc.utf8_slice_codeunits(values, 20, 29)
    # (pyarrow-stubs type the variadic strings as arrays only; Arrow takes scalars too.)
    digits = pc.binary_join_element_wise(fraction, "0" * 9, "")  # type: ignore[call-overload]
    nanos = pc.cast(pc.utf8_slice_codeunits(digits, 0, 9), pa.int64())
    micros = pc.divide(nanos, 1000)  # integer division: the first six digits
    rest = pc.subtract(nanos, pc.multiply(micros, 1000))  # digits 7-9
    one, half = pa.scalar(1, pa.int64()), pa.scalar(500, pa.int64())
    odd = pc.equal(pc.bit_wise_and(micros, one), one)
    up = pc.or_(pc.greater(rest, half), pc.and_(pc.equal(rest, half), odd))
    total = pc.add(
        pc.add(pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000), micros),
        pc.cast(up, pa.int64()),
    )
    latest = pc.min_element_wise(total, MAX_MICROS, skip_nulls=False)  # NULL stays NULL
    return pc.cast(latest, pa.timestamp("us"))


def numeric_check(digits: int, places: int) -> Converter | None:
    """A check that NUMERIC text fits `digits` before the point and `places` after it
    (`checks.numeric_limits`), so that COPY into numeric(p,s) changes no digit: the text
    returned as it is. Only the plain form is taken (`-12.50`; zeros past the scale, as
    `check_numeric` takes them); any other value (spaces, an exponent, leading zeros,
    NaN) raises NotConvertible, and `check_numeric` decides. None when the type leaves
    no digit before the point."""
    if digits < 1:
        return None
    fraction = rf"(?:\.[0-9]{{1,{places}}}0*)?" if places else r"(?:\.0+)?"
    form = rf"^[+-]?(?:0|[1-9][0-9]{{0,{digits - 1}}}){fraction}$"

    def check(values: pa.Array) -> pa.Array:
        if pc.any(pc.invert(pc.match_substring_regex(values, form))).as_py():
            raise NotConvertible("a NUMERIC value not of the plain form or too wide")
        return values

    return check
