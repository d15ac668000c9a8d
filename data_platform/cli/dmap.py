"""click commands for DMAP (`data-platform dmap ...`); `fetch` also runs as
`python -m data_platform.batch.cubic_dmap.fetch`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from data_platform.cli.options import json_option


@click.command("add-feed", short_help="Register a feed by its path (safe to repeat).")
@click.argument("relative_url", metavar="PATH")
@click.option("--inactive", is_flag=True, help="Register it paused: `dmap fetch` skips it.")
def add_feed_command(relative_url: str, inactive: bool) -> None:
    """Register a DMAP feed by its PATH after CUBIC_DMAP_BASE_URL; the last segment is the
    dataset type. Safe to repeat: an existing feed is only set active (or --inactive).

    Feeds under /datasetpublicusersapi/ are fetched with CUBIC_DMAP_PUBLIC_USER_API_KEY,
    the others with CUBIC_DMAP_CONTROLLED_USER_API_KEY.

    \b
    Examples:
      data-platform dmap add-feed /datasetpublicusersapi/aggregations/agg_daily_fareprod
      data-platform dmap add-feed /datasetcontrolleduserapi/transactional/device_event --inactive
    """
    from data_platform.batch.cubic_dmap.feeds import add_feed

    feed_id, created = add_feed(relative_url, active=not inactive)
    state = "inactive" if inactive else "active"
    if created:
        click.echo(f"added feed {relative_url} (id {feed_id}, {state})")
    else:
        click.echo(f"feed {relative_url} exists already (id {feed_id}, {state})")


@click.command("fetch", short_help="Land the datasets published since the last fetch.")
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    metavar="PATH",
    help="Only this feed (repeatable; an inactive one is skipped). Default: every active feed.",
)
# Demo and tests only: the local demo API cannot serve https links.
@click.option("--allow-http-downloads", is_flag=True, hidden=True)
@json_option
@click.pass_context
def fetch_command(
    ctx: click.Context, feeds: tuple[str, ...], allow_http_downloads: bool, as_json: bool
) -> None:
    """Download every dataset published since the last fetch into the incoming zone
    (<CUBIC_DMAP_PREFIX><type>/<dataset_id>.csv.gz) and record it.

    A feed that fails stops at that dataset (the next fetch resumes there); the others go
    on. Exits 1 when a feed failed. A landing like `data-platform run`'s (recorded, alerted
    as land:cubic_dmap:<feed>).

    \b
    Examples:
      data-platform dmap fetch
      data-platform dmap fetch --feed /datasetpublicusersapi/aggregations/agg_daily_fareprod
      data-platform dmap fetch --json
    """
    from data_platform.batch.cubic_dmap.lander import DmapLander
    from data_platform.loads.landing import land

    landed = land(DmapLander(list(feeds) or None, allow_http_downloads=allow_http_downloads))
    result = landed.detail
    click.echo(json.dumps(result.to_dict()) if as_json else result.render())
    if landed.failed:
        ctx.exit(1)


@click.group("dmap")
def group() -> None:
    """Cubic DMAP API feeds: register them, fetch their datasets into incoming."""


@click.command("onboard")
@click.option(
    "--type", "dataset_type", required=True, help="Dataset type, e.g. agg_daily_fareprod."
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A gzip CSV of the type to read the header from (default: its newest file in incoming).",
)
@click.option("--apply", is_flag=True, help="Also upgrade the database (alembic upgrade head).")
@click.option(
    "--versions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the revision here instead of migrations/cubic_dmap/ (or MIGRATIONS_DIR).",
)
def onboard_command(
    dataset_type: str, csv_path: Path | None, apply: bool, versions_dir: Path | None
) -> None:
    """Write the revision that creates a DMAP type's table (once), for review.

    The table `cubic_dmap.<type>` takes the CSV header's columns (declared types for the
    aggregation types, text otherwise), a `dataset_id` and lineage; its revision goes
    into migrations/cubic_dmap/ after the head of the one migration history.

    \b
    Example:  data-platform dmap onboard --type agg_daily_fareprod --apply
    """
    from data_platform.batch.cubic_dmap.onboarding import onboard_dataset_type

    result = onboard_dataset_type(
        dataset_type, csv_path=csv_path, apply=apply, versions_dir=versions_dir
    )
    target = f"{result.db_schema}.{result.db_table}"
    if result.created:
        click.echo(f"wrote {result.path} (revision {result.revision}): creating {target}")
    else:
        click.echo(f"{dataset_type} already onboarded by revision {result.revision} ({target})")
    if apply:
        click.echo("database upgraded to head")


@click.command("evolve-type")
@click.option(
    "--type", "dataset_type", required=True, help="Dataset type, e.g. agg_daily_fareprod."
)
@click.option("--apply", is_flag=True, help="Also upgrade to head and re-queue the waiting loads.")
@click.option(
    "--versions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the revision here instead of migrations/cubic_dmap/ (or MIGRATIONS_DIR).",
)
def evolve_type_command(dataset_type: str, apply: bool, versions_dir: Path | None) -> None:
    """Evolve a DMAP type whose files gained columns: write a reviewed Alembic revision
    adding them (declared types, else text), from the headers of the loads the change
    errored; with --apply, upgrade and re-queue those loads, which the next `run` applies.

    \b
    Example:  data-platform dmap evolve-type --type agg_daily_fareprod --apply
    """
    from data_platform.batch.cubic_dmap.evolve import evolve_type
    from data_platform.cli.evolution import echo_evolution
    from data_platform.loads.retry import operator

    result = evolve_type(dataset_type, apply=apply, actor=operator(), versions_dir=versions_dir)
    echo_evolution(result)


group.add_command(add_feed_command)
group.add_command(fetch_command)
group.add_command(onboard_command)
group.add_command(evolve_type_command)
