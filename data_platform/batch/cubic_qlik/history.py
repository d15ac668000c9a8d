"""Point-in-time history of a Qlik table (doc/qlik-history.md): `<table>_history`, one
row per version of a key, written in the load's own transaction from the same files as
the current state.

A version is valid from `dp__valid_from` up to, not including, `dp__valid_to` (the next
version's `dp__valid_from`; NULL: still valid), both Qlik change sequences. A full-load
row (`L`) is valid from its snapshot's start (`qlik_change_seq_at(snapshot, false)`), a
change (`I`, `U`, `D`) from its header__change_seq, or from the snapshot's start when it
is older (a change captured before the full load was copied: the snapshot is only known
from its start). A `D` version says the key had no row. The table as of time T is every
non-`D` version valid at `qlik_change_seq_at(T)` (`<table>_as_of(T)`).

Versions of a key are ordered by (valid from, full-load rows before changes, change
sequence, load, record): the order an independent replay of the files applies them in.
Every file recomputes, for the keys it touched, each version's `dp__valid_to` and the
values of the columns a sparse `U` left untouched (`dp__untouched`: taken from the version
before it, none after a `D`), so a late change lands in its place. A new snapshot closes
the older snapshots' versions at its start; a rebuild of a snapshot rewrites its versions
with the table. History kept from a later moment starts with the rows the table held then
(`S`, from their last change or their snapshot's start).

The history table comes with a reviewed revision (`history_revision_ops`), so every
environment gets it by `upgrade`, and a table evolves it with its own columns
(`evolution_revision`)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops
from psycopg2 import sql
from sqlalchemy.dialects import postgresql

from data_platform.batch.cubic_qlik.context import OPER, ORD, SEQ, ApplyContext, History
from data_platform.batch.cubic_qlik.naming import CHANGE_SEQ_COLUMN, LOAD_ID_COLUMN
from data_platform.batch.cubic_qlik.sparse import Sparse, def_flag
from data_platform.batch.cubic_qlik.staging import run

SUFFIX = "_history"
FILLFACTOR = 70  # percent of each page filled by inserts
VALID_FROM = "dp__valid_from"
VALID_TO = "dp__valid_to"
OPERATION = "dp__operation"
SNAPSHOT = "dp__snapshot_id"
RECORD = "dp__ord"
UNTOUCHED = "dp__untouched"
LOAD = LOAD_ID_COLUMN
HISTORY_SEQ = CHANGE_SEQ_COLUMN
OPERATIONS = ("L", "S", "I", "U", "D")
VERSIONS = sql.Identifier("dp_history_versions")  # a temp table: the touched keys' versions


def history_name(db_table: str) -> str:
    """`edw_sample` -> `edw_sample_history` (at most 63 bytes: onboarding keeps table
    names to 55)."""
    return f"{db_table}{SUFFIX}"


def as_of_name(db_table: str) -> str:
    """The function answering "the table as of T": `edw_sample_as_of`."""
    return f"{db_table}_as_of"


def load_history(cur, table_id: int, snapshot_id: int | None) -> History | None:
    """The history a load of table `table_id` in snapshot `snapshot_id` writes, None
    when the table keeps none."""
    cur.execute(
        "SELECT t.db_schema, t.history_table, "
        "(SELECT qlik_change_seq_at(s.snapshot, false) FROM table_snapshots s WHERE s.id = %s) "
        "FROM source_tables t WHERE t.id = %s AND t.history_table IS NOT NULL",
        (snapshot_id, table_id),
    )
    row = cur.fetchone()
    if row is None:
        return None
    schema, name, start = row
    return History(schema, name, snapshot_id, start)


# --- the reviewed revision ---------------------------------------------------------------


def history_table_of(table: sa.Table) -> sa.Table:
    """The history table of the current-state table `table` (its source columns, every
    one nullable: a `D` version carries its key only), then the version columns."""
    seq = sa.String(35, collation="C")
    columns = [
        sa.Column(c.name, c.type, nullable=True, comment=c.comment)
        for c in table.columns
        if not c.name.startswith("dp__")
    ]
    key = [c.name for c in table.primary_key.columns] or _unique_key(table)
    name = history_name(table.name)
    return sa.Table(
        name,
        sa.MetaData(),
        *columns,
        sa.Column(
            LOAD,
            sa.BigInteger(),
            nullable=False,
            comment="The load (loads.id) that wrote this version.",
        ),
        sa.Column(
            HISTORY_SEQ,
            seq,
            comment="header__change_seq of the change; NULL for a full-load (L) or seeded (S) "
            "row without one.",
        ),
        sa.Column(
            VALID_FROM,
            seq,
            nullable=False,
            comment="Valid from this change sequence: the change's, or its snapshot's start "
            "(qlik_change_seq_at(snapshot, false)) when that is later.",
        ),
        sa.Column(
            VALID_TO,
            seq,
            comment="Valid up to (not including) this change sequence, the next version's "
            "valid from; NULL: the key's version now.",
        ),
        sa.Column(
            OPERATION,
            sa.String(1),
            nullable=False,
            comment="L full-load row, S the row when history began, I insert, U update, "
            "D delete (the key had no row from here).",
        ),
        sa.Column(
            SNAPSHOT,
            sa.BigInteger(),
            comment="The snapshot (table_snapshots.id) the version belongs to; NULL: a table "
            "of changes only.",
        ),
        sa.Column(RECORD, sa.BigInteger(), comment="The change's record in its file."),
        sa.Column(
            UNTOUCHED,
            sa.ARRAY(sa.Text()),
            comment="Columns a sparse U left untouched, their values taken from the version "
            "before.",
        ),
        sa.CheckConstraint(sa.column(OPERATION).in_(OPERATIONS), name=f"ck_{table.name}_h_op"),
        sa.Index(f"ix_{table.name}_h_key", *key, VALID_FROM),
        sa.Index(f"ix_{table.name}_h_sn", SNAPSHOT, VALID_FROM),
        schema=table.schema,
        comment=f"Point-in-time history of {table.schema}.{table.name}: a row per version "
        f"of a key, valid from dp__valid_from to dp__valid_to (Qlik change sequences). "
        f"As of time T: {as_of_name(table.name)}(T). doc/qlik-history.md",
    )


def _unique_key(table: sa.Table) -> list[str]:
    """The columns of the table's unique key (a composite key that may be NULL)."""
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            return [c.name for c in constraint.columns]
    raise ValueError(f"{table.name} has no key")


