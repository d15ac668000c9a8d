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
    Exits 1 when a load was errored, so a scheduler notices; a run that stopped exits
    with the code of its cause (3 database, 4 storage, 5 job run; README, "Exit codes").
    With --watch, each pass that changed something is printed after its time (passes
    with nothing new print nothing), and a failed pass is logged and the next one runs.

    \b
    Examples:
      data-platform run
      data-platform run --watch 60
    """
    from datetime import datetime

    from data_platform.run import run_once

    previous: str | None = None
    while True:
        if watch is None:
            summary = run_once()
        else:
            try:
                summary = run_once()
            except Exception as exc:
                # A scheduler-like loop outlives a database or store that is down a while.
                log.error("run failed, next in %ss: %s", watch, exc, exc_info=log.isEnabledFor(10))
                time.sleep(watch)
                continue
        text = json.dumps(summary.to_dict()) if as_json else summary.render()
        if watch is None:
            click.echo(text)
            if summary.errored:
                raise SystemExit(1)
            return
        if summary.changed or text != previous:
            stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            click.echo(text if as_json else f"[{stamp}]\n{text}")
        previous = text
        time.sleep(watch)
