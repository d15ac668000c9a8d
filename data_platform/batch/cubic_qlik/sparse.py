"""Sparse updates of a Qlik change file (README "Sparse updates"): a `U` that left a
column untouched keeps its stored value. Untouched are a `U`'s NULL LOBs (an Oracle
source sends none), and, when the file has `header__change_mask`, the columns whose bit
is clear; a mask longer than one byte is read in a byte order pinned for the table or
decided per file from the before images (README "The mask's byte order")."""

from __future__ import annotations

import logging

from psycopg2 import sql

from data_platform.batch.cubic_qlik.context import (
    BIG_ENDIAN,
    COUNT,
    LITTLE_ENDIAN,
    MASK,
    MASK_ORDERS,
    OPER,
    ORD,
    SEQ,
    ApplyContext,
)
from data_platform.batch.cubic_qlik.staging import run, typed
from data_platform.batch.cubic_qlik.types import LOB_TYPES
from data_platform.errors import LoadError

log = logging.getLogger(__name__)

Sparse = list[tuple[int, str]]  # (data column index, db column) a U may leave untouched


def sparse_columns(ctx: ApplyContext) -> Sparse:
    """(data column index, db column) of the columns a U may leave untouched: every
    non-key column when the file has header__change_mask, else its LOB columns; none
    when the table's sparse updates are off."""
    if not ctx.sparse_updates:
        return []
    has_mask = ctx.has_mask
    return [
        (index, column.name.lower())
        for index, column in enumerate(ctx.dfm.data_columns)
        if column.name.lower() not in ctx.target.key and (has_mask or column.type in LOB_TYPES)
    ]


def def_flag(index: int) -> sql.Identifier:
    """The column of a change row saying it defines sparse column `index`'s value."""
    return sql.Identifier(f"dp__def_{index}")


def mask_bit(ctx: ApplyContext, column: str) -> int:
    """The bit of `column` in header__change_mask: its ordinal in the change table less
    one, header columns first (Qlik, "Change Tables"; README "Sparse updates")."""
    for position, dfm_column in enumerate(ctx.dfm.columns):
        if not dfm_column.is_header and dfm_column.name.lower() == column:
            return position
    raise KeyError(column)