def history_revision_ops(
    table: sa.Table, registered_as: str, *, seed: bool
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """(upgrade, downgrade) operations that create `table`'s history table and its
    `<table>_as_of(T)` function and record it in source_tables (the row named
    `registered_as`); `seed`: history starts now on a table that holds rows, each one
    a first version (`S`). The downgrade drops them all."""
    history = history_table_of(table)
    schema, name = table.schema, history.name
    assert schema is not None
    quote = postgresql.dialect().identifier_preparer
    hist = f"{quote.quote_schema(schema)}.{quote.quote(name)}"
    function = f"{quote.quote_schema(schema)}.{quote.quote(as_of_name(table.name))}"
    valid = _valid_at(history, sa.func.qlik_change_seq_at(sa.literal_column("at")))
    body = sa.select(sa.text("*")).select_from(history).where(valid)
    compiled = body.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    upgrade: list[ops.MigrateOperation] = [
        ops.CreateTableOp.from_table(history),
        # Each version is updated once, when the next one ends it: room on its page makes
        # that update HOT (no index entry written). No SQLAlchemy construct sets it.
        ops.ExecuteSQLOp(f"ALTER TABLE {hist} SET (fillfactor = {FILLFACTOR})"),
    ]
    upgrade += [ops.CreateIndexOp.from_index(index) for index in history.indexes]
    upgrade += [
        # Identifiers quoted by SQLAlchemy's preparer; DDL of a function has no construct.
        ops.ExecuteSQLOp(
            f"CREATE FUNCTION {function}(at timestamptz) RETURNS SETOF {hist} "
            f"LANGUAGE sql STABLE AS $$ {compiled} $$"
        ),
        ops.ExecuteSQLOp(
            f"COMMENT ON FUNCTION {function}(timestamptz) IS 'The rows of "
            f"{schema}.{table.name} as of a time: its history''s versions valid then (D "
            "versions left out). doc/qlik-history.md'"
        ),
        ops.ExecuteSQLOp(
            _SOURCE_TABLES.update()
            .where(_SOURCE_TABLES.c.name == registered_as)
            .values(history_table=name)
        ),
    ]
    if seed:
        upgrade.append(ops.ExecuteSQLOp(_seed(table, history, registered_as)))
    downgrade: list[ops.MigrateOperation] = [
        ops.ExecuteSQLOp(
            _SOURCE_TABLES.update()
            .where(_SOURCE_TABLES.c.name == registered_as)
            .values(history_table=None)
        ),
        ops.ExecuteSQLOp(f"DROP FUNCTION {function}(timestamptz)"),
        ops.DropTableOp.from_table(history),
    ]
    return upgrade, downgrade


_SOURCE_TABLES = sa.table(
    "source_tables",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.Text),
    sa.column("history_table", sa.Text),
)
_SNAPSHOTS = sa.table(
    "table_snapshots",
    sa.column("id", sa.BigInteger),
    sa.column("table_id", sa.BigInteger),
    sa.column("snapshot", sa.DateTime(timezone=True)),
)


