"""The checks of a Qlik file the COPY into its stage cannot make itself: the header
against the .dfm and the table (before any row is read), then, over the staged rows in
one pass each, keys, change operations and sequences, hex text, NUMERIC fit and integer
ranges. Each names the first bad record (its line) and column. A DATETIME or a NULL
Postgres refuses while converting is located by `staging.run`."""

from __future__ import annotations

from dataclasses import replace

from psycopg2 import sql

from data_platform.batch.cubic_qlik.context import KEY_NULL, MASK, OPER, ORD, SEQ, ApplyContext
from data_platform.batch.cubic_qlik.schema_change import blocking, compare
from data_platform.batch.cubic_qlik.types import INTEGER_RANGES, RANGE_CHECKED
from data_platform.loads.schema_changes import SchemaChangeError, schema_change_message

EVERY_ROW = sql.SQL("true")


# --- before any row is read -------------------------------------------------------------


def check_columns(ctx: ApplyContext, header: list[str]) -> tuple[ApplyContext, list[str]]:
    """File header == .dfm columns, and the .dfm's data columns fit the table
    (`schema_change.compare`): the same columns, each declared type holding no value the
    column would store changed. A column the table records as removed at the source may
    be absent: the returned context's target holds the file's columns only, so it is
    NULL in new rows and kept in updated ones.

    Returns that context and the Postgres column of each file column, in file order.
    Raises LoadError (a SchemaChangeError naming every difference and the command that
    resolves it)."""
    dfm, target = ctx.dfm, ctx.target
    expected = [c.name for c in dfm.columns]
    if header != expected:
        raise ctx.error(_header_difference(header, expected), line=1)
    if dfm.is_change_file:
        for required in (SEQ, OPER):
            if required not in header:
                raise ctx.error(f"change file has no {required} column", line=1)
    changes = blocking(
        compare(dfm, target.columns, target.types, target.key, raw=ctx.raw, removed=ctx.removed)
    )
    if changes:
        columns_differ = any(c.kind in ("added", "removed") for c in changes)
        raise SchemaChangeError(
            schema_change_message(
                dfm.qualified_name,
                target.qualified,
                [c.describe() for c in changes],
                command=None
                if any(c.kind == "refused" for c in changes)
                else f"data-platform cubic-qlik evolve-table --table {dfm.qualified_name}",
                version=dfm.table_version,
            ),
            key=ctx.key,
            line=1 if columns_differ else None,
            column=changes[0].source_name or None if len(changes) == 1 else None,
            table=ctx.table_name,
            load_id=ctx.load_id,
        )
    in_file = {c.name.lower() for c in dfm.data_columns}
    narrowed = replace(target, columns=tuple(c for c in target.columns if c in in_file))
    columns = [c.name if c.is_header else c.name.lower() for c in dfm.columns]
    return replace(ctx, target=narrowed), columns


def _visible(name: str) -> str:
    """A column name with invisible characters shown (a byte-order mark, spaces)."""
    shown = ascii(name)[1:-1] if not name.isprintable() or name != name.strip() else name
    return f"'{shown}'" if shown != name or not name else name


def _header_difference(header: list[str], expected: list[str]) -> str:
    """Every position where the header and the .dfm disagree, invisible characters shown."""
    differences = []
    for position in range(max(len(header), len(expected))):
        got = header[position] if position < len(header) else None
        want = expected[position] if position < len(expected) else None
        if got == want:
            continue
        if got is None and want is not None:
            differences.append(f"column {position + 1}: missing, the .dfm has {_visible(want)}")
        elif got is not None and want is None:
            differences.append(f"column {position + 1}: {_visible(got)} is not in the .dfm")
        elif got is not None and want is not None:
            differences.append(
                f"column {position + 1}: {_visible(got)}, the .dfm has {_visible(want)}"
            )
    return (
        f"header does not match the .dfm ({len(header)} column(s) in the file, "
        f"{len(expected)} in the .dfm): " + "; ".join(differences)
    )


# --- over the staged rows ---------------------------------------------------------------


def first_bad(
    ctx: ApplyContext, stage: sql.Composable, condition: sql.Composable, what: sql.Composable
) -> tuple | None:
    """The first staged record matching `condition`: (record number, `what`), or None."""
    ctx.cur.execute(
        sql.SQL("SELECT {ord}, {what} FROM {stage} WHERE {cond} ORDER BY {ord} LIMIT 1").format(
            ord=sql.Identifier(ORD), what=what, stage=stage, cond=condition
        )
    )
    return ctx.cur.fetchone()


def first_matches(
    ctx: ApplyContext,
    stage: sql.Composable,
    conditions: list[sql.Composable],
    where: sql.Composable = EVERY_ROW,
) -> list[int | None]:
    """The first record number matching each condition (None: no record), in one pass
    over the staged rows."""
    ctx.cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(
                sql.SQL("min(CASE WHEN {} THEN {} END)").format(cond, sql.Identifier(ORD))
                for cond in conditions
            ),
            stage,
            where,
        )
    )
    return list(ctx.cur.fetchone())


