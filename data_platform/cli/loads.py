"""`data-platform loads ...`: see loads and steer them (list, show, skip)."""

from __future__ import annotations

import json

import click

from data_platform.cli.options import json_option
from data_platform.db.models import LoadStatus


@click.group()
def loads() -> None:
    """Loads of every source: list them, show one's history, skip one for good."""


@loads.command("list")
@click.option("--table", "tables", multiple=True, help="Only this table, by any of its names.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in LoadStatus]),
    help="Only loads in this status (repeatable).",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def list_command(
    tables: tuple[str, ...], statuses: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """The newest loads, newest first.

    A table goes by its platform name (cubic_ods_qlik__edw_sample), its database name
    (cubic_ods_qlik.edw_sample) or its source's (EDW.SAMPLE); an unknown one is an error
    naming the close matches.

    \b
    Examples:
      data-platform loads list --status errored
      data-platform loads list --table EDW.SAMPLE --limit 10
    """
    from data_platform.db.engine import get_engine
    from data_platform.loads.history import list_loads
    from data_platform.loads.tables import resolve_tables

    table_ids = None
    if tables:
        with get_engine().connect() as conn:
            table_ids = [t.id for t in resolve_tables(conn, list(tables))]
    rows = list_loads(table_ids, list(statuses) or None, limit)
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in rows]))
        return
    if not rows:
        click.echo("no loads")
        return
    for row in rows:
        applied = "" if row.rows is None else f", {row.rows:,} row(s)"
        click.echo(
            f"{row.id:>7}  {row.status:<19} {row.table}  {row.key} ({row.size:,} bytes{applied})"
        )


@loads.command("show")
@click.argument("load_id", type=int)
@json_option
def show_command(load_id: int, as_json: bool) -> None:
    """One load: its file, where it is now, rows, the error, and every transition.

    \b
    Example:  data-platform loads show 42
    """
    from data_platform.loads.history import load_detail

    detail = load_detail(load_id)
    click.echo(json.dumps(detail.to_dict()) if as_json else detail.render())


@loads.command("skip")
@click.argument("load_id", type=int)
@click.option("--reason", required=True, help="Why the file must never be applied (recorded).")
@click.option("--by", "actor", default=None, help="Who decides (default: the current user).")
def skip_command(load_id: int, reason: str, actor: str | None) -> None:
    """Mark a ready or errored load `skipped`: it is never applied, its file is kept in
    the error zone, and the table's later loads go on at the next run.

    \b
    Example:  data-platform loads skip 42 --reason "vendor resent it as 43"
    """
    from data_platform.loads.history import skip_load
    from data_platform.run import all_sources

    how = skip_load(load_id, reason, actor, sources=all_sources())
    click.echo(f"load {load_id} skipped ({how})")