def _valid_at(history: sa.Table, seq: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """The versions of `history` valid at the change sequence `seq`, D versions left out."""
    c = history.c
    return sa.and_(
        c[VALID_FROM] <= seq,
        sa.or_(c[VALID_TO].is_(None), c[VALID_TO] > seq),
        c[OPERATION] != "D",
    )


def _seed(table: sa.Table, history: sa.Table, registered_as: str) -> sa.Insert:
    """Each row the table holds as a first version (`S`) of its key, valid from its last
    change, else its snapshot's start (empty for a table of changes only)."""
    columns = [c.name for c in table.columns if not c.name.startswith("dp__")]
    snapshot = (
        sa.select(
            _SNAPSHOTS.c.id,
            sa.func.qlik_change_seq_at(_SNAPSHOTS.c.snapshot, False).label("start"),
        )
        .join(_SOURCE_TABLES, _SOURCE_TABLES.c.id == _SNAPSHOTS.c.table_id)
        .where(_SOURCE_TABLES.c.name == registered_as)
        .order_by(_SNAPSHOTS.c.snapshot.desc())
        .limit(1)
        .subquery("s")
    )
    rows = table.alias("t")
    select = sa.select(
        *(rows.c[c] for c in columns),
        rows.c[LOAD],
        rows.c[HISTORY_SEQ],
        sa.func.coalesce(sa.func.greatest(rows.c[HISTORY_SEQ], snapshot.c.start), ""),
        sa.literal("S"),
        snapshot.c.id,
    ).select_from(rows.outerjoin(snapshot, sa.true()))
    return history.insert().from_select(
        [*columns, LOAD, HISTORY_SEQ, VALID_FROM, OPERATION, SNAPSHOT], select
    )


# --- written as files apply --------------------------------------------------------------


def start_snapshot(ctx: ApplyContext, history: History) -> None:
    """Before the first part of a snapshot: its versions go (a rebuild writes them
    again), and the older snapshots' versions end where it starts."""
    cur = ctx.cur
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {} IS NOT DISTINCT FROM %s").format(
            history.ident, sql.Identifier(SNAPSHOT)
        ),
        (history.snapshot_id,),
    )
    if history.snapshot_start is None:
        return
    to, from_ = sql.Identifier(VALID_TO), sql.Identifier(VALID_FROM)
    cur.execute(
        sql.SQL(
            "UPDATE {h} SET {to} = greatest({from_}, %(start)s) "
            "WHERE {to} IS NULL OR {to} > %(start)s"
        ).format(h=history.ident, to=to, from_=from_),
        {"start": history.snapshot_start},
    )


