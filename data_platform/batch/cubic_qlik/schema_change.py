"""How a Qlik file's shape differs from its table, and what a reviewed revision may do
about it (README, "When the source changes shape"; doc/adr/0008-schema-evolution.md).

Replicate carries DDL at the source into the next files' `.dfm` (`tableVersion` goes up):
a column added or removed, a type widened, a NUMERIC's precision or scale changed. A file
loads only when every value it can hold fits its table column unchanged; otherwise
`compare` lists each difference and the load errors with them, naming the command that
resolves them (`data-platform cubic-qlik evolve-table`), and nothing is loaded.

The rules, per column (`fit`):

- fits: the declared type is the table's, the table's is `text`, or the declared type
  is narrower (a shorter string, a smaller integer, fewer digits: Postgres checks every
  value on its own line). A narrower type is never applied to the table: narrowing would
  lose stored values; evolution reports it as kept.
- widen: the least type holding both the stored values and the file's, with no stored
  value changed: a longer string or text, a wider integer, a NUMERIC with more digits
  or scale (an integer column becomes NUMERIC when it must), REAL to DOUBLE, and
  anything (but binary) to text when the source made the column a string.
- refused: any other change of kind (an integer becoming a float or a date, a date
  becoming a time, ...) would reinterpret stored values; so would a changed key, or a key
  column gone from the source. Those need a hand-written revision and a new snapshot.

A column gone from the source (not a key) stays in the table: once a revision records it
as removed (`schema_changes`), files without it load and leave it NULL in new rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from data_platform.batch.cubic_qlik.dfm import Dfm, DfmColumn
from data_platform.batch.cubic_qlik.types import describe_type, pg_type
from data_platform.loads.schema_changes import ColumnChange

_INTEGERS = ("smallint", "integer", "bigint")
# Digits an integer type may need (its maximum's) and the digits of every value it holds.
_INTEGER_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
_INTEGER_HOLDS = {"smallint": 4, "integer": 9, "bigint": 18}
_NUMERIC_RE = re.compile(r"^numeric\((\d+),(\d+)\)$")
_VARCHAR_RE = re.compile(r"^character varying\((\d+)\)$")
_STRINGS = ("text",)


@dataclass(frozen=True)
class Fit:
    """What a declared type needs of a table column: nothing (`type` None and no
    `refused`), a wider `type` (format_type text), or nothing possible (`refused`)."""

    type: str | None = None
    why: str = ""
    refused: str = ""
    narrower: bool = False  # the declared type is narrower than the column's


FITS = Fit()


def fit(column: DfmColumn, table_type: str, *, raw: bool = False) -> Fit:
    """What `column`, as a file's .dfm declares it, needs of a table column of
    `table_type` (`format_type()` text). A raw table (every column text) takes anything."""
    if raw or table_type == "text":
        return FITS
    declared = pg_type(column)
    if declared == table_type:
        return FITS
    declared_len, table_len = _varchar_length(declared), _varchar_length(table_type)
    if declared in _STRINGS or declared_len is not None:
        if table_len is None:
            # The source made the column a string: its stored values keep their text.
            if table_type == "bytea":
                return Fit(refused=f"{table_type} to {declared} would turn stored bytes into text")
            return Fit("text", f"the source made it a string ({describe_type(column)})")
        if declared_len is None:
            return Fit("text", "unbounded text into a bounded column")
        if declared_len > table_len:
            return Fit(declared, f"length {declared_len} > {table_len}")
        return Fit(narrower=declared_len < table_len)
    if table_len is not None:
        # A number or date into a string column: its text is stored as given, and
        # Postgres refuses a value longer than the column on its own line.
        return FITS
    declared_num, table_num = _exact(declared), _exact(table_type)
    if declared_num is not None and table_num is not None:
        return _fit_exact(declared, table_type, declared_num, table_num)
    if (declared, table_type) == ("real", "double precision"):
        return Fit(narrower=True)
    if (declared, table_type) == ("double precision", "real"):
        return Fit("double precision", "a wider float")
    return Fit(refused=f"{table_type} to {declared} would reinterpret stored values")


def _fit_exact(
    declared: str,
    table_type: str,
    declared_num: tuple[int | None, int | None],
    table_num: tuple[int | None, int | None],
) -> Fit:
    """Integers and NUMERICs: the least exact type holding both shapes' digits."""
    d_precision, d_scale = declared_num
    t_precision, t_scale = table_num
    if t_precision is None or t_scale is None:
        return Fit(narrower=d_precision is not None)  # unconstrained numeric: anything
    if d_precision is None or d_scale is None:
        return Fit("numeric", "an unconstrained NUMERIC")
    if declared in _INTEGERS and table_type in _INTEGERS:
        if _rank(declared) > _rank(table_type):
            return Fit(declared, "a wider integer")
        return Fit(narrower=True)
    # A declared integer may use all its maximum's digits; a table integer surely holds
    # every value with one digit fewer than its maximum.
    d_int, t_int = d_precision - d_scale, t_precision - t_scale
    if table_type in _INTEGER_HOLDS:
        t_int = _INTEGER_HOLDS[table_type]
    if d_int <= t_int and d_scale <= t_scale:
        return Fit(narrower=(d_int, d_scale) != (t_int, t_scale))
    need_int, need_scale = max(d_int, t_int), max(d_scale, t_scale)
    reasons = []
    if d_scale > t_scale:
        reasons.append(f"scale {d_scale} > {t_scale}: values would be rounded")
    if d_int > t_int:
        reasons.append(f"{d_int} integer digits > {t_int}")
    why = "; ".join(reasons)
    if need_scale == 0:
        for name in _INTEGERS:
            if _INTEGER_HOLDS[name] >= need_int and _INTEGERS.index(name) >= _rank(table_type):
                return Fit(name, why)
    if table_type in _INTEGER_DIGITS:
        # Every stored integer keeps its digits: the NUMERIC holds the type's maximum.
        need_int = max(need_int, _INTEGER_DIGITS[table_type])
    return Fit(f"numeric({need_int + need_scale},{need_scale})", why)


