"""`data-platform run`: land the sources that are due, then scan and ingest every source,
once or again every N seconds."""

from __future__ import annotations

import json
import logging
import time

import click

from data_platform.alerts.hooks import alert_transform
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
@click.option(
    "--no-transform",
    is_flag=True,
    help="Do not rebuild the dbt models after new loads (see `data-platform transform`).",
)
@click.option(
    "--no-land",
    is_flag=True,
    help="Do not land (fetch, extract, consume) any source first: only scan and ingest.",
)
@json_option
def run(watch: float | None, no_transform: bool, no_land: bool, as_json: bool) -> None:
    """Land the new files of every source the platform fetches itself whose schedule is
    due (DMAP, pedestrian, totesys, Kafka: each set up by its settings, at most every
    <SOURCE>_LAND_EVERY seconds), then scan the incoming zone and ingest every ready load,
    for all sources; when loads of a source the dbt models read (pedestrian, totesys) were
    archived, build the models and run their data tests (`data-platform transform`).
    After a pass that changed something, the tables of the sources of VERIFY_ON_RUN are
    verified against their sources (`data-platform verify`).

    \b
    Exits 1 when a load was errored, an item of a landing failed (a DMAP feed, a totesys
    table), a model or data test failed or a verification found a mismatch, so a
    scheduler notices; a landing that failed as a whole exits with its cause's code once
    the sources are loaded, and a run that stopped with the code of its cause (3
    database, 4 storage, 5 job run; README, "Exit codes"). With --watch, each pass that
    changed something is printed after its time (passes with nothing new print nothing),
    and a failed pass is logged and the next one runs.

    \b
    Examples:
      data-platform run
      data-platform run --watch 60
      data-platform run --no-land
    """
    from datetime import datetime

    from data_platform.alerts import alert_run, alert_whole_run
    from data_platform.run import run_once

    previous: str | None = None
    while True:
        started = time.monotonic()
        try:
            summary = run_once(land=not no_land)
        except Exception as exc:
            ran = getattr(exc, "run_summary", None)
            if ran is None:
                alert_whole_run(exc)
            else:  # one alert per source that stopped and per cause
                alert_run(ran.stopped, [source.name for source in ran.runs])
            if ran is not None and ran.runs:
                # The sources that did run, before the one Error line of those that stopped.
                click.echo(json.dumps(ran.to_dict()) if as_json else ran.render())
            if watch is None:
                raise
            # A scheduler-like loop outlives a database or store that is down a while.
            log.error("run failed, next in %ss: %s", watch, exc, exc_info=log.isEnabledFor(10))
            time.sleep(watch)
            continue
        alert_run({}, [source.name for source in summary.runs])
        text = json.dumps(summary.to_dict()) if as_json else summary.render()
        transformed = None
        if summary.transform_needed and not no_transform:
            from data_platform.transform import run_transform

            transformed = run_transform()
            text += "\n" + transformed.render() if not as_json else ""
            alert_transform(transformed.nodes)
        mismatched = False
        if summary.changed:
            from data_platform.settings import get_settings
            from data_platform.verify import verify, verify_lines

            on_run = [n.strip() for n in get_settings().verify_on_run.split(",") if n.strip()]
            verified = verify(sources=on_run)
            mismatched = verified.mismatched
            lines = verify_lines(verified)
            text += "" if as_json or not lines else "\n" + "\n".join(lines)
        late = _alert_freshness(time.monotonic() - started)
        if late and not as_json:
            text += "\n" + "\n".join(f"late: {table.line()}" for table in late)
        if watch is None:
            click.echo(text)
            code = summary.exit_code
            if code or (transformed is not None and not transformed.ok) or mismatched:
                raise SystemExit(code or 1)
            return
        if summary.changed or text != previous:
            stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            click.echo(text if as_json else f"[{stamp}]\n{text}")
        previous = text
        time.sleep(watch)


def _alert_freshness(seconds: float) -> list:
    """After a pass of `seconds`: alert the tables behind or stale and a pass longer
    than RUN_EXPECTED_SECONDS (`alerts.freshness`), resolve those that are not. Returns
    the tables behind or stale."""
    from datetime import UTC, datetime

    from data_platform.alerts.freshness import LATE, alert_freshness, alert_slow_pass
    from data_platform.db.engine import session_factory
    from data_platform.loads.freshness import freshness
    from data_platform.settings import get_settings

    settings = get_settings()
    with session_factory()() as session:
        found = freshness(session, settings, datetime.now(UTC))
    alert_freshness(found)
    alert_slow_pass(seconds, settings.run_expected_seconds)
    return [table for table in found if table.state in LATE]
