"""click commands for the totesys source database (`data-platform totesys ...`): extract
its changes. The platform only reads it; the harness seeds it and keeps it busy
(`python -m harness totesys seed | simulate`)."""

from __future__ import annotations

import json

import click

from data_platform.batch.totesys.tables import TABLES
from data_platform.cli.options import json_option


@click.command("extract", short_help="Land the rows changed since the last extraction.")
@click.option(
    "--table",
    "tables",
    multiple=True,
    type=click.Choice([table.name for table in TABLES]),
    help="Only this table (repeatable). Default: all eleven.",
)
@json_option
@click.pass_context
def extract_command(ctx: click.Context, tables: tuple[str, ...], as_json: bool) -> None:
    """One pass: read, in one snapshot of the source (as the read-only role
    totesys_reader), every row version written since the table's mark by a transaction
    that was in flight or not yet begun at the last pass (PostgreSQL's transaction
    horizon, so a late commit is never missed), and the keys deleted since (the source's
    key set compared with the copy's); land them as one Parquet file per table in the
    incoming zone (database/totesys/<table>/extracted=<UTC>.parquet). The mark moves
    only after the file is in place. `data-platform run` then loads them (and extracts
    first, once a table was extracted or TOTESYS_DATABASE_URL is set: every
    TOTESYS_LAND_EVERY seconds). Exits 1 when a table failed (the others are extracted).

    \b
    Examples:
      data-platform totesys extract
      data-platform totesys extract --table sales_order --json
    """
    from data_platform.batch.totesys.lander import TotesysLander
    from data_platform.loads.landing import land

    landed = land(TotesysLander(list(tables) or None))
    result = landed.detail
    if as_json:
        click.echo(json.dumps([vars(t) for t in result.tables], default=str))
    else:
        click.echo(result.render())
    if landed.failed:
        ctx.exit(1)


@click.group("totesys")
def group() -> None:
    """The totesys source database (an OLTP sales business): seed it, simulate traffic,
    extract its changes into incoming."""


group.add_command(extract_command)
