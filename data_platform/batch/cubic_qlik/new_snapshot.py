"""The first part of a new Qlik snapshot, loaded into a fresh table beside the live one
and swapped in at commit (`loads.table_swap`: readers keep the old snapshot, unblocked,
until then). COPYed straight into it when COPY alone checks every value, its key built
after the data; a large file over several connections at once (`loads.parallel_copy`).
The row read last wins when a key appears twice."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace

from psycopg2 import sql

from data_platform.batch.cubic_qlik.checks import (
    check_numeric,
    integer_ranges,
    loosen,
    numeric_limits,
    tighten,
)
from data_platform.batch.cubic_qlik.client_rules import numeric_check, qlik_datetimes
from data_platform.batch.cubic_qlik.context import ApplyContext, ApplyResult
from data_platform.batch.cubic_qlik.staging import (
    STAGE,
    DuplicateKeys,
    copy_file,
    create_staging,
    insert_last_of_each_key,
    insert_staged,
    is_large,
    log_repeated_keys,
    run,
)
from data_platform.errors import LoadError
from data_platform.loads import arrow_csv, table_swap
from data_platform.loads.arrow_csv import Converter
from data_platform.loads.copy_csv import copy_csv
from data_platform.loads.csv_files import DataFileReader
from data_platform.loads.parallel_copy import ParallelCopyFailed, copy_in_streams, record_chunks
from data_platform.settings import get_settings

log = logging.getLogger(__name__)


def is_direct(ctx: ApplyContext) -> bool:
    """Can a new snapshot be COPYed straight into its fresh table? When COPY alone
    checks every value: no converted column, and a NOT NULL key (COPY refuses a NULL
    in it, naming its line)."""
    target = ctx.target
    return not target.converted and all(c in target.not_null for c in target.key)


def client_converters(ctx: ApplyContext) -> dict[str, Converter] | None:
    """What makes a new snapshot COPYable straight into its fresh table over streams
    with nothing left for SQL to convert or check: Qlik's rules applied on the client as
    the file streams (`client_rules`, `loads.arrow_csv`), column name -> converter: the
    DATETIME rule, and the NUMERIC fit where every NUMERIC column can be checked so
    (`numerics_checked`). None when there is nothing to convert or check, another
    column needs SQL's conversion (BLOB), pyarrow cannot read the file's dialect, or the
    key may be NULL (COPY alone would not refuse a NULL key)."""
    target = ctx.target
    if (
        target.converted - target.timestamps
        or not arrow_csv.can_read(ctx.dfm.dialect)
        or not all(c in target.not_null for c in target.key)
    ):
        return None
    converters: dict[str, Converter] = dict.fromkeys(target.timestamps, qlik_datetimes)
    checks = {c: numeric_check(d, p) for c, (d, p, _) in numeric_limits(ctx).items()}
    if all(checks.values()) and not integer_ranges(ctx):
        converters.update({c: check for c, check in checks.items() if check is not None})
    return converters or None  # None: nothing the client can take off SQL's hands


def numerics_checked(ctx: ApplyContext, converters: dict[str, Converter] | None) -> bool:
    """Did the client check every value that `tighten` would (NUMERIC fits, integer
    ranges)? Then the fresh table keeps its declared types through the COPY."""
    if converters is None:
        return False
    return not integer_ranges(ctx) and all(c in converters for c in numeric_limits(ctx))


def stream_count(ctx: ApplyContext) -> int:
    """How many COPY streams load this new snapshot: several for a large file when
    the caller can open connections and reopen the file (`loads.parallel_copy`),
    else one."""
    settings = get_settings()
    streams = settings.load_copy_streams or min(os.cpu_count() or 1, 4)
    # Records are cut by counting quotes, which an escape character would break.
    if ctx.connect is None or ctx.reopen is None or ctx.dfm.dialect.escape or not is_large(ctx):
        return 1
    return streams


def load_fresh(ctx: ApplyContext, reader: DataFileReader, columns: list[str]) -> ApplyResult:
    """The new snapshot's first part, read from `reader` (header read) whose file
    columns are `columns`, into a fresh table swapped in at commit. Raises LoadError
    naming the first bad record."""
    streams = stream_count(ctx)
    if streams > 1:
        result = load_in_streams(ctx, columns, streams)
        if result is not None:
            return result
    fresh = table_swap.create_fresh(ctx.cur, ctx.target.schema, ctx.target.name, str(ctx.table_id))
    stage = None
    if is_direct(ctx):
        loosen(ctx, ctx.cur, fresh.ident)
        rows = written = copy_file(ctx, reader, fresh.ident, columns, freeze=True)
        if not tighten(ctx, fresh.ident):
            raise _numeric_misfit(ctx, columns)
    else:
        stage = create_staging(ctx, columns, headers=[])
        rows = copy_file(ctx, reader, stage, columns)
        written = insert_staged(ctx, stage, columns, rows, fresh.ident)
    written = _build_key(ctx, fresh, stage, written)
    table_swap.swap_in(ctx.cur, fresh)
    return ApplyResult(rows=rows, upserted=written)


def _build_key(
    ctx: ApplyContext, fresh: table_swap.FreshTable, stage: sql.Identifier | None, written: int
) -> int:
    """Build the key of the fresh table holding the `written` rows, COPYed straight into
    it (`stage` None) or from `stage`. When the file holds a key twice, keep the row read
    last. Returns the rows the table then holds."""
    build_key = table_swap.add_key(ctx.cur, fresh)
    try:
        run(ctx, build_key, stage or STAGE, duplicates=True)
        return written
    except DuplicateKeys:
        pass
    if stage is None:
        # The fresh table holds only this COPY's rows, appended in file order: the later
        # copy of a key is the one at the higher ctid.
        ctx.cur.execute(
            sql.SQL(
                "DELETE FROM {fresh} a USING {fresh} b WHERE {match} AND a.ctid < b.ctid"
            ).format(fresh=fresh.ident, match=ctx.target.key_match("a", "b"))
        )
        written -= ctx.cur.rowcount
    else:
        # No reader sees the fresh table: emptying it costs nothing.
        ctx.cur.execute(sql.SQL("TRUNCATE {}").format(fresh.ident))
        written = insert_last_of_each_key(ctx, fresh.ident, stage)
    run(ctx, build_key, stage or STAGE)
    log_repeated_keys(ctx)
    return written


def _numeric_misfit(ctx: ApplyContext, columns: list[str]) -> LoadError:
    """The error for a new snapshot COPYed straight into its table whose NUMERIC value
    does not fit: the file staged again, to name the record (`checks.check_numeric`)."""
    if ctx.reopen is not None:
        with ctx.reopen() as source, DataFileReader(source, ctx.key) as reader:
            reader.header(ctx.dfm.dialect)
            stage = create_staging(ctx, columns, headers=[])
            copy_file(ctx, reader, stage, columns)
            check_numeric(ctx, stage)
    return ctx.error("a NUMERIC value does not fit its declared precision and scale")


# --- over several connections ------------------------------------------------------------


def load_in_streams(ctx: ApplyContext, columns: list[str], streams: int) -> ApplyResult | None:
    """The new snapshot over `streams` connections at once (`loads.parallel_copy`),
    into a fresh table committed beside the live one, then keyed and swapped in by
    this transaction. Returns None, having dropped that table, when anything fails or
    the file repeats a key: the caller then loads it over this connection alone,
    which names the error or keeps the row read last, as always.

    A process killed meanwhile, or this transaction rolled back after the streams
    committed, leaves the live table as it was and at most the fresh table, which
    the table's next worker run drops (`TableWorker.recover`)."""
    assert ctx.connect is not None and ctx.reopen is not None

    def fall_back(reason: object) -> None:
        log.info(
            "%s: loading over one connection instead of %d: %s",
            ctx.key,
            streams,
            reason,
            extra=ctx.log_extra,
        )

    converters = client_converters(ctx)
    checked = numerics_checked(ctx, converters)
    try:
        fresh = _create_committed_fresh(ctx, loose=not checked)
    except Exception as exc:  # no connection, a lock wait: not the file's fault
        fall_back(exc)
        return None
    into = fresh.ident
    try:
        rows = _copy_in_streams(ctx, into, columns, streams, converters)
        if rows != ctx.dfm.record_count:
            raise ParallelCopyFailed(
                f"{rows} record(s) loaded, the .dfm says {ctx.dfm.record_count}"
            )
        if not checked and not tighten(ctx, into):
            raise ParallelCopyFailed("a NUMERIC value does not fit its declared type")
        run(ctx, table_swap.add_key(ctx.cur, fresh), STAGE, duplicates=True)
    except (ParallelCopyFailed, DuplicateKeys) as exc:
        fall_back(str(exc) or "the file repeats a key")
        _drop_committed(ctx, into, or_here=True)
        return None
    except BaseException:
        # Not the streams' fault (the file changed in incoming, an interrupt): no
        # second try, and no table left behind either, if it can be helped.
        _drop_committed(ctx, into, or_here=False)
        raise
    log.debug(
        "%s: %d rows loaded over %d connections%s",
        ctx.key,
        rows,
        streams,
        ", values converted and checked on the client" if converters else "",
        extra=ctx.log_extra,
    )
    table_swap.swap_in(ctx.cur, fresh)
    return ApplyResult(rows=rows, upserted=rows)


