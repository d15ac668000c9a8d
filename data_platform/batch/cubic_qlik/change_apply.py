"""A Qlik change file applied to its table.

The file is staged (a large one in an unlogged table of this transaction, so that
Postgres's parallel workers can read it), and the final change per key kept (ordered by
header__change_seq, then file order). A `B` row whose `U` (same change number) has
another key renamed the key: it counts as a delete of the old key. A `U` that left
columns untouched keeps their stored values (`sparse`). Then deletes leave tombstones
and go, and one upsert (`loads.dispositions.merge_by_key`) writes inserts and updates.
A row is only overwritten by a newer change, so re-applying a file changes nothing."""

from __future__ import annotations

from psycopg2 import sql

from data_platform.batch.cubic_qlik import history
from data_platform.batch.cubic_qlik.checks import (
    check_changes,
    check_columns,
    check_hex,
    check_numeric,
)
from data_platform.batch.cubic_qlik.context import (
    COUNT,
    LITTLE_ENDIAN,
    MASK,
    OPER,
    ORD,
    SEQ,
    ApplyContext,
    ApplyResult,
)
from data_platform.batch.cubic_qlik.naming import CHANGE_SEQ_COLUMN, LOAD_ID_COLUMN
from data_platform.batch.cubic_qlik.sparse import (
    Sparse,
    decide_mask_order,
    def_flag,
    defines,
    keep_untouched,
    sparse_columns,
)
from data_platform.batch.cubic_qlik.staging import (
    is_large,
    located,
    run,
    stage_file,
    typed,
)
from data_platform.loads import dispositions
from data_platform.loads.csv_files import DataFileReader

FINAL = sql.Identifier("dp_final")  # the final change per key: a temp table


def apply_changes(ctx: ApplyContext, reader: DataFileReader) -> ApplyResult:
    """Apply the change file read from `reader`. Returns its rows, and the rows upserted
    and deleted; raises LoadError naming the first bad record."""
    ctx, columns = check_columns(ctx, reader.header(ctx.dfm.dialect))
    headers = [c.name for c in ctx.dfm.header_columns]
    # A large file's stage is read by parallel workers; a small one's stays a temp
    # table, which costs less to create than a table of the database.
    # DATETIME values converted on the client as the file streams, where they can be:
    # the statements below then skip the SQL rule (`ctx.target.staged_typed`).
    ctx, stage, rows = stage_file(ctx, reader, columns, headers, parallel=is_large(ctx))
    if rows == 0:
        ctx.cur.execute(sql.SQL("DROP TABLE {}").format(stage))
        return ApplyResult(rows=0)
    has_before_images = check_changes(ctx, stage)
    check_hex(ctx, stage, columns)
    check_numeric(ctx, stage)
    sparse = sparse_columns(ctx)
    order = LITTLE_ENDIAN  # read only when the file has masks
    if sparse and ctx.has_mask:
        order = decide_mask_order(ctx, stage, has_before_images, sparse)
    changes = _changes_query(ctx, stage, has_before_images, sparse, order)
    _keep_final(ctx, stage, changes, sparse)
    if sparse:
        keep_untouched(ctx, FINAL, changes, sparse, stage)
    # The tombstones left by earlier files, read before this file adds its own: an
    # I/U of this file and a D of this file never share a key (one change per key).
    newest_tombstone = _newest_tombstone(ctx)
    upserted = _upsert(ctx, stage, newest_tombstone)
    if newest_tombstone is not None:
        _drop_revived_tombstones(ctx)
    deleted = _delete(ctx)
    if ctx.history is not None:
        # Every change, not only the final one per key, from the same staged rows.
        history.record_changes(ctx, ctx.history, stage, changes, sparse, FINAL)
    ctx.cur.execute(sql.SQL("DROP TABLE {}").format(stage))
    return ApplyResult(rows=rows, upserted=upserted, deleted=deleted)