def record_full_load(ctx: ApplyContext, history: History, *, first: bool) -> None:
    """The rows this full-load part wrote, each a version (`L`) from the snapshot's
    start; `first`: the snapshot's first part (no versions before it to recompute)."""
    target = ctx.target
    columns = sql.SQL(", ").join(map(sql.Identifier, target.columns))
    ctx.cur.execute(
        sql.SQL(
            "INSERT INTO {h} ({columns}, {load}, {from_}, {oper}, {snapshot}) "
            "SELECT {columns}, {load}, coalesce(%(start)s, ''), 'L', %(snapshot)s "
            "FROM {target} WHERE {load} = %(load_id)s"
        ).format(
            h=history.ident,
            columns=columns,
            load=sql.Identifier(LOAD),
            from_=sql.Identifier(VALID_FROM),
            oper=sql.Identifier(OPERATION),
            snapshot=sql.Identifier(SNAPSHOT),
            target=target.ident,
        ),
        {"start": history.snapshot_start, "snapshot": history.snapshot_id, "load_id": ctx.load_id},
    )
    if not first:
        keys = sql.SQL("SELECT {} FROM {} WHERE {} = %(load_id)s").format(
            sql.SQL(", ").join(map(sql.Identifier, target.key)),
            target.ident,
            sql.Identifier(LOAD),
        )
        _recompute(ctx, history, keys, {"load_id": ctx.load_id})


def record_changes(
    ctx: ApplyContext,
    history: History,
    stage: sql.Composable,
    changes: sql.Composable,
    sparse: Sparse,
    touched: sql.Composable,
) -> int:
    """Every change of the file (the query `changes` over `stage`, B images left out, a
    key update's old key as a D) as a version of its key, then the versions of the keys
    in `touched` (a table of the file's keys) recomputed. A change the history holds
    already (same key, sequence and operation: the file applied again) is not added.
    Returns versions added."""
    target = ctx.target
    columns = sql.SQL(", ").join(map(sql.Identifier, target.columns))
    untouched = (
        sql.SQL(
            "CASE WHEN c.{oper} = 'U' THEN "
            "nullif(array_remove(ARRAY[{flags}]::text[], NULL), '{{}}') END"
        ).format(
            oper=sql.Identifier(OPER),
            flags=sql.SQL(", ").join(
                sql.SQL("CASE WHEN NOT c.{} THEN {} END").format(def_flag(i), sql.Literal(column))
                for i, column in sparse
            ),
        )
        if sparse
        else sql.SQL("CAST(NULL AS text[])")
    )
    names = {
        "h": history.ident,
        "columns": columns,
        "c_columns": sql.SQL(", ").join(
            sql.SQL("c.{}").format(sql.Identifier(c)) for c in target.columns
        ),
        "load": sql.Identifier(LOAD),
        "hseq": sql.Identifier(HISTORY_SEQ),
        "from_": sql.Identifier(VALID_FROM),
        "operation": sql.Identifier(OPERATION),
        "snapshot": sql.Identifier(SNAPSHOT),
        "record": sql.Identifier(RECORD),
        "untouched_col": sql.Identifier(UNTOUCHED),
        "untouched": untouched,
        "changes": changes,
        "oper": sql.Identifier(OPER),
        "seq": sql.Identifier(SEQ),
        "ord": sql.Identifier(ORD),
        "match": ctx.target.key_match("o", "c"),
    }
    args = {
        "load_id": ctx.load_id,
        "start": history.snapshot_start,
        "snapshot": history.snapshot_id,
    }
    key_columns = sql.SQL(", ").join(map(sql.Identifier, target.key))
    if not _in_order(ctx, history, stage):
        added = run(
            ctx,
            sql.SQL(
                "INSERT INTO {h} ({columns}, {load}, {hseq}, {from_}, {operation}, {snapshot}, "
                "{record}, {untouched_col}) "
                "SELECT {c_columns}, %(load_id)s, c.{seq}, greatest(c.{seq}, %(start)s), "
                "c.{oper}, %(snapshot)s, c.{ord}, {untouched} FROM ({changes}) c "
                "WHERE NOT EXISTS (SELECT FROM {h} o WHERE o.{snapshot} IS NOT DISTINCT FROM "
                "%(snapshot)s AND o.{hseq} = c.{seq} AND o.{operation} = c.{oper} AND {match})"
            ).format(**names),
            stage,
            args,
        )
        _recompute(ctx, history, sql.SQL("SELECT {} FROM {}").format(key_columns, touched), {})
        return added
    # The usual case: every change is newer than every version the snapshot holds, so
    # the file's versions follow each other and the key's open version, and only keys
    # with untouched columns need the versions before them.
    new = sql.Identifier("dp_history_new")
    cur = ctx.cur
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(new))
    run(
        ctx,
        sql.SQL(
            "CREATE TEMP TABLE {new} ON COMMIT DROP AS SELECT *, "
            "lead({from_}) OVER w AS dp__next, row_number() OVER w = 1 AS dp__first FROM ("
            "SELECT {c_columns}, c.{seq} AS {hseq}, greatest(c.{seq}, %(start)s) AS {from_}, "
            "c.{oper} AS {operation}, c.{ord} AS {record}, {untouched} AS {untouched_col} "
            "FROM ({changes}) c) v WINDOW w AS (PARTITION BY {key} ORDER BY {from_}, {hseq}, "
            "{record})"
        ).format(new=new, key=key_columns, **names),
        stage,
        args,
    )
    cur.execute(
        sql.SQL(
            "UPDATE {h} o SET {to} = n.{from_} FROM {new} n WHERE n.dp__first "
            "AND o.{to} IS NULL AND {snapshot_is} AND {new_match}"
        ).format(
            to=sql.Identifier(VALID_TO),
            new=new,
            snapshot_is=_snapshot_is("o", history),
            new_match=target.key_match("o", "n"),
            **names,
        ),
        args,
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {h} ({columns}, {load}, {hseq}, {from_}, {operation}, {snapshot}, "
            "{record}, {untouched_col}, {to}) "
            "SELECT {columns}, %(load_id)s, {hseq}, {from_}, {operation}, %(snapshot)s, "
            "{record}, {untouched_col}, dp__next FROM {new}"
        ).format(to=sql.Identifier(VALID_TO), new=new, **names),
        args,
    )
    added = cur.rowcount
    if sparse:
        keys = sql.SQL("SELECT {} FROM {} WHERE {} IS NOT NULL").format(
            key_columns, new, sql.Identifier(UNTOUCHED)
        )
        _recompute(ctx, history, keys, {})
    cur.execute(sql.SQL("DROP TABLE {}").format(new))
    return added