def _copy_in_streams(
    ctx: ApplyContext,
    into: sql.Composable,
    columns: list[str],
    streams: int,
    converters: dict[str, Converter] | None,
) -> int:
    """The file, opened again, COPYed into `into` over `streams` connections, each
    checking its records as the one-connection load does. Returns the records copied;
    raises ParallelCopyFailed when a stream fails. `converters`: the values the client
    converts and checks as the file streams (`client_converters`), or None."""
    assert ctx.connect is not None and ctx.reopen is not None
    dialect = ctx.dfm.dialect
    settings = {
        "data_platform.load_id": str(ctx.load_id),
        "work_mem": get_settings().load_work_mem.replace(" ", ""),
        # Nothing else touches the fresh table; a wait means something is wrong.
        "lock_timeout": "30s",
    }
    with ctx.reopen() as source, DataFileReader(source, ctx.key) as reader:
        reader.header(dialect)
        if converters is None:
            chunks = record_chunks(reader, dialect.quote)
        else:
            # pyarrow's errors (a record it cannot read, a value the rule leaves to
            # SQL) fail the streams: the file is then loaded over one connection.
            chunks = arrow_csv.converted_chunks(reader, dialect, columns, converters)
        return copy_in_streams(
            ctx.connect,
            streams,
            chunks,
            _stream_work(ctx, into, columns, converted=converters is not None),
            settings=settings,
        )


