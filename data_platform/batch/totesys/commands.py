"""click commands for the totesys source database (`data-platform totesys ...`): create
and fill it, keep it busy. The platform itself only reads it (`data-platform run`)."""

from __future__ import annotations

import json
import signal

import click

from data_platform.batch.totesys.tables import TABLES
from data_platform.cli.options import json_option


@click.command("seed", short_help="Create the totesys source database and fill it.")
@click.option(
    "--orders",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Sales orders to create (a quarter as many purchase orders).",
)
@click.option(
    "--seed",
    "seed_value",
    type=int,
    default=1,
    show_default=True,
    help="Random seed: the same seed, the same rows.",
)
@click.option("--reset", is_flag=True, help="Drop the eleven tables first and seed anew.")
@json_option
def seed_command(orders: int, seed_value: int, reset: bool, as_json: bool) -> None:
    """Create the totesys database (TOTESYS_DATABASE_URL; unset: `totesys` on the
    platform's own server), its eleven tables and the read-only role totesys_reader,
    and fill it with a generated sales history (the same for the same --seed).

    A seeded database is left alone (it says so) unless --reset.

    \b
    Examples:
      data-platform totesys seed
      data-platform totesys seed --orders 1000000 --seed 7 --reset
    """
    from data_platform.batch.totesys.seed import seed

    result = seed(orders=orders, seed=seed_value, reset=reset)
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())


@click.command("simulate", short_help="Insert and update rows as the live business would.")
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    help="How long to run (Ctrl-C stops earlier).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Actions per second (an action: one transaction of one or more rows).",
)
@click.option("--seed", "seed_value", type=int, help="Random seed (default: a new one each run).")
@json_option
def simulate_command(minutes: float, rate: float, seed_value: int | None, as_json: bool) -> None:
    """Keep a seeded totesys database busy: new sales orders with their transactions and
    payments, order updates, payments marked paid, counterparty/staff/address updates,
    batches of rows sharing one last_updated millisecond, and now and then a long
    transaction that commits a row late with an older timestamp.

    Progress is logged every minute; the totals are printed at the end.

    \b
    Examples:
      data-platform totesys simulate --minutes 30
      data-platform totesys simulate --minutes 5 --rate 20 --json
    """
    from data_platform.batch.totesys.simulate import simulate

    stopped = False

    def on_interrupt(signum, frame) -> None:
        nonlocal stopped
        stopped = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = simulate(minutes=minutes, rate=rate, seed=seed_value, stop=lambda: stopped)
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())


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


group.add_command(seed_command)
group.add_command(simulate_command)
group.add_command(extract_command)