def _snapshot_is(alias: str, history: History) -> sql.Composable:
    """The row `alias` belongs to the load's snapshot: `=` (or IS NULL for a table of
    changes only), which an index can serve."""
    column = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(SNAPSHOT))
    if history.snapshot_id is None:
        return sql.SQL("{} IS NULL").format(column)
    return sql.SQL("{} = {}").format(column, sql.Literal(history.snapshot_id))


def _in_order(ctx: ApplyContext, history: History, stage: sql.Composable) -> bool:
    """Does every change staged in `stage` come after every version of the snapshot in
    version order? Then none of them is there already and no version before them moves.
    Two index reads (`ix_<table>_h_sn`: snapshot, valid from)."""
    cur = ctx.cur
    cur.execute(sql.SQL("SELECT min({}) FROM {}").format(sql.Identifier(SEQ), stage))
    (first,) = cur.fetchone()
    if first is None:
        return True
    if history.snapshot_start is not None:
        first = max(first, history.snapshot_start)
    h, from_ = history.ident, sql.Identifier(VALID_FROM)
    snapshot = _snapshot_is("h", history)
    # max() over the index's leading equality: one index read, whatever the statistics.
    cur.execute(sql.SQL("SELECT max(h.{}) FROM {} h WHERE {}").format(from_, h, snapshot))
    (last,) = cur.fetchone()
    if last is None or last < first:
        return True
    if last > first:
        return False
    cur.execute(
        sql.SQL(
            "SELECT NOT EXISTS (SELECT FROM {h} h WHERE {snapshot} AND h.{from_} = %s "
            "AND h.{hseq} IS NOT NULL)"
        ).format(h=h, snapshot=snapshot, from_=from_, hseq=sql.Identifier(HISTORY_SEQ)),
        (first,),
    )
    return cur.fetchone()[0]


