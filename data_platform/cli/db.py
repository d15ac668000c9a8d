"""`data-platform db ...`: migrations and the embedded server."""

from __future__ import annotations

import click

from data_platform.cli.options import json_option


@click.group()
def db() -> None:
    """Metadata database: migrations and the embedded PostgreSQL server."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head): core and every onboarded source table.

    Same as `alembic upgrade head` from the repository root.
    """
    from data_platform.db import migrations

    migrations.upgrade(revision)
    click.echo(f"database at {', '.join(sorted(migrations.current_revisions())) or 'base'}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes everything)."""
    from data_platform.db import migrations

    migrations.downgrade(revision)
    click.echo(f"database at {', '.join(sorted(migrations.current_revisions())) or 'base'}")


@db.command()
@json_option
def current(as_json: bool) -> None:
    """Show the revision the database is at and whether it is at head."""
    import json

    from data_platform.db import migrations

    config = migrations.alembic_config()
    current_revs = sorted(migrations.current_revisions(config))
    heads = sorted(migrations.head_revisions(config))
    if as_json:
        click.echo(json.dumps({"current": current_revs, "heads": heads}))
        return
    state = "at head" if current_revs == heads else f"behind head {', '.join(heads)}"
    click.echo(f"{', '.join(current_revs) or 'base (no migrations applied)'} ({state})")


@db.command()
@click.option("--show-password", is_flag=True, help="Print the password instead of ***.")
def url(show_password: bool) -> None:
    """Print the database URL (starts the embedded server when DATABASE_URL is unset).

    \b
    Example:  psql "$(data-platform db url --show-password | sed 's/+psycopg2//')"
    """
    from data_platform.db.engine import database_url, masked

    value = database_url()
    click.echo(value if show_password else masked(value))


@db.command()
def stop() -> None:
    """Stop the embedded PostgreSQL server (it restarts on the next command)."""
    from data_platform.db import embedded
    from data_platform.settings import get_settings

    settings = get_settings()
    if settings.database_url:
        raise click.UsageError("DATABASE_URL is set: there is no embedded server to stop")
    stopped = embedded.stop(settings.home)
    click.echo("embedded server stopped" if stopped else "embedded server was not running")