def check_staged(ctx: ApplyContext, stage: sql.Composable, columns: list[str]) -> None:
    """The checks of a full-load part's staged rows: hex, NUMERIC fit, keys."""
    check_hex(ctx, stage, columns)
    check_numeric(ctx, stage)
    check_keys(ctx, stage, where=EVERY_ROW)


def check_keys(ctx: ApplyContext, stage: sql.Composable, where: sql.Composable) -> None:
    """A key column that is NOT NULL in the table, or a key NULL in every part, is an
    error naming the first such record (among those matching `where`)."""
    target = ctx.target
    conditions = [
        (sql.SQL("{} IS NULL").format(sql.Identifier(c)), c)
        for c in target.key
        if c in target.not_null
    ]
    if len(target.key) > 1 or not conditions:
        conditions.append(
            (
                sql.SQL("num_nonnulls({}) = 0").format(
                    sql.SQL(", ").join(map(sql.Identifier, target.key))
                ),
                target.key[-1],
            )
        )
    firsts = first_matches(ctx, stage, [cond for cond, _ in conditions], where)
    bad = [(o, c) for o, (_, c) in zip(firsts, conditions, strict=True) if o is not None]
    if bad:
        ord_, column = min(bad)
        raise ctx.error(KEY_NULL, ord_ + 1, ctx.source_name(column))


def check_changes(ctx: ApplyContext, stage: sql.Composable) -> bool:
    """Operations and sequences in one pass over the staged rows, then the keys of the
    rows other than before images. Returns whether the file has B (before-image) rows."""
    oper, seq = sql.Identifier(OPER), sql.Identifier(SEQ)
    checks = [
        (sql.SQL("{o} IS NULL OR {o} NOT IN ('I', 'U', 'D', 'B')").format(o=oper), OPER),
        (sql.SQL("{} IS NULL").format(seq), SEQ),
    ]
    *firsts, first_before_image = first_matches(
        ctx, stage, [*(cond for cond, _ in checks), sql.SQL("{} = 'B'").format(oper)]
    )
    has_before_images = first_before_image is not None
    bad = [(ord_, column) for ord_, (_, column) in zip(firsts, checks, strict=True) if ord_]
    if bad:
        ord_, column = min(bad)
        line = ord_ + 1
        if column == OPER:
            ctx.cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(oper, stage, sql.Identifier(ORD)),
                (ord_,),
            )
            value = ctx.cur.fetchone()[0]
            raise ctx.error(f"unknown operation {value!r} (expected I, U, D or B)", line, OPER)
        raise ctx.error("empty change sequence", line, SEQ)
    check_keys(ctx, stage, where=sql.SQL("{} <> 'B'").format(oper))
    return has_before_images


def check_hex(ctx: ApplyContext, stage: sql.Composable, columns: list[str]) -> None:
    """Staged hex text (binary columns, or header__change_mask) is whole bytes of hex
    digits: else an error naming the first bad record and column."""
    for column in (c for c in columns if c in ctx.target.bytea or c == MASK):
        bad = first_bad(
            ctx,
            stage,
            sql.SQL("{} !~ '^([0-9A-Fa-f]{{2}})*$'").format(sql.Identifier(column)),
            sql.Identifier(column),
        )
        if bad:
            what = "change mask" if column == MASK else "binary data"
            raise ctx.error(
                f"not hexadecimal {what}: {bad[1][:40]!r}", bad[0] + 1, ctx.source_name(column)
            )


# --- NUMERIC fit and integer ranges -----------------------------------------------------


def numeric_limits(ctx: ApplyContext) -> dict[str, tuple[int, int, str]]:
    """Per checked NUMERIC column: the most digits before the point and after it a
    value may have, and the declared type it would break. Both the table's
    numeric(p,s) and the .dfm's declared type bound it (the .dfm's may be narrower,
    which loads as is: README "Schema changes"; the Glue job checks the .dfm's)."""
    declared = {c.name.lower(): c for c in ctx.dfm.data_columns}
    limits = {}
    for column, (precision, scale) in ctx.target.numerics.items():
        digits, places, name = precision - scale, scale, f"numeric({precision},{scale})"
        source = declared.get(column)
        if source is not None and source.type == "NUMERIC" and source.precision > 0:
            source_scale = max(source.scale, 0)
            digits = min(digits, source.precision - source_scale)
            places = min(places, source_scale)
            name = f"NUMERIC({source.precision},{source.scale})"
        elif source is not None:
            name = f"{source.type} (the table's {name})"
        limits[column] = (digits, places, name)
    return limits


def integer_ranges(ctx: ApplyContext) -> dict[str, tuple[int, int, str]]:
    """Per integer column whose declared Qlik type (the file's .dfm) holds fewer values
    than its Postgres type (`types.RANGE_CHECKED`): the lowest and highest value and
    the type's name. The Glue job refuses the same values (`spark/casts.py`)."""
    return {
        c.name.lower(): (*INTEGER_RANGES[c.type], c.type)
        for c in ctx.dfm.data_columns
        if c.type in RANGE_CHECKED and c.name.lower() in ctx.target.columns
    }