def _changes_query(
    ctx: ApplyContext, stage: sql.Composable, has_before_images: bool, sparse: Sparse, order: str
) -> sql.Composable:
    """The file's changes with typed values: its I, U and D rows, plus a D of the old
    key for every B whose U (same change number) carries another key (a key update).
    Columns: operation, sequence, record number, mask, the table's columns, and one
    `dp__def_<i>` flag per sparse column (the row defines its value, masks read in
    `order`)."""
    oper, seq = sql.Identifier(OPER), sql.Identifier(SEQ)
    query = sql.SQL("SELECT {} FROM {} s WHERE s.{} <> 'B'").format(
        _change_columns(ctx, "s", sql.SQL("s.{}").format(oper), sparse, order), stage, oper
    )
    if not has_before_images:
        return query

    def keys(alias: str) -> sql.Composable:
        return sql.SQL("ROW({})").format(
            sql.SQL(", ").join(typed(ctx.target, c, alias) for c in ctx.target.key)
        )

    renamed = sql.SQL(
        "SELECT {select} FROM {stage} b WHERE b.{oper} = 'B' AND EXISTS ("
        "SELECT FROM {stage} u WHERE u.{oper} = 'U' AND u.{seq} = b.{seq} "
        "AND {new} IS DISTINCT FROM {old})"
    ).format(
        select=_change_columns(ctx, "b", sql.SQL("'D'"), sparse, order),
        stage=stage,
        oper=oper,
        seq=seq,
        new=keys("u"),
        old=keys("b"),
    )
    return sql.SQL("{} UNION ALL {}").format(query, renamed)


def _change_columns(
    ctx: ApplyContext, alias: str, operation: sql.Composable, sparse: Sparse, order: str
) -> sql.Composable:
    """The select list of `_changes_query` over the staged row `alias`, whose operation
    is `operation`."""
    a = sql.Identifier(alias)
    has_mask = ctx.has_mask
    mask = sql.Identifier(MASK) if has_mask else sql.SQL("CAST(NULL AS text)")
    items = [
        sql.SQL("{} AS {}").format(operation, sql.Identifier(OPER)),
        sql.SQL("{}.{}").format(a, sql.Identifier(SEQ)),
        sql.SQL("{}.{}").format(a, sql.Identifier(ORD)),
        sql.SQL("{} AS {}").format(
            sql.SQL("{}.{}").format(a, mask) if has_mask else mask, sql.Identifier(MASK)
        ),
        *(
            sql.SQL("{} AS {}").format(typed(ctx.target, c, alias), sql.Identifier(c))
            for c in ctx.target.columns
        ),
        *(
            sql.SQL("{} AS {}").format(defines(ctx, alias, column, has_mask, order), def_flag(i))
            for i, column in sparse
        ),
    ]
    return sql.SQL(", ").join(items)


def _keep_final(
    ctx: ApplyContext, stage: sql.Composable, changes: sql.Composable, sparse: Sparse
) -> None:
    """The final change per key of `changes` into the temp table FINAL, with the count
    of the key's changes when sparse columns need it."""
    key = sql.SQL(", ").join(map(sql.Identifier, ctx.target.key))
    # The count of a key's changes serves only the sparse rules: a window over every
    # change is a sort of its own, skipped when no column can be left untouched.
    count = (
        sql.SQL(", count(*) OVER (PARTITION BY {key}) AS {n}").format(
            key=key, n=sql.Identifier(COUNT)
        )
        if sparse
        else sql.SQL("")
    )
    run(
        ctx,
        sql.SQL(
            "CREATE TEMP TABLE {final} ON COMMIT DROP AS "
            "SELECT DISTINCT ON ({key}) *{count} "
            "FROM ({changes}) c ORDER BY {key}, {seq} DESC, {ord} DESC"
        ).format(
            final=FINAL,
            key=key,
            count=count,
            changes=changes,
            seq=sql.Identifier(SEQ),
            ord=sql.Identifier(ORD),
        ),
        stage,
    )
    ctx.cur.execute(sql.SQL("ANALYZE {}").format(FINAL))


def _key_json(ctx: ApplyContext, alias: str) -> sql.Composable:
    """The key of the row `alias` as a tombstone holds it (`deleted_keys.key`)."""
    return sql.SQL("jsonb_build_array({})").format(
        sql.SQL(", ").join(
            sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c))
            for c in ctx.target.key
        )
    )


def _newest_tombstone(ctx: ApplyContext) -> str | None:
    """The highest change sequence of the table's tombstones (`deleted_keys`), None
    when it has none: an index read (`ix_deleted_keys_table_id_change_seq`)."""
    ctx.cur.execute("SELECT max(change_seq) FROM deleted_keys WHERE table_id = %s", (ctx.table_id,))
    return ctx.cur.fetchone()[0]


