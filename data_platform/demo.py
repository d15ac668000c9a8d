"""The demo: what `make demo` runs, step by step, on the configured platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic.config import Config
from sqlalchemy import select, text
from sqlalchemy import table as sa_table

from data_platform.batch.cubic_qlik.dfm import dfm_key
from data_platform.batch.cubic_qlik.files import CHANGE_SUFFIX
from data_platform.batch.cubic_qlik.onboarding import OnboardResult, onboard_table
from data_platform.db import migrations
from data_platform.db.engine import get_engine
from data_platform.db.models import Load, SourceTable
from data_platform.errors import ConfigError
from data_platform.run import run_once
from data_platform.settings import get_settings
from data_platform.status import platform_status
from data_platform.storage.transfer import upload_tree

REPO_SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
# The demo's tables are not in the main history (`alembic upgrade head` never creates
# them): their revisions live here, with a version table of their own.
DEMO_VERSIONS_DIR = REPO_SAMPLE_DIR / "migrations" / "cubic_qlik"
DEMO_VERSION_TABLE = "alembic_version_demo"
SHOW_ROWS = 20


def demo_config() -> Config:
    """The demo's own migration history (run after the main one, which it needs)."""
    return migrations.alembic_config(
        locations=[DEMO_VERSIONS_DIR], version_table=DEMO_VERSION_TABLE
    )


def onboard_demo_tables(sample_dir: Path | None = None) -> list[OnboardResult]:
    """Onboard the sample tree's tables in the demo's history (a revision in
    `sample_data/migrations/` is reused, else written there) and apply them."""
    return [
        onboard_table(table, apply=True, versions_dir=DEMO_VERSIONS_DIR, config=demo_config())
        for table in sample_tables(sample_dir or REPO_SAMPLE_DIR)
    ]


def sample_tables(sample_dir: Path) -> list[str]:
    """Source tables present in the sample tree, e.g. ['EDW.SAMPLE']."""
    root = sample_dir / get_settings().cubic_qlik_prefix
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.endswith(CHANGE_SUFFIX)
    )


def run_demo(sample_dir: Path | None = None, echo: Callable[[str], None] = print) -> None:
    sample_dir = sample_dir or REPO_SAMPLE_DIR
    if not sample_dir.is_dir():
        raise ConfigError(f"no sample data at {sample_dir}: pass --sample-dir")
    echo("== 1. migrate the metadata database")
    migrations.upgrade()
    echo(f"   at {', '.join(sorted(migrations.current_revisions()))}")

    echo(f"== 2. land {sample_dir.name}/ in the incoming zone")
    with get_engine().connect() as conn:
        # Files ingested by an earlier run were moved to the archive: landing them again
        # would make new loads of the same files.
        landed = {name for key in conn.scalars(select(Load.s3_key)) for name in (key, dfm_key(key))}
    result = upload_tree(sample_dir, "incoming", skip=landed)
    echo(f"   uploaded {result.uploaded}, already there or ingested {result.skipped}")

    echo("== 3. onboard the sample tables (the demo's own revisions)")
    for onboarded in onboard_demo_tables(sample_dir):
        table = onboarded.source_table
        state = "new revision" if onboarded.created else "already onboarded by"
        target = f"{onboarded.db_schema}.{onboarded.db_table}"
        echo(f"   {table} -> {target} ({state} {onboarded.revision})")

    echo("== 4. scan and ingest (data-platform run)")
    echo("   " + run_once().render().replace("\n", "\n   "))

    echo("== 5. current state")
    with get_engine().connect() as conn:
        tables = conn.execute(
            select(SourceTable.db_schema, SourceTable.db_table).where(
                SourceTable.db_table.is_not(None)
            )
        ).all()
        for schema, table in tables:
            echo(f"-- {schema}.{table}")
            rows = conn.execute(
                select(text("*"))
                .select_from(sa_table(table, schema=schema))
                .order_by(text("1"))
                .limit(SHOW_ROWS)
            )
            echo(_table(list(rows.keys()), [tuple(r) for r in rows]))

    echo("== 6. status")
    echo(platform_status().render())


def _table(header: list[str], rows: list[tuple]) -> str:
    cells = [header] + [["" if v is None else str(v).replace("\n", "\\n") for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
