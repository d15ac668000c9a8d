"""Alembic environment: stock online/offline modes, one linear history.

The URL comes from `sqlalchemy.url` when a caller set it (data_platform.db.migrations),
else from settings (DATABASE_URL or the embedded server). Tests and the CLI may pass an
open connection in `config.attributes["connection"]`, and another version table in
`config.attributes["version_table"]` (the demo's history). `migrations.write_revision`
passes the revision template's arguments in `config.attributes["template_args"]`.

Every revision follows the current head (doc/adr/0006-migration-layout.md): a history
with more than one head is refused, and `alembic revision` writes core revisions into
the package's `versions/` after the head, wherever the head lives.
"""

from logging.config import fileConfig

from alembic import context
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

from data_platform.db.migrations import CORE_VERSIONS_DIR, VERSION_TABLE
from data_platform.db.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
script = ScriptDirectory.from_config(config)
heads = script.get_heads()
if len(heads) > 1:
    raise CommandError(
        f"the migration history has {len(heads)} heads ({', '.join(sorted(heads))}): every "
        "revision must follow the current head; set the newest revision's down_revision to "
        "the revision before it"
    )


def _one_history(context, revision, directives) -> None:
    """`alembic revision`: after the current head, never a branch; into the core
    location (sources write their revisions with their onboarding commands)."""
    for directive in directives:
        # `head` is None when autogenerate writes the revision (Alembic 1.20): the head too.
        if (
            directive.head not in (None, "head", *heads)
            or directive.splice
            or directive.branch_label
        ):
            raise CommandError("a new revision follows the current head: no branches or splices")
        if directive.version_path is None:
            # Tests point this at a temporary location instead of the package.
            core = config.attributes.get("core_versions_dir", CORE_VERSIONS_DIR)
            directive.version_path = str(core)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from data_platform.db.engine import database_url

    return database_url()


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
        version_table=config.attributes.get("version_table", VERSION_TABLE),
        process_revision_directives=_one_history,
        template_args=config.attributes.get("template_args"),
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from data_platform.db.engine import connection_errors

    url = _url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with connection_errors(url), engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