def _out_of_range(column: str, low: int, high: int) -> sql.Composable:
    return sql.SQL("({c} < {low} OR {c} > {high})").format(
        c=sql.Identifier(column), low=sql.Literal(low), high=sql.Literal(high)
    )


def _misfit(column: str, digits: int, places: int) -> sql.Composable:
    """The NUMERIC value has more digits after the point than `places` (other than
    zeros), or more than `digits` before it."""
    return sql.SQL(
        "({c} <> round({c}, {places}) OR abs({c}) >= power(10::numeric, {digits}))"
    ).format(c=sql.Identifier(column), places=sql.Literal(places), digits=sql.Literal(digits))


def _misfits(
    limits: dict[str, tuple[int, int, str]], ranges: dict[str, tuple[int, int, str]]
) -> list[sql.Composable]:
    """One condition per NUMERIC limit, then one per integer range (a UINT8 column is
    both)."""
    conditions = [_misfit(column, d, p) for column, (d, p, _) in limits.items()]
    return conditions + [_out_of_range(c, low, high) for c, (low, high, _) in ranges.items()]


def check_numeric(ctx: ApplyContext, stage: sql.Composable) -> None:
    """Every staged NUMERIC value fits its declared precision and scale, and every
    range-checked integer its range, checked in one pass over the stage: else an error
    naming the first bad record and column. Postgres would round `9.999` into
    numeric(8,2) to 10.00 without a word; here it is refused, as the Glue job refuses it
    (`spark/casts.py`). Digits beyond the scale that are zeros (`9.990`) change nothing
    and are taken."""
    limits, ranges = numeric_limits(ctx), integer_ranges(ctx)
    if not limits and not ranges:
        return
    firsts = first_matches(ctx, stage, _misfits(limits, ranges))
    # One entry per condition: a UINT8 column is both a NUMERIC and a range.
    checks = [(c, False) for c in limits] + [(c, True) for c in ranges]
    bad = [(o, i) for i, o in enumerate(firsts) if o is not None]
    if not bad:
        return
    ord_, index = min(bad)
    column, is_range = checks[index]
    if is_range:
        low, high, kind = ranges[column]
        ctx.cur.execute(
            sql.SQL("SELECT {c}::text FROM {stage} WHERE {o} = %s").format(
                c=sql.Identifier(column), stage=stage, o=sql.Identifier(ORD)
            ),
            (ord_,),
        )
        raise ctx.error(
            f"{ctx.cur.fetchone()[0]!r} is not a valid {kind}: outside {low}..{high}",
            ord_ + 1,
            ctx.source_name(column),
        )
    digits, places, name = limits[column]
    ctx.cur.execute(
        sql.SQL("SELECT {c}::text, {c} <> round({c}, {p}) FROM {stage} WHERE {o} = %s").format(
            c=sql.Identifier(column), p=sql.Literal(places), stage=stage, o=sql.Identifier(ORD)
        ),
        (ord_,),
    )
    value, too_precise = ctx.cur.fetchone()
    why = (
        f"more than {places} digit(s) after the decimal point (PostgreSQL would round it)"
        if too_precise
        else f"more than {digits} digit(s) before the decimal point"
    )
    raise ctx.error(f"{value!r} is not a valid {name}: {why}", ord_ + 1, ctx.source_name(column))


def loosen(ctx: ApplyContext, cur, table: sql.Composable) -> None:
    """Make the (empty) new snapshot's NUMERIC columns unconstrained, over `cur`, so that
    a COPY straight into it keeps every digit for `tighten` to check."""
    if ctx.target.numerics:
        cur.execute(
            sql.SQL("ALTER TABLE {} {}").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("ALTER COLUMN {} TYPE numeric").format(sql.Identifier(c))
                    for c in ctx.target.numerics
                ),
            )
        )


def tighten(ctx: ApplyContext, table: sql.Composable) -> bool:
    """After `loosen` and the COPY: check every NUMERIC value and integer range in one
    pass and, when all fit, give the columns their declared types back (one rewrite, no
    digit changed). Returns False, changing nothing, when a value does not fit."""
    limits, ranges = numeric_limits(ctx), integer_ranges(ctx)
    if not limits and not ranges:
        return True
    ctx.cur.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {})").format(
            table, sql.SQL(" OR ").join(_misfits(limits, ranges))
        )
    )
    if ctx.cur.fetchone()[0]:
        return False
    if not ctx.target.numerics:
        return True
    ctx.cur.execute(
        sql.SQL("ALTER TABLE {} {}").format(
            table,
            sql.SQL(", ").join(
                sql.SQL("ALTER COLUMN {} TYPE numeric({}, {})").format(
                    sql.Identifier(c), sql.Literal(p), sql.Literal(s)
                )
                for c, (p, s) in ctx.target.numerics.items()
            ),
        )
    )
    return True
