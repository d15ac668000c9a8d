"""Alembic commands as typed functions (the CLI, the demo and tests call these).

One linear history across version locations (doc/adr/0006-migration-layout.md): the core
revisions of the metadata schema in the package (`data_platform/db/versions/`), and one
location per source for its tables' revisions (`migrations/<source>/` in the checkout, or
`MIGRATIONS_DIR`), never inside the installed package. Every revision follows the current
head, so `alembic upgrade head` has one head to go to. The demo keeps its own revisions
and its own version table (`alembic_version_demo`) outside that history.

Onboarding and evolution revisions are written by Alembic itself (`write_revision`):
`command.revision` with a `process_revision_directives` callback that fills in the
operations, rendered by Alembic's autogenerate renderer into `script.py.mako`, then the
post-write hooks run ruff on the file, so it is ruff-clean as written.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.operations import ops
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.sql import ClauseElement

from data_platform.db.engine import connection_errors, database_url
from data_platform.settings import get_settings

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script
    from sqlalchemy.engine import Dialect

    from data_platform.db.models import SourceName

PACKAGE_DB_DIR = Path(__file__).resolve().parent
CORE_VERSIONS_DIR = PACKAGE_DB_DIR / "versions"
# A checkout holds alembic.ini beside the package; an installed copy does not.
CHECKOUT_ROOT = PACKAGE_DB_DIR.parent.parent
# Sources whose tables are onboarded by revisions, each in its own version location.
SOURCES: tuple[SourceName, ...] = (
    "cubic_qlik",
    "cubic_dmap",
    "melbourne_pedestrian",
    "totesys",
    "cubic_kafka",
)
VERSION_TABLE = "alembic_version"
# How revisions are written, the same from a checkout (alembic.ini holds these too, for
# the `alembic` command; a test keeps the two equal) and from an installed copy (no ini).
# env.py runs for `revision`: it keeps the history linear and renders the operations.
FILE_TEMPLATE = "%(year)d%(month).2d%(day).2d_%(rev)s_%(slug)s"
REVISION_OPTIONS = {
    "revision_environment": "true",
    "file_template": FILE_TEMPLATE,
    "timezone": "UTC",
    "truncate_slug_length": "40",
}
# Alembic's post-write hooks (`[post_write_hooks]`, the "module" runner): `ruff check`
# fixes what it can (the order of imports, one unused), then `ruff format` formats the
# file, with the project's configuration (run from the checkout's root, so a file outside
# it gets the same rules). Long lines are data in a revision (pyproject.toml's
# per-file-ignores): ignored here too, or a revision written outside the checkout's
# revision folders would fail the check, print every long line and stay unformatted.
RUFF_HOOKS = {
    "hooks": "ruff_fix, ruff_format",
    "ruff_fix.type": "module",
    "ruff_fix.module": "ruff",
    "ruff_fix.options": "check --fix --quiet --no-cache --ignore E501 REVISION_SCRIPT_FILENAME",
    "ruff_format.type": "module",
    "ruff_format.module": "ruff",
    "ruff_format.options": "format --quiet --no-cache REVISION_SCRIPT_FILENAME",
}

log = logging.getLogger(__name__)


def source_migrations_root() -> Path:
    """Where source-table revisions live: MIGRATIONS_DIR, else `migrations/` of the
    checkout, else `migrations/` in the working directory (an installed copy)."""
    configured = get_settings().migrations_dir
    if configured is not None:
        return configured.expanduser().resolve()
    if (CHECKOUT_ROOT / "alembic.ini").exists():
        return CHECKOUT_ROOT / "migrations"
    return Path.cwd() / "migrations"


def source_versions_dir(source: SourceName) -> Path:
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
    for key, value in REVISION_OPTIONS.items():
        config.set_main_option(key, value.replace("%", "%%"))
    for key, value in ruff_hooks(CHECKOUT_ROOT if ini.exists() else None).items():
        config.set_section_option("post_write_hooks", key, value)
    config.attributes["configure_logging"] = False
    config.attributes["version_table"] = version_table
    return config


def ruff_hooks(cwd: Path | None) -> dict[str, str]:
    """The `[post_write_hooks]` options: RUFF_HOOKS run in `cwd` (None: the caller's
    working directory), or no hook where ruff is not installed (a deployment may lack the
    linters; its revisions are then correct but not formatted)."""
    if importlib.util.find_spec("ruff") is None:
        return {"hooks": ""}  # said when a revision is written (write_revision)
    hooks = dict(RUFF_HOOKS)
    if cwd is not None:
        for name in hooks["hooks"].split(", "):
            hooks[f"{name}.cwd"] = str(cwd)
    return hooks


def new_revision_id() -> str:
    """A revision id as Alembic makes them: 12 hex digits of a random UUID."""
    return uuid.uuid4().hex[:12]


def write_revision(
    config: Config,
    version_dir: Path,
    *,
    message: str,
    slug: str,
    upgrade: Sequence[ops.MigrateOperation],
    downgrade: Sequence[ops.MigrateOperation],
    constants: dict[str, str],
    rev_id: str | None = None,
) -> Script:
    """Write a revision by Alembic's `command.revision`, after the one head of `config`'s
    history, into `version_dir` (created; it must be one of the history's locations), as
    `<yyyymmdd>_<rev_id>_<slug>.py`, and return it.

    `message` is its docstring (first line: what it does). `upgrade` and `downgrade` are
    Alembic operations (`ops.CreateTableOp`, `ops.AddColumnOp`, `ops.ExecuteSQLOp`...),
    rendered by Alembic's autogenerate renderer; an ExecuteSQLOp may hold a SQLAlchemy
    statement: it is rendered as SQL text with its values inline (`literal_sql`).
    `constants` become module-level names the platform reads back (SOURCE_TABLE...).
    The post-write hooks (RUFF_HOOKS) then lint and format the file.

    Raises alembic's CommandError when the history has more than one head."""

    def fill(context: MigrationContext, revision: object, directives: list) -> None:
        (script,) = directives
        script.upgrade_ops.ops[:] = [_renderable(op, context.dialect) for op in upgrade]
        script.downgrade_ops.ops[:] = [_renderable(op, context.dialect) for op in downgrade]

    if importlib.util.find_spec("ruff") is None:
        log.info("ruff is not installed: the revision is written without formatting")
    version_dir.mkdir(parents=True, exist_ok=True)
    template = config.get_main_option("file_template") or FILE_TEMPLATE
    # The file is named by `slug`, not by the message Alembic would slug.
    named = template.replace("%(slug)s", slug.replace("%", "%%"))
    config.set_main_option("file_template", named.replace("%", "%%"))
    config.attributes["template_args"] = {"constants": constants}
    try:
        written = command.revision(
            config,
            message,
            rev_id=rev_id or new_revision_id(),
            version_path=str(version_dir.resolve()),
            process_revision_directives=fill,
        )
    finally:
        config.set_main_option("file_template", template.replace("%", "%%"))
        config.attributes.pop("template_args", None)
    assert written is not None and not isinstance(written, list)
    return written


# SQLAlchemy's text() takes `:name` (not after a colon, word character or backslash, not
# before a colon or word character) for a bound parameter, and `\:name` for the text
# `:name`; Alembic's op.execute(str) goes through text() (its docs: escape colons).
_TEXT_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")


def literal_sql(statement: ClauseElement, dialect: Dialect) -> str:
    """`statement` (a SQLAlchemy statement or DDL element) as the SQL text of an
    `op.execute("...")`, which Alembic runs through text(): values inline as `dialect`
    quotes them (a connected dialect knows the server's standard_conforming_strings),
    colons of values escaped, percent signs single."""
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.paramstyle in ("format", "pyformat"):
        # Compiled for a driver that takes %s: every % doubled, which text() does again
        # when the revision runs. Halving each run of them is the exact inverse.
        sql = sql.replace("%%", "%")
    return _TEXT_BIND.sub(lambda match: "\\" + match.group(0), sql)


def _renderable(op: ops.MigrateOperation, dialect: Dialect) -> ops.MigrateOperation:
    """Alembic renders an ExecuteSQLOp only when it holds SQL text."""
    if isinstance(op, ops.ExecuteSQLOp) and isinstance(op.sqltext, ClauseElement):
        return ops.ExecuteSQLOp(literal_sql(op.sqltext, dialect))
    return op


def upgrade(revision: str = "head", config: Config | None = None) -> None:
    command.upgrade(config or alembic_config(), revision)


def downgrade(revision: str = "base", config: Config | None = None) -> None:
    command.downgrade(config or alembic_config(), revision)


def current_revisions(
    config: Config | None = None, connection: Connection | None = None
) -> set[str]:
    """Revisions the database is at (empty before the first upgrade), read over
    `connection` when given (the caller's, pooled), else over a connection of its own."""
    from alembic.runtime.migration import MigrationContext

    config = config or alembic_config()
    opts = {"version_table": config.attributes.get("version_table")}
    if connection is not None:
        return set(MigrationContext.configure(connection, opts=opts).get_current_heads())
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with connection_errors(url), engine.connect() as conn:
            return set(MigrationContext.configure(conn, opts=opts).get_current_heads())
    finally:
        engine.dispose()


def require_migrated() -> None:
    """Raise DatabaseError (exit 3), naming the command that fixes it, when the metadata
    database was never migrated: one line before any work, not a trail of failed SQL."""
    from sqlalchemy import text

    from data_platform.db.engine import get_engine
    from data_platform.errors import DatabaseError

    with get_engine().connect() as conn:
        migrated = conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": VERSION_TABLE})
    if not migrated:
        raise DatabaseError(
            "the metadata database has no tables yet: run `data-platform db upgrade` first"
        )


def head_revisions(config: Config | None = None) -> set[str]:
    """The head of `config`'s history. Reading the revision files costs tens of
    milliseconds, so the answer is kept until a file in a version location changes (a
    new onboarding or evolution revision)."""
    config = config or alembic_config()
    locations = tuple((config.get_main_option("version_locations") or "").split(os.pathsep))
    # A file added or removed changes its folder's time; a file edited, its own.
    stamps = tuple(
        max([Path(d).stat().st_mtime_ns, *(p.stat().st_mtime_ns for p in Path(d).glob("*.py"))])
        for d in locations
        if d and Path(d).is_dir()
    )
    return set(_heads(locations, stamps, config.get_main_option("script_location") or ""))


@functools.lru_cache(maxsize=16)
def _heads(locations: tuple[str, ...], stamps: tuple[int, ...], script: str) -> tuple[str, ...]:
    """The heads of the history in `locations` as of their files' `stamps`."""
    config = Config()
    config.set_main_option("script_location", script)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(locations))
    return tuple(ScriptDirectory.from_config(config).get_heads())
