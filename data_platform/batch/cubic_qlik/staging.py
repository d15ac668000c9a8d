"""A Qlik file COPYed into a staging table typed like its target, and the statements
that read the staged rows: typed values (`typed`), and `run`, which names the line and
column of a value Postgres refuses while converting or writing it (a bad DATETIME, a
NULL in a NOT NULL column)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg2
import pyarrow as pa
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from data_platform import streams
from data_platform.batch.cubic_qlik.checks import check_staged, first_bad
from data_platform.batch.cubic_qlik.client_rules import qlik_datetimes
from data_platform.batch.cubic_qlik.context import ORD, ApplyContext
from data_platform.batch.cubic_qlik.target import TargetTable
from data_platform.errors import LoadError
from data_platform.loads import arrow_csv
from data_platform.loads.copy_csv import NOT_NULL, CopySource, copy_csv
from data_platform.loads.csv_files import ChunkStream, CsvDialect, DataFileReader
from data_platform.settings import get_settings

log = logging.getLogger(__name__)

STAGE = sql.Identifier("dp_stage")  # the stage of a small file: a temp table
_QUOTED_VALUE = re.compile(r'"(.*)"', re.DOTALL)


class DuplicateKeys(Exception):
    """An INSERT ... ON CONFLICT met one key twice: the file holds it more than once."""


def is_large(ctx: ApplyContext) -> bool:
    """Is the file large enough for COPY streams and parallel workers? From
    LOAD_PARALLEL_MIN_ROWS records, as its .dfm counts them: the count checks the
    streams' total (COPY's end-of-data line would end one stream early), so a file
    without one is not large."""
    count = ctx.dfm.record_count
    return count is not None and count >= get_settings().load_parallel_min_rows


def create_staging(
    ctx: ApplyContext,
    columns: list[str],
    headers: list[str],
    *,
    parallel: bool = False,
    numbered: bool = False,
) -> sql.Identifier:
    """A table typed like the target (so COPY checks every value), with the change
    headers and the converted columns as text, plus the record number: an identity
    column, or with `numbered` a plain one COPY fills (the client numbers the records,
    `arrow_csv.converted_chunks`: a sequence's nextval per row costs a fifth of the
    COPY). Returns its name.

    A temp table, dropped at commit; with `parallel`, an unlogged table
    `dp_stage_<table_id>` in the target's schema instead, created in this
    transaction (no reader ever sees it; a rollback removes it) and dropped by the
    caller: Postgres's parallel workers cannot read temp tables, and the statements
    over a change file's stage (the DATETIME rule above all) then use every core."""
    cur, target = ctx.cur, ctx.target
    stage = STAGE
    # Several files can apply in one transaction (a snapshot rebuild).
    cur.execute("DROP TABLE IF EXISTS pg_temp.dp_stage, pg_temp.dp_final")
    if parallel:
        stage = sql.Identifier(target.schema, f"dp_stage_{ctx.table_id}")
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
    as_text = set(headers) | target.converted
    select_list = []
    for column in columns:
        if column in as_text:
            expr = sql.SQL('CAST(NULL AS text) COLLATE "C" AS {}')
        elif column in target.numerics:
            # Unconstrained, so COPY keeps every digit it was given (numeric(p,s) would
            # round them away unseen) for `checks.check_numeric`.
            expr = sql.SQL("CAST(NULL AS numeric) AS {}")
        else:
            expr = sql.SQL("t.{}")
        select_list.append(expr.format(sql.Identifier(column)))
    cur.execute(
        sql.SQL(
            "CREATE {kind} TABLE {stage} {on_commit} AS SELECT {cols} FROM {target} t WITH NO DATA"
        ).format(
            kind=sql.SQL("UNLOGGED" if parallel else "TEMP"),
            stage=stage,
            on_commit=sql.SQL("" if parallel else "ON COMMIT DROP"),
            cols=sql.SQL(", ").join(select_list),
            target=target.ident,
        )
    )
    numbering = sql.SQL("" if numbered else " GENERATED ALWAYS AS IDENTITY")
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint{}").format(
            stage, sql.Identifier(ORD), numbering
        )
    )
    return stage


def copy_file(
    ctx: ApplyContext,
    reader: CopySource,
    into: sql.Composable,
    columns: list[str],
    *,
    freeze: bool = False,
    dialect: CsvDialect | None = None,
    numbered: bool = False,
) -> int:
    """COPY the file's records into `into` and check the .dfm's record count. Returns
    the records copied; raises LoadError naming a bad record, or a count that differs.
    `dialect`: the records' own when not the file's (converted on the client);
    `numbered`: each record ends with its record number (`create_staging`)."""
    extra = [ORD] if numbered else []
    rows = copy_csv(
        ctx.cur,
        into,
        [*columns, *extra],
        reader,
        dialect or ctx.dfm.dialect,
        file_columns=[*(c.name for c in ctx.dfm.columns), *extra],
        error=ctx.copy_error,
        reopen=ctx.reopen,
        freeze=freeze,
    )
    if ctx.dfm.record_count is not None and rows != ctx.dfm.record_count:
        raise ctx.error(
            f"file has {rows} record(s) but its .dfm says recordCount {ctx.dfm.record_count}"
        )
    return rows