def _rank(pg: str) -> int:
    return _INTEGERS.index(pg) if pg in _INTEGERS else len(_INTEGERS)


def _exact(pg: str) -> tuple[int | None, int | None] | None:
    """(precision, scale) of an exact number type; (None, None) when unconstrained."""
    if pg in _INTEGER_DIGITS:
        return _INTEGER_DIGITS[pg], 0
    if pg == "numeric":
        return None, None
    match = _NUMERIC_RE.match(pg)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _varchar_length(pg: str) -> int | None:
    match = _VARCHAR_RE.match(pg)
    return int(match.group(1)) if match else None


def compare(
    dfm: Dfm,
    columns: Iterable[str],
    types: dict[str, str],
    key: tuple[str, ...],
    *,
    raw: bool = False,
    removed: frozenset[str] = frozenset(),
) -> list[ColumnChange]:
    """Every difference between `dfm`'s data columns and a table's (`columns` in table
    order, `types` by column, its `key`), in .dfm order then the table's. Columns
    recorded as `removed` may be absent. "kept" entries (a narrower declared type) are
    informational: they never stop a load."""
    version = dfm.table_version
    table_columns = list(columns)
    in_file = {c.name.lower(): c for c in dfm.data_columns}
    changes: list[ColumnChange] = []
    declared_key = tuple(c.name.lower() for c in dfm.key_columns)
    if declared_key and declared_key != tuple(key):
        changes.append(
            ColumnChange(
                "refused",
                "",  # the key as a whole
                "",
                why=f"the source's key is ({', '.join(c.name for c in dfm.key_columns)}), the "
                f"table's ({', '.join(key)}): a changed key would merge or split rows",
                table_version=version,
            )
        )
    for name, column in in_file.items():
        if name not in types:
            changes.append(
                ColumnChange(
                    "added",
                    name,
                    column.name,
                    to_type="text" if raw else pg_type(column),
                    declared=describe_type(column),
                    table_version=version,
                )
            )
            continue
        result = fit(column, types[name], raw=raw)
        change = functools.partial(  # what the three outcomes share
            ColumnChange,
            column=name,
            source_name=column.name,
            from_type=types[name],
            declared=describe_type(column),
            table_version=version,
        )
        if result.refused:
            changes.append(change("refused", why=result.refused))
        elif result.type is not None:
            changes.append(change("widened", to_type=result.type, why=result.why))
        elif result.narrower:
            changes.append(change("kept"))
    for name in table_columns:
        if name in in_file or name in removed:
            continue
        if name in key:
            changes.append(
                ColumnChange(
                    "refused",
                    name,
                    "",
                    why=f"key column {name} is gone from the source",
                    table_version=version,
                )
            )
        else:
            changes.append(
                ColumnChange("removed", name, "", from_type=types[name], table_version=version)
            )
    return changes


def blocking(changes: Iterable[ColumnChange]) -> list[ColumnChange]:
    """The changes that stop a load (all but "kept")."""
    return [c for c in changes if c.kind != "kept"]
