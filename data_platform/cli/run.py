"""`data-platform run`: scan and ingest every source once, or again every N seconds."""

from __future__ import annotations

import logging
import time

import click

log = logging.getLogger(__name__)


@click.command()
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Repeat every SECONDS until interrupted.",
)
def run(watch: float | None) -> None:
    """Scan the incoming zone and ingest every ready load, for all sources.

    \b
    Examples:
      data-platform run
      data-platform run --watch 60
    """
    from data_platform.pipeline import run_once

    while True:
        summary = run_once()
        click.echo(summary.render())
        if watch is None:
            if summary.errored:
                raise SystemExit(1)
            return
        time.sleep(watch)