def stage_file(
    ctx: ApplyContext,
    reader: DataFileReader,
    columns: list[str],
    headers: list[str],
    *,
    parallel: bool = False,
) -> tuple[ApplyContext, sql.Identifier, int]:
    """Stage the records left in `reader` (`create_staging`, `copy_file`), for a file
    whose DATETIME values can be converted on the client while it streams
    (`client_rules.qlik_datetimes`, `loads.arrow_csv`): the stage then holds them typed,
    and the SQL over it skips the DATETIME rule (`typed`). When the client leaves a value
    to SQL, or COPY refuses one, the stage is dropped and the file read again the exact
    way, which converts it in SQL or names the bad record as always.

    Returns (the context whose target says which columns the stage holds typed, the
    stage, the records staged); raises LoadError naming a bad record."""
    converters = _stage_converters(ctx)
    if converters and ctx.reopen is not None:
        fast = replace(ctx, target=replace(ctx.target, staged_typed=frozenset(converters)))
        ctx.cur.execute("SAVEPOINT dp_client_stage")
        try:
            stage = create_staging(fast, columns, headers, parallel=parallel, numbered=True)
            chunks = arrow_csv.converted_chunks(
                reader, ctx.dfm.dialect, columns, converters, numbered=True
            )
            # No `reopen`: a failure here is not reported (the exact way names it), so
            # COPY's error need not be located by reading the file again. The chunks are
            # converted on a thread of their own while COPY takes the ones before.
            quiet = replace(fast, reopen=None)
            rows = copy_file(quiet, ConvertedRecords(streams.ahead(chunks)), stage, columns,
                             dialect=arrow_csv.COPY_DIALECT, numbered=True)  # fmt: skip
        except LoadError as exc:
            ctx.cur.execute("ROLLBACK TO SAVEPOINT dp_client_stage")
            log.info("%s: staging the exact way: %s", ctx.key, exc.reason, extra=ctx.log_extra)
        else:
            ctx.cur.execute("RELEASE SAVEPOINT dp_client_stage")
            log.debug("%s: staged, DATETIME converted on the client", ctx.key, extra=ctx.log_extra)
            return fast, stage, rows
        with ctx.reopen() as source, DataFileReader(source, ctx.key) as again:
            again.header(ctx.dfm.dialect)
            stage = create_staging(ctx, columns, headers, parallel=parallel)
            return ctx, stage, copy_file(ctx, again, stage, columns)
    stage = create_staging(ctx, columns, headers, parallel=parallel)
    return ctx, stage, copy_file(ctx, reader, stage, columns)


def _stage_converters(ctx: ApplyContext) -> dict[str, arrow_csv.Converter]:
    """The DATETIME columns of the table, each with the client's rule, when pyarrow
    reads the file's dialect; else none."""
    if not arrow_csv.can_read(ctx.dfm.dialect):
        return {}
    return dict.fromkeys(ctx.target.timestamps, qlik_datetimes)


class ConvertedRecords(ChunkStream):
    """`read(n)` over converted chunks for `copy_csv`. A chunk that fails to convert
    (pyarrow cannot read a record, the client leaves a value to SQL) fails the read,
    its reason kept in `failure` for the LoadError."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__(self._guarded(chunks))

    def _guarded(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from chunks
        except (arrow_csv.NotConvertible, pa.ArrowException) as exc:
            self.failure = LoadError(f"not converted on the client: {exc}")
            raise


def typed(target: TargetTable, column: str, alias: str | None = None) -> sql.Composable:
    """The typed value of a staged column (of the row `alias`)."""
    ref = sql.Identifier(alias, column) if alias else sql.Identifier(column)
    if column in target.bytea:
        return sql.SQL("decode({}, 'hex')").format(ref)
    if column in target.timestamps and column not in target.staged_typed:
        return sql.SQL("qlik_datetime({})").format(ref)
    if column in target.numerics:
        # Checked to fit (`checks.check_numeric`): the cast changes no digit.
        precision, scale = target.numerics[column]
        return sql.SQL("CAST({} AS numeric({}, {}))").format(
            ref, sql.Literal(precision), sql.Literal(scale)
        )
    return ref


@contextmanager
def located(
    ctx: ApplyContext, stage: sql.Composable, *, duplicates: bool = False
) -> Iterator[None]:
    """Around statements that convert or write the values staged in `stage`: a value
    Postgres refuses there (a bad DATETIME, a NULL in a NOT NULL column) raises
    LoadError naming its line, the transaction left as it was before them.

    Raises DuplicateKeys when an ON CONFLICT statement meets one key twice, or
    (`duplicates`) a plain INSERT breaks the key's uniqueness."""
    cur = ctx.cur
    cur.execute("SAVEPOINT dp_statement")
    try:
        yield
    except pg_errors.CardinalityViolation as exc:
        cur.execute("ROLLBACK TO SAVEPOINT dp_statement")
        raise DuplicateKeys() from exc
    except (pg_errors.DataError, pg_errors.IntegrityError) as exc:
        # The staging table was made before the savepoint: it is there to search.
        cur.execute("ROLLBACK TO SAVEPOINT dp_statement")
        if duplicates and isinstance(exc, pg_errors.UniqueViolation):
            raise DuplicateKeys() from exc
        raise _locate(ctx, stage, exc) from exc
    cur.execute("RELEASE SAVEPOINT dp_statement")


