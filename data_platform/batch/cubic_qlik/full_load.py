"""A Qlik full-load part applied to its table. The first part of a snapshot replaces
every row: loaded into a fresh table swapped in at commit (`new_snapshot`), or, when the
table cannot be swapped, emptied by DELETE (never TRUNCATE, which would block readers)
and loaded in place. A later part is upserted (`loads.dispositions.merge_by_key`). The
row read last wins when a key appears twice, in one part or across parts (Replicate
copies rows that change while it reads)."""

from __future__ import annotations

import logging

from psycopg2 import sql

from data_platform.batch.cubic_qlik import drift, history
from data_platform.batch.cubic_qlik.checks import check_columns, check_staged
from data_platform.batch.cubic_qlik.context import ORD, ApplyContext, ApplyResult
from data_platform.batch.cubic_qlik.naming import CHANGE_SEQ_COLUMN, LOAD_ID_COLUMN
from data_platform.batch.cubic_qlik.new_snapshot import load_fresh
from data_platform.batch.cubic_qlik.staging import (
    DuplicateKeys,
    copy_file,
    create_staging,
    insert_last_of_each_key,
    insert_staged,
    located,
    log_repeated_keys,
    typed,
)
from data_platform.loads import dispositions, table_swap
from data_platform.loads.csv_files import DataFileReader

log = logging.getLogger(__name__)


def apply_full_load(
    ctx: ApplyContext, reader: DataFileReader, *, truncate: bool, compare_drift: bool = False
) -> ApplyResult:
    """Apply a full-load part read from `reader`; `truncate`: it starts the snapshot,
    which replaces every row of the table; `compare_drift`: it is a new snapshot (not a
    rebuild of the current one), to compare with what change files made of the table
    (`drift`). The table's history, when it keeps one, takes the part's rows as versions
    (`history`). Raises LoadError naming the first bad record."""
    ctx, columns = check_columns(ctx, reader.header(ctx.dfm.dialect))
    if truncate and compare_drift:
        # Kept before the tombstones go, which the comparison reads.
        drift.capture(ctx.cur, ctx.target, ctx.table_id, ctx.load_id)
    if truncate:
        # A new snapshot is the whole truth: earlier deletes no longer matter.
        ctx.cur.execute("DELETE FROM deleted_keys WHERE table_id = %s", (ctx.table_id,))
        if ctx.history is not None:
            history.start_snapshot(ctx, ctx.history)
    result = _apply(ctx, reader, columns, truncate=truncate)
    if ctx.history is not None:
        history.record_full_load(ctx, ctx.history, first=truncate)
    return result


def _apply(
    ctx: ApplyContext, reader: DataFileReader, columns: list[str], *, truncate: bool
) -> ApplyResult:
    """The part's rows into the table: a fresh table swapped in or the table emptied
    when it starts the snapshot (`truncate`), else upserted."""
    if truncate:
        blocker = table_swap.swap_blocker(ctx.cur, ctx.target.schema, ctx.target.name)
        if blocker is None:
            return load_fresh(ctx, reader, columns)
        log.info(
            "%s: loading the new snapshot in place, not by a swap: %s",
            ctx.key,
            blocker,
            extra=ctx.log_extra,
        )
        # DELETE, not TRUNCATE: readers keep the old rows, unblocked, until the commit.
        ctx.cur.execute(sql.SQL("DELETE FROM {}").format(ctx.target.ident))
    stage = create_staging(ctx, columns, headers=[])
    rows = copy_file(ctx, reader, stage, columns)
    if rows == 0:
        return ApplyResult(rows=0)
    if truncate:
        written = _insert_in_place(ctx, stage, columns, rows)
    else:
        check_staged(ctx, stage, columns)
        written = _upsert_part(ctx, stage)
    return ApplyResult(rows=rows, upserted=written)


def _insert_in_place(
    ctx: ApplyContext, stage: sql.Identifier, columns: list[str], rows: int
) -> int:
    """The staged rows of a new snapshot into the emptied table: a plain INSERT, much
    cheaper than ON CONFLICT's speculative insertion; a key twice in the file fails it,
    and then only the row read last of each key is inserted. Returns rows written."""
    try:
        return insert_staged(ctx, stage, columns, rows, ctx.target.ident, duplicates=True)
    except DuplicateKeys:
        written = insert_last_of_each_key(ctx, ctx.target.ident, stage)
    log_repeated_keys(ctx)
    return written


def _upsert_part(ctx: ApplyContext, stage: sql.Identifier) -> int:
    """The staged rows of a later part over the table's rows, whatever they hold
    (`merge_by_key` without an ordering column), stamped with this load and no change
    sequence. Tried as if the file held each key once (no sort); when it does not, only
    the row read last of each key. Returns rows written."""
    target = ctx.target
    values = {c: typed(target, c, "s") for c in target.columns}
    # The load's id as its column default would set it; a literal (an int), so that the
    # statement takes no parameters and a `%` in a column name stays as it is.
    values[LOAD_ID_COLUMN] = sql.Literal(ctx.load_id)
    values[CHANGE_SEQ_COLUMN] = sql.SQL("NULL")

    def merge(**how) -> int:
        with located(ctx, stage):
            written = dispositions.merge_by_key(
                ctx.cur,
                target.ident,
                stage,
                list(values),
                target.key,
                None,
                values=values,
                **how,
            )
        return written

    try:
        return merge(one_per_key=True)
    except DuplicateKeys:
        written = merge(then_by=ORD)
    log_repeated_keys(ctx)
    return written
