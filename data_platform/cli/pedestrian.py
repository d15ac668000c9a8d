"""click commands for the pedestrian open data (`data-platform pedestrian ...`)."""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from data_platform.cli.options import json_option


def _day(ctx: click.Context, param: click.Parameter, value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.group("pedestrian")
def group() -> None:
    """City of Melbourne pedestrian counts (open data): fetch them into incoming.

    `data-platform run` then loads them into the pedestrian schema and, when new loads
    arrived, rebuilds the dbt models (`data-platform transform`)."""


@click.command("fetch", short_help="Land the sensor locations and the new hourly counts.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    callback=_day,
    help="First sensing_date to fetch, e.g. to backfill a range (default: the last day the "
    "portal had counts for, less OPEN_DATA_LOOKBACK_DAYS; the first fetch: 60 days ago).",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    callback=_day,
    help="Fetch sensing_date before this day (default: tomorrow in Melbourne).",
)
@json_option
@click.pass_context
def fetch_command(
    ctx: click.Context, since: date | None, until: date | None, as_json: bool
) -> None:
    """Download the sensor-locations dataset whole and the hourly counts of the date
    window [--since, --until) from OPEN_DATA_BASE_URL (Opendatasoft Explore v2.1 CSV
    export; OPEN_DATA_API_KEY when set), each as one gzip file in the incoming zone
    under open_data/melbourne_pedestrian/. The stored mark is the last day the portal
    had counts for; it moves only after a file is in place. Every fetch reads again the
    OPEN_DATA_LOOKBACK_DAYS (default 7) before it, so days the portal publishes late,
    fills in or corrects are caught up; a re-read day replaces that day's rows, sensor
    by sensor. Prints "no new day" when the portal had no day after the mark (exit 0);
    exits 1 when a dataset failed. A landing like `data-platform run`'s (recorded,
    alerted as land:melbourne_pedestrian:<dataset>).

    \b
    Examples:
      data-platform pedestrian fetch
      data-platform pedestrian fetch --since 2026-09-01 --until 2026-11-01
      data-platform pedestrian fetch --json
    """
    from data_platform.batch.melbourne_pedestrian.lander import PedestrianLander
    from data_platform.loads.landing import land

    if since is not None and until is not None and since >= until:
        raise click.BadParameter(f"{until} is not after --since {since}", param_hint="--until")
    landed = land(PedestrianLander(since, until))
    result = landed.detail
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())
    if landed.failed:
        ctx.exit(1)


group.add_command(fetch_command)
