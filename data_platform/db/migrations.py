"""Alembic commands as typed functions (the CLI, the demo and tests call these).

One linear history across version locations (doc/adr/0006-migration-layout.md): the core
revisions of the metadata schema in the package (`data_platform/db/versions/`), and one
location per source for its tables' revisions (`migrations/<source>/` in the checkout, or
`MIGRATIONS_DIR`), never inside the installed package. Every revision follows the current
head, so `alembic upgrade head` has one head to go to. The demo keeps its own revisions
and its own version table (`alembic_version_demo`) outside that history.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from data_platform.db.engine import connection_errors, database_url
from data_platform.settings import get_settings

PACKAGE_DB_DIR = Path(__file__).resolve().parent
CORE_VERSIONS_DIR = PACKAGE_DB_DIR / "versions"
# A checkout holds alembic.ini beside the package; an installed copy does not.
CHECKOUT_ROOT = PACKAGE_DB_DIR.parent.parent
# Sources whose tables are onboarded by revisions, each in its own version location.
SOURCES = ("cubic_qlik", "cubic_dmap", "melbourne_pedestrian", "totesys", "cubic_kafka")
VERSION_TABLE = "alembic_version"


def source_migrations_root() -> Path:
    """Where source-table revisions live: MIGRATIONS_DIR, else `migrations/` of the
    checkout, else `migrations/` in the working directory (an installed copy)."""
    configured = get_settings().migrations_dir
    if configured is not None:
        return configured.expanduser().resolve()
    if (CHECKOUT_ROOT / "alembic.ini").exists():
        return CHECKOUT_ROOT / "migrations"
    return Path.cwd() / "migrations"


def source_versions_dir(source: str) -> Path:
    """The version location of `source`'s table revisions (may not exist yet)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    return source_migrations_root() / source


def version_locations() -> list[Path]:
    """The core location, then every source location that exists."""
    sources = [source_versions_dir(source) for source in SOURCES]
    return [CORE_VERSIONS_DIR, *(path for path in sources if path.is_dir())]


def alembic_config(
    url: str | None = None,
    extra_version_dirs: list[Path] | None = None,
    *,
    locations: list[Path] | None = None,
    version_table: str = VERSION_TABLE,
) -> Config:
    """An Alembic config for this package, independent of the working directory.

    By default the main history (core plus every source location) and `alembic_version`;
    `extra_version_dirs` are added to it (tests onboard into temporary ones). `locations`
    and `version_table` select another history altogether (the demo's)."""
    ini = CHECKOUT_ROOT / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(PACKAGE_DB_DIR))
    base = locations if locations is not None else version_locations()
    # Each location once: one listed twice would load its revisions twice.
    dirs = list(dict.fromkeys(path.resolve() for path in [*base, *(extra_version_dirs or [])]))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in dirs))
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    config.attributes["configure_logging"] = False
    config.attributes["version_table"] = version_table
    return config


def new_revision_file(config: Config, target_dir: Path, slug: str) -> tuple[str, str | None, Path]:
    """A new revision id, its down_revision (the one head of `config`'s history, None for
    an empty one) and the file to write it to in `target_dir`, which is created.

    Raises alembic's CommandError when the history has more than one head."""
    import uuid
    from datetime import UTC, datetime

    from alembic.util import CommandError

    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) > 1:
        raise CommandError(f"the migration history has {len(heads)} heads: {', '.join(heads)}")
    revision = uuid.uuid4().hex[:12]
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return revision, (heads[0] if heads else None), target_dir / f"{stamp}_{revision}_{slug}.py"


def upgrade(revision: str = "head", config: Config | None = None) -> None:
    command.upgrade(config or alembic_config(), revision)


def downgrade(revision: str = "base", config: Config | None = None) -> None:
    command.downgrade(config or alembic_config(), revision)


def current_revisions(config: Config | None = None) -> set[str]:
    """Revisions the database is at (empty before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    config = config or alembic_config()
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with connection_errors(url), engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": config.attributes.get("version_table")}
            )
            return set(context.get_current_heads())
    finally:
        engine.dispose()


def head_revisions(config: Config | None = None) -> set[str]:
    return set(ScriptDirectory.from_config(config or alembic_config()).get_heads())