def run(
    ctx: ApplyContext,
    statement: sql.Composable,
    stage: sql.Composable,
    args=None,
    *,
    duplicates: bool = False,
) -> int:
    """Execute one statement `located` over `stage`. Returns its row count."""
    with located(ctx, stage, duplicates=duplicates):
        ctx.cur.execute(statement, args)
        rows = ctx.cur.rowcount
    return rows


def _locate(ctx: ApplyContext, stage: sql.Composable, exc: psycopg2.Error) -> LoadError:
    """The first staged record holding the value Postgres refused: the NULL of a
    NOT NULL column, or the quoted value of a conversion error."""
    target = ctx.target
    message = (exc.diag.message_primary or str(exc)).strip()
    candidates: list[tuple[str, sql.Composable]] = []
    if exc.diag.column_name and exc.diag.column_name in target.columns:
        column = exc.diag.column_name
        candidates.append((column, sql.SQL("{} IS NULL").format(sql.Identifier(column))))
        if isinstance(exc, pg_errors.NotNullViolation):
            message = NOT_NULL
    quoted = _QUOTED_VALUE.search(message)
    if quoted:
        for column in sorted(target.converted):
            candidates.append(
                (
                    column,
                    sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(quoted[1])),
                )
            )
    found: tuple[int, str] | None = None
    for column, condition in candidates:
        row = first_bad(ctx, stage, condition, sql.Identifier(column))
        if row is not None and (found is None or row[0] < found[0]):
            found = (row[0], column)
    if found is None:
        return ctx.error(message)
    return ctx.error(message, found[0] + 1, ctx.source_name(found[1]))


def insert_staged(
    ctx: ApplyContext,
    stage: sql.Composable,
    columns: list[str],
    rows: int,
    into: sql.Composable,
    *,
    duplicates: bool = False,
) -> int:
    """Check the `rows` staged records (`checks.check_staged`), then insert them
    converted into `into`. Returns the rows inserted; raises LoadError naming the first
    bad record, DuplicateKeys (`duplicates`) when `into`'s key meets one twice."""
    if rows:
        check_staged(ctx, stage, columns)
    return run(
        ctx,
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            into,
            sql.SQL(", ").join(map(sql.Identifier, ctx.target.columns)),
            sql.SQL(", ").join(typed(ctx.target, c) for c in ctx.target.columns),
            stage,
        ),
        stage,
        duplicates=duplicates,
    )


def insert_last_of_each_key(ctx: ApplyContext, into: sql.Composable, stage: sql.Composable) -> int:
    """INSERT the staged rows into `into`, only the one read last of each key. Returns
    the rows inserted."""
    target = ctx.target
    cols = sql.SQL(", ").join(map(sql.Identifier, target.columns))
    return run(
        ctx,
        sql.SQL(
            "INSERT INTO {into} ({cols}) SELECT {cols} FROM ("
            "SELECT DISTINCT ON ({key}) * FROM (SELECT {values}, {ord} FROM {stage}) s "
            "ORDER BY {key}, {ord} DESC) d"
        ).format(
            into=into,
            cols=cols,
            key=sql.SQL(", ").join(map(sql.Identifier, target.key)),
            values=sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(typed(target, c), sql.Identifier(c))
                for c in target.columns
            ),
            ord=sql.Identifier(ORD),
            stage=stage,
        ),
        stage,
    )


def log_repeated_keys(ctx: ApplyContext) -> None:
    """Say that the file held a key more than once, and the row read last was kept."""
    log.info(
        "%s holds some keys more than once: the row read last was kept",
        ctx.key,
        extra=ctx.log_extra,
    )
