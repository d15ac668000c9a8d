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
import io
import logging
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from data_platform.batch.cubic_dmap import naming
from data_platform.batch.cubic_dmap.types import SA_TYPES, column_type
from data_platform.db import migrations
from data_platform.db.revision_text import SOURCE_TABLES, UNREGISTER, py_literal, register
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


def read_header(data: io.BufferedIOBase, where: str) -> list[str]:
    """The header record of a (gzip) CSV stream. Raises OnboardingError."""
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
        return read_header(io.BufferedReader(body), newest.key), newest.key


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
            header, where = read_header(io.BufferedReader(body), str(csv_path)), csv_path.name
    elif dataset_type not in onboarded:
        header, where = newest_incoming_header(dataset_type)
    columns = table_columns(dataset_type, header) if dataset_type not in onboarded else []
    path = None
    if dataset_type in onboarded:
        revision = onboarded[dataset_type]
    else:
        revision, down, path = migrations.new_revision_file(
            config, target_dir, f"onboard_dmap_{dataset_type}"
        )
        path.write_text(render_revision(dataset_type, columns, revision, down, where))
        log.info("wrote revision %s for %s", revision, dataset_type, extra={"source": "dmap"})
    if apply:
        migrations.upgrade("head", config)
    return DmapOnboardResult(
        dataset_type, naming.DB_SCHEMA, dataset_type, revision, path, tuple(columns)
    )


_py = py_literal


def onboarded_types(script: ScriptDirectory) -> dict[str, str]:
    """Dataset type -> revision, for every DMAP onboarding revision of the history."""
    return {
        rev.module.DMAP_TYPE: rev.revision
        for rev in script.walk_revisions()
        if getattr(rev.module, "DMAP_TYPE", None) is not None
    }


def render_revision(
    dataset_type: str,
    columns: list[tuple[str, str]],
    revision: str,
    down_revision: str | None,
    header_source: str,
) -> str:
    """The revision's source: ruff-clean and ruff-formatted as written."""
    # Exploded with trailing commas and double quotes: what `ruff format` keeps as is.
    lines = [
        f"sa.Column(\n    {_py(column)},\n    {SA_TYPES[pg_type]},\n"
        f"    comment={_py(f'DMAP {dataset_type}.{column} ({pg_type.lower()})')},\n),"
        for column, pg_type in columns
    ]
    body = textwrap.indent("\n".join(lines), " " * 8)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    down = _py(down_revision) if down_revision else "None"
    table_comment = (
        f"DMAP dataset type {dataset_type}: the rows of every dataset, each re-issue "
        f"replacing its dataset's rows. Files: {naming.type_prefix(dataset_type)}"
    )
    return f'''"""onboard DMAP {dataset_type} as {naming.DB_SCHEMA}.{dataset_type}

Generated by `data-platform dmap onboard` from the header of {header_source}.
Creates the table and registers it in source_tables.

Revision ID: {revision}
Revises: {down_revision}
Create Date: {now}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = {_py(revision)}
down_revision: str | Sequence[str] | None = {down}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Read by `dmap onboard` to find types onboarded already.
DMAP_TYPE = {_py(dataset_type)}
DB_SCHEMA = {_py(naming.DB_SCHEMA)}
DB_TABLE = {_py(dataset_type)}
TABLE_NAME = {_py(naming.table_name(dataset_type))}

{SOURCE_TABLES}


def upgrade() -> None:
    op.execute(sa.schema.CreateSchema(DB_SCHEMA, if_not_exists=True))
    op.create_table(
        DB_TABLE,
{body}
        sa.Column(
            {_py(naming.DATASET_ID_COLUMN)},
            sa.Text(),
            nullable=False,
            comment="The dataset the row came from, e.g. {dataset_type}_20220517.",
        ),
        sa.Column(
            {_py(naming.LOAD_ID_COLUMN)},
            sa.BigInteger(),
            # Loads set this per transaction (set_config data_platform.load_id).
            server_default=sa.text("current_setting('data_platform.load_id')::bigint"),
            nullable=False,
            comment="Lineage: the load (loads.id) that wrote this row.",
        ),
        schema=DB_SCHEMA,
        comment={_py(table_comment)},
    )
    op.create_index(
        {_py("ix_" + dataset_type + "_dataset_id")},
        DB_TABLE,
        [{_py(naming.DATASET_ID_COLUMN)}],
        schema=DB_SCHEMA,
    )
{register(naming.SOURCE, naming.type_prefix(dataset_type))}


def downgrade() -> None:
{UNREGISTER}
'''