def bit_set(mask: sql.Composable, bit: int, order: str) -> sql.Composable:
    """Is `bit` set in the hex text `mask` (checked hex, two digits a byte) read in
    `order`? False when the mask is too short to hold the bit (NULL for a NULL mask)."""
    if order == LITTLE_ENDIAN:
        return sql.SQL(
            "(length({m}) >= {n} AND get_bit(('x' || substr({m}, {p}, 2))::bit(8), {b}) = 1)"
        ).format(
            m=mask,
            n=sql.Literal(2 * (bit // 8) + 2),
            p=sql.Literal(2 * (bit // 8) + 1),
            b=sql.Literal(7 - bit % 8),
        )
    return sql.SQL(
        "(length({m}) > {d} AND "
        "get_bit(('x' || substr({m}, length({m}) - {d}, 1))::bit(4), {b}) = 1)"
    ).format(m=mask, d=sql.Literal(bit // 4), b=sql.Literal(3 - bit % 4))


def defines(
    ctx: ApplyContext, alias: str, column: str, has_mask: bool, order: str
) -> sql.Composable:
    """Does the row `alias` set the column? Every I and D does, and a U with a value in
    it. A U's NULL is a value unless the column was left untouched: for a LOB column
    when the row has no mask or the mask's bit is clear; for another column only when
    the row's mask has its bit clear (read in `order`, this file's byte order). A
    non-NULL value is always taken, whatever its bit says: a mask can keep a stored
    value only where the U carries none, so it never drops an update it misreads."""
    a = sql.Identifier(alias)
    not_update = sql.SQL("{}.{} <> 'U'").format(a, sql.Identifier(OPER))
    has_value = sql.SQL("{}.{} IS NOT NULL").format(a, sql.Identifier(column))
    if not has_mask:
        return sql.SQL("({} OR {})").format(not_update, has_value)
    mask = sql.SQL("{}.{}").format(a, sql.Identifier(MASK))
    bit = bit_set(mask, mask_bit(ctx, column), order)
    lob = column in {c.name.lower() for c in ctx.dfm.data_columns if c.type in LOB_TYPES}
    no_mask = sql.SQL("coalesce({}, '') = ''").format(mask)
    if lob:
        return sql.SQL("({nu} OR {v} OR coalesce(NOT {no} AND {bit}, false))").format(
            nu=not_update, v=has_value, no=no_mask, bit=bit
        )
    return sql.SQL("({nu} OR {v} OR {no} OR coalesce({bit}, false))").format(
        nu=not_update, v=has_value, no=no_mask, bit=bit
    )


# --- the mask's byte order ---------------------------------------------------------------


def decide_mask_order(
    ctx: ApplyContext, stage: sql.Composable, has_before_images: bool, sparse: Sparse
) -> str:
    """The byte order this file's header__change_mask values are read in, checked
    against the file's images in one pass over its U rows (README "Sparse updates").

    A U whose B (same change number) holds another non-NULL value than the U in a
    column refutes every byte order that reads that column's bit as clear. (A NULL on
    either side proves nothing: it may be a value the source did not send.) The
    table's pinned order (`mask_order`) is used unless the images refute it; else the
    order the images do not refute; when neither is refuted, either one if they read
    every U's NULLs alike (one-byte masks always do).

    Raises LoadError naming the U's line and the column: the images refute the pinned
    order, or both orders; or neither is refuted but they read a NULL differently
    (the table must pin the order)."""
    *firsts, undecided = _first_refutations(ctx, stage, has_before_images, sparse)
    # order -> the record of the first U refuting it (orders not refuted left out)
    refuted = {
        order: first for order, first in zip(MASK_ORDERS, firsts, strict=True) if first is not None
    }
    if ctx.mask_order is not None:
        if ctx.mask_order in refuted:
            raise _mask_contradiction(
                ctx, stage, refuted[ctx.mask_order], ctx.mask_order, pinned=True
            )
        return ctx.mask_order
    candidates = [order for order in MASK_ORDERS if order not in refuted]
    if not candidates:
        first, other = sorted(MASK_ORDERS, key=refuted.__getitem__)
        raise _mask_contradiction(
            ctx, stage, refuted[first], first, pinned=False, other_line=refuted[other] + 1
        )
    if len(candidates) == 1:
        log.info(
            "%s: header__change_mask read %s: the before images refute the other order",
            ctx.key,
            candidates[0],
            extra=ctx.log_extra,
        )
        return candidates[0]
    if undecided is not None:
        raise _mask_undecided(ctx, stage, undecided, sparse)
    return LITTLE_ENDIAN


def _first_refutations(
    ctx: ApplyContext, stage: sql.Composable, has_before_images: bool, sparse: Sparse
) -> tuple[int | None, int | None, int | None]:
    """In one pass over the staged U rows with a mask: the record number of the first U
    whose images refute little endian, of the first refuting big endian, and of the
    first whose NULL the two orders read differently (None: no such U)."""
    oper, seq = sql.Identifier(OPER), sql.Identifier(SEQ)
    mask = sql.SQL("u.{}").format(sql.Identifier(MASK))
    data = _data_columns(ctx)

    def refuted(order: str) -> sql.Composable:
        if not has_before_images:
            return sql.SQL("false")
        return sql.SQL(" OR ").join(_changed_with_bit_clear(ctx, column, order) for column in data)

    join = (
        sql.SQL("LEFT JOIN {stage} b ON b.{oper} = 'B' AND b.{seq} = u.{seq}").format(
            stage=stage, oper=oper, seq=seq
        )
        if has_before_images
        else sql.SQL("")
    )
    ctx.cur.execute(
        sql.SQL(
            "SELECT min(CASE WHEN {le} THEN u.{ord} END), "
            "min(CASE WHEN {be} THEN u.{ord} END), "
            "min(CASE WHEN {amb} THEN u.{ord} END) FROM {stage} u {join} "
            "WHERE u.{oper} = 'U' AND coalesce({m}, '') <> ''"
        ).format(
            le=refuted(LITTLE_ENDIAN),
            be=refuted(BIG_ENDIAN),
            amb=sql.SQL(" OR ").join(_read_differently(ctx, column) for _, column in sparse),
            ord=sql.Identifier(ORD),
            stage=stage,
            join=join,
            oper=oper,
            m=mask,
        )
    )
    return ctx.cur.fetchone()


def _data_columns(ctx: ApplyContext) -> list[str]:
    """The file's data columns the table has, as table columns."""
    return [c.name.lower() for c in ctx.dfm.data_columns if c.name.lower() in ctx.target.columns]


def _read_differently(ctx: ApplyContext, column: str) -> sql.Composable:
    """The U row `u` has NULL in `column`, whose bit the two byte orders read apart."""
    mask = sql.SQL("u.{}").format(sql.Identifier(MASK))
    bit = mask_bit(ctx, column)
    return sql.SQL("(u.{c} IS NULL AND {le} <> {be})").format(
        c=sql.Identifier(column),
        le=bit_set(mask, bit, LITTLE_ENDIAN),
        be=bit_set(mask, bit, BIG_ENDIAN),
    )


def _changed_with_bit_clear(ctx: ApplyContext, column: str, order: str) -> sql.Composable:
    """The B and U rows `b`, `u` hold two different non-NULL values of `column` while
    the U's mask, read in `order`, says it did not change."""
    c = sql.Identifier(column)
    return sql.SQL(
        "(b.{c} IS NOT NULL AND u.{c} IS NOT NULL AND {bv} IS DISTINCT FROM {uv} AND NOT {bit})"
    ).format(
        c=c,
        bv=typed(ctx.target, column, "b"),
        uv=typed(ctx.target, column, "u"),
        bit=bit_set(sql.SQL("u.{}").format(sql.Identifier(MASK)), mask_bit(ctx, column), order),
    )


def _mask_row(ctx: ApplyContext, stage: sql.Composable, ord_: int) -> tuple[str, int | None]:
    """The mask of the U at record `ord_`, and its B's record number."""
    ctx.cur.execute(
        sql.SQL(
            "SELECT u.{m}, (SELECT min(b.{ord}) FROM {stage} b WHERE b.{oper} = 'B' "
            "AND b.{seq} = u.{seq}) FROM {stage} u WHERE u.{ord} = %s"
        ).format(
            m=sql.Identifier(MASK),
            ord=sql.Identifier(ORD),
            stage=stage,
            oper=sql.Identifier(OPER),
            seq=sql.Identifier(SEQ),
        ),
        (ord_,),
    )
    mask, before = ctx.cur.fetchone()
    return mask, before


def _mask_contradiction(
    ctx: ApplyContext,
    stage: sql.Composable,
    ord_: int,
    order: str,
    *,
    pinned: bool,
    other_line: int | None = None,
) -> LoadError:
    """The error for the U at record `ord_`, whose mask read in `order` says a column
    did not change that its B shows changed: names the first such column."""
    mask, before = _mask_row(ctx, stage, ord_)
    assert before is not None  # a U refuted by its B images has one
    data = _data_columns(ctx)
    ctx.cur.execute(
        sql.SQL(
            "SELECT {flags}, {values} FROM {stage} u JOIN {stage} b ON b.{ord} = %s "
            "WHERE u.{ord} = %s"
        ).format(
            flags=sql.SQL(", ").join(_changed_with_bit_clear(ctx, c, order) for c in data),
            values=sql.SQL(", ").join(
                sql.SQL("b.{c}::text, u.{c}::text").format(c=sql.Identifier(c)) for c in data
            ),
            stage=stage,
            ord=sql.Identifier(ORD),
        ),
        (before, ord_),
    )
    row = ctx.cur.fetchone()
    flags, values = row[: len(data)], row[len(data) :]
    if True not in flags:  # another B of the same change number holds the difference
        return ctx.error(
            f"header__change_mask {mask!r} contradicts the row's before image", ord_ + 1
        )
    index = flags.index(True)
    column = data[index]
    old, new = values[2 * index], values[2 * index + 1]
    other = BIG_ENDIAN if order == LITTLE_ENDIAN else LITTLE_ENDIAN
    how = (
        f"read {order} as the table pins it"
        if pinned
        else f"read {order} (line {other_line} contradicts {other} likewise)"
    )
    return ctx.error(
        f"header__change_mask {mask!r} contradicts the row's images: bit "
        f"{mask_bit(ctx, column)} ({ctx.source_name(column)}) is clear, {how}, but "
        f"the column changed from {old!r} (B, line {before + 1}) to {new!r}; the load "
        "would lose an update",
        ord_ + 1,
        ctx.source_name(column),
    )


def _mask_undecided(
    ctx: ApplyContext, stage: sql.Composable, ord_: int, sparse: Sparse
) -> LoadError:
    """The error for the U at record `ord_` whose NULL the two byte orders read
    differently while the file's images refute neither."""
    mask, _ = _mask_row(ctx, stage, ord_)
    ctx.cur.execute(
        sql.SQL("SELECT {} FROM {} u WHERE u.{} = %s").format(
            sql.SQL(", ").join(_read_differently(ctx, column) for _, column in sparse),
            stage,
            sql.Identifier(ORD),
        ),
        (ord_,),
    )
    flags = list(ctx.cur.fetchone())
    column = sparse[flags.index(True)][1]
    return ctx.error(
        f"header__change_mask {mask!r} is longer than one byte and the file's before "
        "images do not tell its byte order, which decides whether the NULL is a new value "
        "or the column was left untouched: pin the order for the table "
        "(data-platform cubic-qlik set-table --table <table> --change-mask-order "
        'little_endian or big_endian; README "The mask\'s byte order"), then retry the load',
        ord_ + 1,
        ctx.source_name(column),
    )


# --- untouched columns -------------------------------------------------------------------


def keep_untouched(
    ctx: ApplyContext,
    final: sql.Composable,
    changes: sql.Composable,
    sparse: Sparse,
    stage: sql.Composable,
) -> None:
    """A final U (in `final`, one change per key, from the query `changes` over the
    staged rows `stage`) that left a column untouched takes the value of the key's
    latest change in the file that set it, else the stored row's."""
    ctx.cur.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {} > 1)").format(final, sql.Identifier(COUNT))
    )
    if ctx.cur.fetchone()[0]:
        for index, column in sparse:
            _from_earlier_changes(ctx, final, changes, index, column, stage)
    ctx.cur.execute(
        sql.SQL(
            "UPDATE {final} f SET {sets} FROM {target} t WHERE f.{oper} = 'U' AND ({any}) "
            "AND {match}"
        ).format(
            final=final,
            sets=sql.SQL(", ").join(
                sql.SQL("{c} = CASE WHEN f.{flag} THEN f.{c} ELSE t.{c} END").format(
                    c=sql.Identifier(column), flag=def_flag(index)
                )
                for index, column in sparse
            ),
            target=ctx.target.ident,
            oper=sql.Identifier(OPER),
            any=sql.SQL(" OR ").join(
                sql.SQL("NOT f.{}").format(def_flag(index)) for index, _ in sparse
            ),
            match=ctx.target.key_match("t", "f"),
        )
    )


def _from_earlier_changes(
    ctx: ApplyContext,
    final: sql.Composable,
    changes: sql.Composable,
    index: int,
    column: str,
    stage: sql.Composable,
) -> None:
    """A final change of a key changed more than once in the file that leaves `column`
    (sparse column `index`) untouched takes the value of the key's latest change that
    set it."""
    key = sql.SQL(", ").join(map(sql.Identifier, ctx.target.key))
    flag, col = def_flag(index), sql.Identifier(column)
    run(
        ctx,
        sql.SQL(
            "UPDATE {final} f SET {col} = s.{col}, {flag} = true FROM ("
            "SELECT DISTINCT ON ({key}) * FROM ({changes}) c WHERE c.{flag} "
            "ORDER BY {key}, {seq} DESC, {ord} DESC) s "
            "WHERE f.{n} > 1 AND NOT f.{flag} AND {match}"
        ).format(
            final=final,
            col=col,
            flag=flag,
            key=key,
            changes=changes,
            seq=sql.Identifier(SEQ),
            ord=sql.Identifier(ORD),
            n=sql.Identifier(COUNT),
            match=ctx.target.key_match("f", "s"),
        ),
        stage,
    )