def _stream_work(
    ctx: ApplyContext, into: sql.Composable, columns: list[str], *, converted: bool
) -> Callable:
    """What each stream does with its cursor and its chunk of records: COPY them
    straight into `into`, or stage, check and insert them. `converted`: the chunks
    were converted on the client (`arrow_csv.COPY_DIALECT`, every value ready)."""
    direct = converted or is_direct(ctx)
    file_columns = [c.name for c in ctx.dfm.columns]
    dialect = arrow_csv.COPY_DIALECT if converted else ctx.dfm.dialect

    def work(cur, stream) -> int:
        if direct:
            return copy_csv(
                cur, into, columns, stream, dialect, file_columns=file_columns,
                error=ctx.copy_error,
            )  # fmt: skip
        part = replace(ctx, cur=cur)  # the same checks, over this stream's cursor
        stage = create_staging(part, columns, headers=[])
        rows = copy_csv(
            cur, stage, columns, stream, dialect, file_columns=file_columns,
            error=ctx.copy_error,
        )  # fmt: skip
        return insert_staged(part, stage, columns, rows, into)

    return work


def _create_committed_fresh(ctx: ApplyContext, *, loose: bool) -> table_swap.FreshTable:
    """The fresh table for the streams, created and committed over a connection of
    its own (the streams can only write into a committed table); `loose`: its NUMERIC
    columns unconstrained until `tighten` has checked them (`checks.loosen`)."""
    assert ctx.connect is not None
    setup = ctx.connect()
    try:
        with setup.cursor() as cur:
            # The live table is only read (LIKE): a wait would mean a lock this very
            # load holds, so give up instead of waiting on ourselves.
            cur.execute("SELECT set_config('lock_timeout', '5s', true)")
            fresh = table_swap.create_fresh(
                cur, ctx.target.schema, ctx.target.name, str(ctx.table_id)
            )
            if loose:
                loosen(ctx, cur, fresh.ident)
            cur.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    fresh.ident,
                    sql.Literal(
                        f"Being loaded with a new snapshot of {ctx.target.qualified} "
                        f"(load {ctx.load_id}); left by a stopped load, the table's "
                        "next load drops it."
                    ),
                )
            )
        setup.commit()
    finally:
        setup.close()
    return fresh


def _drop_committed(ctx: ApplyContext, table: sql.Composable, *, or_here: bool) -> None:
    """Drop a table the streams committed, at once and for good (this transaction may
    still roll back), over a connection of its own. This transaction holds no lock
    on it, unless a lock wait says otherwise; then, with `or_here`, it drops it
    itself. Never raises: at worst the table's next worker run drops it."""
    assert ctx.connect is not None
    try:
        conn = ctx.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('lock_timeout', '5s', true)")
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.commit()
        finally:
            conn.close()
        return
    except Exception:
        log.debug("could not drop %s over its own connection", table, exc_info=True)
    if or_here:
        ctx.cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
