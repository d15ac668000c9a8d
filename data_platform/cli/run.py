"""`data-platform run`: scan and ingest every source once, or again every N seconds."""

from __future__ import annotations

import json
import logging
import time

import click

from data_platform.cli.options import json_option

log = logging.getLogger(__name__)


@click.command()
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Repeat every SECONDS until interrupted.",
)
@json_option
def run(watch: float | None, as_json: bool) -> None:
    """Scan the incoming zone and ingest every ready load, for all sources.

    \b
    Exits 1 when a load was errored, so a scheduler notices.

    \b
    Examples:
      data-platform run
      data-platform run --watch 60
    """
    from data_platform.pipeline import run_once

    while True:
        summary = run_once()
        click.echo(json.dumps(summary.to_dict()) if as_json else summary.render())
        if watch is None:
            if summary.errored:
                raise SystemExit(1)
            return
        time.sleep(watch)
