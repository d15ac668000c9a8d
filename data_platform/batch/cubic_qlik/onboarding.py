"""Onboard a Qlik source table: write an Alembic revision that creates its typed
current-state table and registers it, so every environment gets both via `upgrade`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import ops
from alembic.script import ScriptDirectory

from data_platform.batch.cubic_qlik import naming
from data_platform.batch.cubic_qlik.dfm import Dfm, DfmColumn, parse_dfm
from data_platform.batch.cubic_qlik.files import CHANGE_RE, FULL_LOAD_RE, TablePrefixes, file_name
from data_platform.batch.cubic_qlik.history import history_name, history_revision_ops
from data_platform.batch.cubic_qlik.types import describe_type, pg_type
from data_platform.db import migrations
from data_platform.db.revision_ops import create_schema, register, sa_type_of, unregister
from data_platform.errors import OnboardingError
from data_platform.settings import get_settings
from data_platform.storage import get_zone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnboardResult:
    source_table: str
    db_schema: str
    db_table: str
    revision: str
    path: Path | None  # None when the table was onboarded before
    created: bool
    applied: bool


@dataclass(frozen=True)
class TableSpec:
    """Everything the generated revision declares, derived from the .dfm and options."""

    source_table: str  # EDW.SAMPLE
    name: str  # cubic_ods_qlik__edw_sample
    db_schema: str
    db_table: str
    s3_prefix: str
    is_raw: bool
    columns: tuple[tuple[DfmColumn, str], ...]  # (source column, db column name)
    key: tuple[str, ...]  # db column names in key order


def table_prefix(source_table: str) -> str:
    return f"{get_settings().cubic_qlik_prefix.rstrip('/')}/{source_table}/"


def read_incoming_dfm(source_table: str) -> tuple[Dfm, str]:
    """The .dfm to onboard `source_table` from: its current snapshot's LOAD00000001 (the
    newest full-load .dfm) in the incoming zone, else, for a table that only receives
    changes (a task run with changes only), its newest change file's .dfm.

    Raises OnboardingError when neither is there."""
    incoming = get_zone("incoming")
    prefix = table_prefix(source_table)
    prefixes = TablePrefixes(prefix)
    candidates = [
        info
        for info in incoming.list(prefix)
        if info.key.endswith(".dfm")
        and FULL_LOAD_RE.match(file_name(info.key)[: -len(".dfm")] + ".csv")
    ]
    if candidates:
        # The first part of the newest full load: LOAD00000001 of the current snapshot.
        chosen = max(
            candidates,
            key=lambda info: (info.key.endswith("/LOAD00000001.dfm"), info.last_modified, info.key),
        )
    else:
        changes = [
            info
            for info in incoming.list(prefixes.changes)
            if info.key.endswith(".dfm")
            and CHANGE_RE.match(file_name(info.key)[: -len(".dfm")] + ".csv")
        ]
        if not changes:
            raise OnboardingError(
                f"no .dfm of a full load (LOADnnnnnnnn.dfm) or of a change file under "
                f"{incoming.describe(prefix)} or {incoming.describe(prefixes.changes)}: land "
                "the table's files first or pass --dfm PATH"
            )
        chosen = max(changes, key=lambda info: info.key)  # names are times
        log.info("no full load of %s: onboarding from its change file %s", source_table, chosen.key)
    with incoming.open(chosen.key) as body:
        return parse_dfm(body.read(), key=chosen.key), chosen.key


def build_spec(
    dfm: Dfm, *, raw: bool = False, key: list[str] | None = None, source_table: str | None = None
) -> TableSpec:
    # A change file's .dfm lists the header columns, then the table's columns with their
    # primaryKeyPos: a changes-only table is onboarded from it.
    qualified = source_table or dfm.qualified_name
    schema, table = naming.split_source_name(qualified)
    if (schema, table) != (dfm.source_schema, dfm.source_table):
        raise OnboardingError(f"the .dfm describes {dfm.qualified_name}, not {qualified}")
    db_table = naming.db_table_name(schema, table)
    columns = tuple((col, naming.db_column_name(col.name)) for col in dfm.data_columns)
    seen: dict[str, str] = {}
    for col, db_name in columns:
        if db_name in seen:
            raise OnboardingError(
                f"columns {seen[db_name]!r} and {col.name!r} both map to {db_name!r}"
            )
        seen[db_name] = col.name
    if key:
        by_lower = {col.name.lower(): db_name for col, db_name in columns}
        missing = [k for k in key if k.lower() not in by_lower]
        if missing:
            raise OnboardingError(f"--key names unknown column(s): {', '.join(missing)}")
        key_columns = tuple(by_lower[k.lower()] for k in key)
    else:
        key_columns = tuple(naming.db_column_name(c.name) for c in dfm.key_columns)
    if not key_columns:
        raise OnboardingError(
            f"{qualified} has no primary key columns (primaryKeyPos) in its .dfm: pass "
            "--key COL[,COL...] to name the columns that identify a row"
        )
    return TableSpec(
        source_table=qualified,
        name=naming.platform_table_name(schema, table),
        db_schema=naming.DB_SCHEMA,
        db_table=db_table,
        s3_prefix=table_prefix(qualified),
        is_raw=raw,
        columns=columns,
        key=key_columns,
    )


def table_of(spec: TableSpec) -> sa.Table:
    """The current-state table the onboarding revision creates: the source's columns
    (commented with the source column and its declared type), then the lineage columns."""
    # A one-column key is a primary key. A composite key may be a unique index of the
    # source whose columns can be NULL (Qlik uses one when a table has no primary key):
    # its columns stay nullable, NULLs compare equal (NULLS NOT DISTINCT, PostgreSQL 15+),
    # and a key NULL in every part is refused.
    nullable_key = len(spec.key) > 1
    columns = [
        sa.Column(
            db_name,
            sa.Text() if spec.is_raw else sa_type_of(pg_type(col)),
            # A copy of a source table holds the source's keys only: no sequence default.
            autoincrement=False if db_name in spec.key else "auto",
            nullable=nullable_key or db_name not in spec.key,
            comment=f"{spec.source_table}.{col.name} ({describe_type(col)})",
        )
        for col, db_name in spec.columns
    ]
    if nullable_key:
        key: list[sa.Constraint] = [
            sa.UniqueConstraint(
                *spec.key, name=f"uq_{spec.db_table}_key", postgresql_nulls_not_distinct=True
            ),
            sa.CheckConstraint(
                sa.func.num_nonnulls(*map(sa.column, spec.key)) > 0, name=f"ck_{spec.db_table}_key"
            ),
        ]
    else:
        key = [sa.PrimaryKeyConstraint(*spec.key)]
    return sa.Table(
        spec.db_table,
        sa.MetaData(),
        *columns,
        sa.Column(
            naming.LOAD_ID_COLUMN,
            sa.BigInteger(),
            # Bulk loads set this per transaction (SET LOCAL data_platform.load_id).
            server_default=sa.text("current_setting('data_platform.load_id')::bigint"),
            nullable=False,
            comment="Lineage: the load (loads.id) that last wrote this row.",
        ),
        sa.Column(
            naming.CHANGE_SEQ_COLUMN,
            sa.String(35, collation="C"),
            nullable=True,
            comment="Lineage: header__change_seq of the change that last wrote this row; "
            "NULL when it comes from a full load.",
        ),
        *key,
        schema=spec.db_schema,
        comment=(
            f"Current state of Qlik Replicate source table {spec.source_table} "
            f"(snapshot plus changes). Files: {spec.s3_prefix}"
        ),
    )


def write_revision(
    spec: TableSpec, config: Config, target_dir: Path, dfm_source: str, *, history: bool = False
) -> tuple[str, Path]:
    """Write the revision that creates `spec`'s table and registers it in source_tables
    (its downgrade undoes both) into `target_dir`, after the head of `config`'s history;
    `history`: with its point-in-time history table (`history.history_revision_ops`).
    Returns its id and file."""
    table = table_of(spec)
    keep_upgrade, keep_downgrade = (
        history_revision_ops(table, spec.name, seed=False) if history else ([], [])
    )
    written = migrations.write_revision(
        config,
        target_dir,
        message=(
            f"onboard {spec.source_table} as {spec.db_schema}.{spec.db_table}\n\n"
            f"Generated by `data-platform cubic-qlik process-new-table` from {dfm_source}.\n"
            "Creates the current-state table and registers it in source_tables."
            + (" Keeps its point-in-time history (doc/qlik-history.md)." if history else "")
        ),
        slug=f"onboard_{naming.revision_slug(spec.source_table)}",
        upgrade=[
            create_schema(spec.db_schema),
            ops.CreateTableOp.from_table(table),
            register(
                name=spec.name,
                source=naming.SOURCE,
                s3_prefix=spec.s3_prefix,
                db_schema=spec.db_schema,
                db_table=spec.db_table,
                is_raw=spec.is_raw,
            ),
            *keep_upgrade,
        ],
        downgrade=[*keep_downgrade, unregister(spec.name), ops.DropTableOp.from_table(table)],
        # Read by process-new-table to find tables onboarded already.
        constants={
            "SOURCE_TABLE": spec.source_table,
            "DB_SCHEMA": spec.db_schema,
            "DB_TABLE": spec.db_table,
            "TABLE_NAME": spec.name,
        },
    )
    return written.revision, Path(written.path)


def onboard_table(
    source_table: str,
    *,
    dfm_path: Path | None = None,
    raw: bool = False,
    key: list[str] | None = None,
    apply: bool = False,
    versions_dir: Path | None = None,
    config: Config | None = None,
    history: bool = False,
) -> OnboardResult:
    """Write the onboarding revision for `source_table` (once) and optionally apply it;
    `history`: the revision also creates the table's point-in-time history (a table
    onboarded already gets one by `keep_history`).

    The revision goes into `versions_dir`, by default the Qlik source's version location
    (`migrations/cubic_qlik/`, never the installed package), after the head of the
    history `config` describes (by default the main one, with `versions_dir` in it; the
    demo passes its own). Raises OnboardingError, LoadError for a bad `.dfm`."""
    target_dir = versions_dir or migrations.source_versions_dir(naming.SOURCE)
    target_dir.mkdir(parents=True, exist_ok=True)  # a version location must exist
    if config is None:
        config = migrations.alembic_config(extra_version_dirs=[target_dir])
    script = ScriptDirectory.from_config(config)
    onboarded = _onboarded_tables(script)
    # A table onboarded already may be named by its database or platform name too.
    for source, (_, schema, table) in onboarded.items():
        if source_table.lower() in (f"{schema}.{table}", f"{schema}__{table}"):
            source_table = source
    naming.split_source_name(source_table)
    path: Path | None = None
    if source_table in onboarded:
        if history:
            raise OnboardingError(
                f"{source_table} is onboarded already: keep its history with "
                f"`data-platform cubic-qlik keep-history --table {source_table}`"
            )
        revision, db_schema, db_table = onboarded[source_table]
        created = False
    else:
        if dfm_path is not None:
            dfm = parse_dfm(dfm_path.read_bytes(), key=str(dfm_path))
            dfm_source = dfm_path.name
        else:
            dfm, dfm_source = read_incoming_dfm(source_table)
        spec = build_spec(dfm, raw=raw, key=key, source_table=source_table)
        for other, (rev, schema, table) in onboarded.items():
            if (schema, table) == (spec.db_schema, spec.db_table):
                raise OnboardingError(
                    f"{source_table} maps to {schema}.{table}, which {other} (revision {rev}) "
                    "already uses"
                )
        revision, path = write_revision(spec, config, target_dir, dfm_source, history=history)
        log.info("wrote revision %s for %s", revision, source_table, extra={"table": spec.name})
        db_schema, db_table, created = spec.db_schema, spec.db_table, True
    if apply:
        migrations.upgrade("head", config)
    return OnboardResult(
        source_table=source_table,
        db_schema=db_schema,
        db_table=db_table,
        revision=revision,
        path=path,
        created=created,
        applied=apply,
    )


def _onboarded_tables(script: ScriptDirectory) -> dict[str, tuple[str, str, str]]:
    """Source table -> (revision, schema, table) for every onboarding revision."""
    found = {}
    for rev in script.walk_revisions():
        module = rev.module
        source = getattr(module, "SOURCE_TABLE", None)
        if source is not None:
            found[source] = (rev.revision, module.DB_SCHEMA, module.DB_TABLE)
    return found


@dataclass(frozen=True)
class KeepHistoryResult:
    table: str  # the platform name
    history_table: str  # schema.table
    revision: str
    path: Path | None  # None: the table keeps its history already
    applied: bool


def keep_history(
    name: str,
    *,
    apply: bool = False,
    versions_dir: Path | None = None,
    config: Config | None = None,
) -> KeepHistoryResult:
    """Write the revision that starts the point-in-time history of the onboarded Qlik
    table `name` (any of its names): `<table>_history` shaped like the table as it is
    now, its `<table>_as_of(T)` function, and each row it holds as a first version (`S`);
    with `apply`, upgrade to head. Once per table: a table that keeps its history, or
    whose history revision is written but not applied, gets nothing new.

    Raises UnknownTable, OnboardingError for a table of another source."""
    from data_platform.db.engine import get_engine
    from data_platform.loads.tables import resolve_tables

    target_dir = versions_dir or migrations.source_versions_dir(naming.SOURCE)
    target_dir.mkdir(parents=True, exist_ok=True)
    if config is None:
        config = migrations.alembic_config(extra_version_dirs=[target_dir])
    engine = get_engine()
    with engine.connect() as conn:
        (table,) = resolve_tables(conn, [name])
        if table.source != naming.SOURCE:
            raise OnboardingError(f"{table.name} is a {table.source} table, not a Qlik one")
        db_schema, db_table = table.db_schema, table.db_table
        if db_schema is None or db_table is None:
            raise OnboardingError(f"{table.name} has no table in the database")
        live = sa.Table(db_table, sa.MetaData(), schema=db_schema, autoload_with=conn)
    qualified = f"{db_schema}.{history_name(db_table)}"
    pending = _history_revisions(ScriptDirectory.from_config(config)).get(table.name)
    if table.history_table is not None or pending is not None:
        revision = pending[0] if pending else ""
        if apply:
            migrations.upgrade("head", config)
        return KeepHistoryResult(table.name, qualified, revision, None, apply)
    upgrade, downgrade = history_revision_ops(live, table.name, seed=True)
    written = migrations.write_revision(
        config,
        target_dir,
        message=(
            f"keep the point-in-time history of {db_schema}.{db_table}\n\n"
            f"Generated by `data-platform cubic-qlik keep-history --table {table.name}`.\n"
            f"Creates {qualified} and its as-of function, with each row the table holds "
            "now as its first version (doc/qlik-history.md)."
        ),
        slug=f"history_{naming.revision_slug(table.name)}",
        upgrade=upgrade,
        downgrade=downgrade,
        constants={"KEEPS_HISTORY_OF": table.name},
    )
    log.info("wrote revision %s keeping the history of %s", written.revision, table.name)
    if apply:
        migrations.upgrade("head", config)
    return KeepHistoryResult(table.name, qualified, written.revision, Path(written.path), apply)


def _history_revisions(script: ScriptDirectory) -> dict[str, tuple[str, Path]]:
    """Platform table name -> (revision, file) of every history revision."""
    found = {}
    for rev in script.walk_revisions():
        name = getattr(rev.module, "KEEPS_HISTORY_OF", None)
        if name is not None:
            found[name] = (rev.revision, Path(rev.path))
    return found
