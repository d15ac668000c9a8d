"""Alembic commands as typed functions (the CLI, the demo and tests call these)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from data_platform.db.engine import connection_errors, database_url

PACKAGE_DB_DIR = Path(__file__).resolve().parent
VERSIONS_DIR = PACKAGE_DB_DIR / "versions"


def alembic_config(url: str | None = None, extra_version_dirs: list[Path] | None = None) -> Config:
    """An Alembic config for this package, independent of the working directory."""
    ini = PACKAGE_DB_DIR.parent.parent / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(PACKAGE_DB_DIR))
    locations = [VERSIONS_DIR, *(extra_version_dirs or [])]
    config.set_main_option("path_separator", "os")
    import os

    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(revision: str = "heads", config: Config | None = None) -> None:
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
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def head_revisions(config: Config | None = None) -> set[str]:
    return set(ScriptDirectory.from_config(config or alembic_config()).get_heads())