def _drop_revived_tombstones(ctx: ApplyContext) -> None:
    """A key written again by a newer change of this file is alive: its tombstone goes."""
    ctx.cur.execute(
        sql.SQL(
            "DELETE FROM deleted_keys d USING {final} f WHERE d.table_id = %(table_id)s "
            "AND f.{oper} IN ('I', 'U') AND d.key = {key_json} AND d.change_seq < f.{seq}"
        ).format(
            final=FINAL,
            oper=sql.Identifier(OPER),
            key_json=_key_json(ctx, "f"),
            seq=sql.Identifier(SEQ),
        ),
        {"table_id": ctx.table_id},
    )


def _delete(ctx: ApplyContext) -> int:
    """The final deletes: each leaves a tombstone, so an older I/U for the key arriving
    later is ignored, and its row goes unless a newer change wrote it. Returns rows
    deleted."""
    names = {
        "final": FINAL,
        "oper": sql.Identifier(OPER),
        "seq": sql.Identifier(SEQ),
        "key_json": _key_json(ctx, "f"),
        "key_match": ctx.target.key_match("t", "f"),
        "target": ctx.target.ident,
        "lseq": sql.Identifier(CHANGE_SEQ_COLUMN),
    }
    ctx.cur.execute(
        sql.SQL(
            "INSERT INTO deleted_keys AS d (table_id, key, change_seq, load_id) "
            "SELECT %(table_id)s, {key_json}, f.{seq}, %(load_id)s FROM {final} f "
            "WHERE f.{oper} = 'D' "
            "ON CONFLICT (table_id, key) DO UPDATE SET change_seq = EXCLUDED.change_seq, "
            "load_id = EXCLUDED.load_id WHERE d.change_seq < EXCLUDED.change_seq"
        ).format(**names),
        {"table_id": ctx.table_id, "load_id": ctx.load_id},
    )
    ctx.cur.execute(
        sql.SQL(
            "DELETE FROM {target} t USING {final} f "
            "WHERE f.{oper} = 'D' AND {key_match} AND (t.{lseq} IS NULL OR t.{lseq} < f.{seq})"
        ).format(**names)
    )
    return ctx.cur.rowcount


def _upsert(ctx: ApplyContext, stage: sql.Composable, newest_tombstone: str | None) -> int:
    """The final inserts and updates whose key no newer tombstone holds, each over the
    stored row only when it is newer (`merge_by_key`, FINAL holding one change per key),
    stamped with this load and the change's sequence. Returns rows written.

    `newest_tombstone`: the highest sequence among the table's tombstones
    (`_newest_tombstone`). Each change is looked up among them only when one of them
    may be newer than it: a lookup per row costs as much as the upsert itself, and
    after a new snapshot, or for a file newer than every delete, none can match."""
    target = ctx.target
    seq = sql.Identifier(SEQ)
    values = {
        LOAD_ID_COLUMN: sql.Placeholder("load_id"),
        CHANGE_SEQ_COLUMN: sql.SQL("s.{}").format(seq),
    }
    where = sql.SQL("s.{oper} IN ('I', 'U')").format(oper=sql.Identifier(OPER))
    if newest_tombstone is not None:
        where += sql.SQL(
            " AND (s.{seq} >= %(newest_tombstone)s OR NOT EXISTS (SELECT FROM deleted_keys d "
            "WHERE d.table_id = %(table_id)s AND d.key = {key_json} AND d.change_seq > s.{seq}))"
        ).format(key_json=_key_json(ctx, "s"), seq=seq)
    with located(ctx, stage):
        upserted = dispositions.merge_by_key(
            ctx.cur,
            target.ident,
            FINAL,
            [*target.columns, LOAD_ID_COLUMN, CHANGE_SEQ_COLUMN],
            target.key,
            CHANGE_SEQ_COLUMN,
            values=values,
            where=where,
            args={
                "table_id": ctx.table_id,
                "load_id": ctx.load_id,
                "newest_tombstone": newest_tombstone,
            },
            one_per_key=True,
            newer_only=True,
        )
    return upserted
