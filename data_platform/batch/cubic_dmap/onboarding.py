"""Onboard a DMAP dataset type: a reviewed Alembic revision that creates its table.

The table is `cubic_dmap.<type>`: the CSV header's columns (types from
`types.DECLARED`, else text), then `dataset_id` (which dataset a row came from: a
re-issue replaces exactly these rows) and `dp__load_id` (lineage). The revision goes into
the DMAP version location (`migrations/cubic_dmap/`) after the head of the one history,
like a Qlik table's (doc/adr/0006-migration-layout.md).
"""

from __future__ import annotations

import csv
import gzip
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import ops
from alembic.script import ScriptDirectory

from data_platform.batch.cubic_dmap import naming
from data_platform.batch.cubic_dmap.types import column_type
from data_platform.db import migrations
from data_platform.db.revision_ops import create_schema, register, sa_type_of, unregister
from data_platform.errors import OnboardingError
from data_platform.storage import get_zone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DmapOnboardResult:
    dataset_type: str
    db_schema: str
    db_table: str
    revision: str
    path: Path | None  # the revision written, None when the type was onboarded already
    columns: tuple[tuple[str, str], ...]  # (column, Postgres type), in file order

    @property
    def created(self) -> bool:
        return self.path is not None


def read_header(data: BinaryIO, where: str) -> list[str]:
    """The header record of a (gzip) CSV stream (a file or a store's body: gzip reads it
    `read(n)` at a time). Raises OnboardingError."""
    try:
        with gzip.GzipFile(fileobj=data) as unzipped:
            line = unzipped.readline()
    except (OSError, EOFError) as exc:
        raise OnboardingError(f"{where}: not a gzip file: {exc}") from exc
    try:
        header = next(csv.reader([line.decode("utf-8").rstrip("\r\n")]), [])
    except UnicodeDecodeError as exc:
        raise OnboardingError(f"{where}: header is not UTF-8: {exc}") from exc
    if not header or not any(header):
        raise OnboardingError(f"{where}: empty file, no header")
    return header


def newest_incoming_header(dataset_type: str) -> tuple[list[str], str]:
    """The header of the type's newest file in the incoming zone, and its key."""
    incoming = get_zone("incoming")
    prefix = naming.type_prefix(dataset_type)
    files = [i for i in incoming.list(prefix) if naming.dataset_id_of(i.key, prefix)]
    if not files:
        raise OnboardingError(
            f"no {dataset_type} file under {incoming.describe(prefix)}: fetch one first "
            "(data-platform dmap fetch) or pass --csv"
        )
    newest = max(files, key=lambda info: (info.last_modified, info.key))
    with incoming.open(newest.key) as body:
        return read_header(body, newest.key), newest.key


def table_columns(dataset_type: str, header: list[str]) -> list[tuple[str, str]]:
    """(column, Postgres type) per header field. Raises OnboardingError when two fields
    map to one column or a field takes a name the platform keeps."""
    columns = [naming.column_name(field) for field in header]
    reserved = {naming.DATASET_ID_COLUMN, naming.LOAD_ID_COLUMN}
    clashes = sorted({c for c in columns if columns.count(c) > 1 or c in reserved})
    if clashes:
        raise OnboardingError(
            f"{dataset_type}: header fields {header} give clashing columns: {', '.join(clashes)}"
        )
    return [(column, column_type(dataset_type, column)) for column in columns]


def onboard_dataset_type(
    dataset_type: str,
    *,
    csv_path: Path | None = None,
    apply: bool = False,
    versions_dir: Path | None = None,
    config: Config | None = None,
) -> DmapOnboardResult:
    """Write the revision that creates `dataset_type`'s table (once) and optionally apply
    it. The header comes from `csv_path` (a gzip CSV), else the type's newest file in
    incoming. The revision goes into `versions_dir` (default the DMAP version location)
    after the head of `config`'s history (default the main one).

    Raises OnboardingError (no file, bad header), ValueError for a bad type name."""
    naming.check_type(dataset_type)
    target_dir = versions_dir or migrations.source_versions_dir(naming.SOURCE)
    target_dir.mkdir(parents=True, exist_ok=True)  # a version location must exist
    if config is None:
        config = migrations.alembic_config(extra_version_dirs=[target_dir])
    onboarded = onboarded_types(ScriptDirectory.from_config(config))
    if csv_path is not None:
        with csv_path.open("rb") as body:
            header, where = read_header(body, str(csv_path)), csv_path.name
    elif dataset_type not in onboarded:
        header, where = newest_incoming_header(dataset_type)
    columns = table_columns(dataset_type, header) if dataset_type not in onboarded else []
    path = None
    if dataset_type in onboarded:
        revision = onboarded[dataset_type]
    else:
        revision, path = write_revision(dataset_type, columns, config, target_dir, where)
        log.info("wrote revision %s for %s", revision, dataset_type, extra={"source": "dmap"})
    if apply:
        migrations.upgrade("head", config)
    return DmapOnboardResult(
        dataset_type, naming.DB_SCHEMA, dataset_type, revision, path, tuple(columns)
    )