def _recompute(ctx: ApplyContext, history: History, keys: sql.Composable, args: dict) -> None:
    """For the keys the query `keys` gives: each version of the snapshot ends where the
    next begins, and a column a sparse U left untouched holds the value of the latest
    version before it that set it (NULL after a D)."""
    cur, target = ctx.cur, ctx.target
    key = sql.SQL(", ").join(map(sql.Identifier, target.key))
    order = sql.SQL("{from_}, {hseq} NULLS FIRST, {load}, {record} NULLS FIRST").format(
        from_=sql.Identifier(VALID_FROM),
        hseq=sql.Identifier(HISTORY_SEQ),
        load=sql.Identifier(LOAD),
        record=sql.Identifier(RECORD),
    )
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(VERSIONS))
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE {versions} ON COMMIT DROP AS "
            "SELECT h.ctid AS dp__rid, h.* FROM {h} h "
            "WHERE h.{snapshot} IS NOT DISTINCT FROM %(snapshot)s "
            "AND EXISTS (SELECT FROM ({keys}) k WHERE {match})"
        ).format(
            versions=VERSIONS,
            h=history.ident,
            snapshot=sql.Identifier(SNAPSHOT),
            keys=keys,
            match=target.key_match("h", "k"),
        ),
        {**args, "snapshot": history.snapshot_id},
    )
    cur.execute(
        sql.SQL("SELECT DISTINCT unnest({}) FROM {}").format(sql.Identifier(UNTOUCHED), VERSIONS)
    )
    filled = sorted(c for (c,) in cur.fetchall() if c in target.columns)
    window = sql.SQL("PARTITION BY {key} ORDER BY {order}").format(key=key, order=order)
    groups = [
        sql.SQL(
            "count(*) FILTER (WHERE NOT coalesce({u} @> ARRAY[{c}]::text[], false)) OVER (w) AS {g}"
        ).format(u=sql.Identifier(UNTOUCHED), c=sql.Literal(column), g=_group(i))
        for i, column in enumerate(filled)
    ]
    values = [
        sql.SQL(
            "first_value(CASE WHEN {oper} = 'D' THEN NULL ELSE {c} END) "
            "OVER (PARTITION BY {key}, {g} ORDER BY {order}) AS {c}"
        ).format(
            oper=sql.Identifier(OPERATION),
            c=sql.Identifier(column),
            key=key,
            g=_group(i),
            order=order,
        )
        for i, column in enumerate(filled)
    ]
    # Each filled column keeps its own value where the version set it.
    sets = [sql.SQL("{} = v.dp__next").format(sql.Identifier(VALID_TO))] + [
        sql.SQL("{ci} = CASE WHEN {c} = ANY(h.{u}) THEN v.{ci} ELSE h.{ci} END").format(
            c=sql.Literal(column), u=sql.Identifier(UNTOUCHED), ci=sql.Identifier(column)
        )
        for column in filled
    ]
    cur.execute(
        sql.SQL(
            "UPDATE {h} h SET {sets} FROM ("
            "SELECT dp__rid, dp__next{values} FROM ("
            "SELECT *, lead({from_}) OVER (w) AS dp__next{groups} FROM {versions} "
            "WINDOW w AS ({window})) o) v WHERE h.ctid = v.dp__rid "
            "AND (h.{to} IS DISTINCT FROM v.dp__next OR h.{u} IS NOT NULL)"
        ).format(
            h=history.ident,
            sets=sql.SQL(", ").join(sets),
            values=sql.SQL("").join(sql.SQL(", ") + v for v in values),
            from_=sql.Identifier(VALID_FROM),
            groups=sql.SQL("").join(sql.SQL(", ") + g for g in groups),
            versions=VERSIONS,
            window=window,
            to=sql.Identifier(VALID_TO),
            u=sql.Identifier(UNTOUCHED),
        )
    )
    cur.execute(sql.SQL("DROP TABLE {}").format(VERSIONS))


def _group(index: int) -> sql.Identifier:
    """The running count of versions that set filled column `index`."""
    return sql.Identifier(f"dp__g{index}")