def onboarded_types(script: ScriptDirectory) -> dict[str, str]:
    """Dataset type -> revision, for every DMAP onboarding revision of the history."""
    return {
        rev.module.DMAP_TYPE: rev.revision
        for rev in script.walk_revisions()
        if getattr(rev.module, "DMAP_TYPE", None) is not None
    }


def table_of(dataset_type: str, columns: list[tuple[str, str]]) -> sa.Table:
    """The type's table: `columns` (name, Postgres type) in file order, then the dataset
    id and the lineage column, each commented."""
    return sa.Table(
        dataset_type,
        sa.MetaData(),
        *(
            sa.Column(
                column,
                sa_type_of(pg_type),
                comment=f"DMAP {dataset_type}.{column} ({pg_type.lower()})",
            )
            for column, pg_type in columns
        ),
        sa.Column(
            naming.DATASET_ID_COLUMN,
            sa.Text(),
            nullable=False,
            comment=f"The dataset the row came from, e.g. {dataset_type}_20220517.",
        ),
        sa.Column(
            naming.LOAD_ID_COLUMN,
            sa.BigInteger(),
            # Loads set this per transaction (set_config data_platform.load_id).
            server_default=sa.text("current_setting('data_platform.load_id')::bigint"),
            nullable=False,
            comment="Lineage: the load (loads.id) that wrote this row.",
        ),
        # A re-issue replaces its dataset's rows: found by this index.
        sa.Index(f"ix_{dataset_type}_dataset_id", naming.DATASET_ID_COLUMN),
        schema=naming.DB_SCHEMA,
        comment=(
            f"DMAP dataset type {dataset_type}: the rows of every dataset, each re-issue "
            f"replacing its dataset's rows. Files: {naming.type_prefix(dataset_type)}"
        ),
    )


def write_revision(
    dataset_type: str,
    columns: list[tuple[str, str]],
    config: Config,
    target_dir: Path,
    header_source: str,
) -> tuple[str, Path]:
    """Write the revision that creates the type's table and registers it in source_tables
    (its downgrade undoes both) into `target_dir`, after the head of `config`'s history.
    Returns its id and file."""
    table = table_of(dataset_type, columns)
    written = migrations.write_revision(
        config,
        target_dir,
        message=(
            f"onboard DMAP {dataset_type} as {naming.DB_SCHEMA}.{dataset_type}\n\n"
            f"Generated by `data-platform dmap onboard` from the header of {header_source}.\n"
            "Creates the table and registers it in source_tables."
        ),
        slug=f"onboard_dmap_{dataset_type}",
        upgrade=[
            create_schema(naming.DB_SCHEMA),
            ops.CreateTableOp.from_table(table),
            *(ops.CreateIndexOp.from_index(index) for index in table.indexes),
            register(
                name=naming.table_name(dataset_type),
                source=naming.SOURCE,
                s3_prefix=naming.type_prefix(dataset_type),
                db_schema=naming.DB_SCHEMA,
                db_table=dataset_type,
                is_raw=False,
            ),
        ],
        downgrade=[
            unregister(naming.table_name(dataset_type)),
            ops.DropTableOp.from_table(table),
        ],
        # Read by `dmap onboard` to find types onboarded already.
        constants={
            "DMAP_TYPE": dataset_type,
            "DB_SCHEMA": naming.DB_SCHEMA,
            "DB_TABLE": dataset_type,
            "TABLE_NAME": naming.table_name(dataset_type),
        },
    )
    return written.revision, Path(written.path)
