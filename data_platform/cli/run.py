"""`data-platform run`: land the sources that are due, then scan and ingest every source,
once or again every N seconds."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import click

from data_platform.alerts.hooks import alert_transform
from data_platform.cli.options import json_option

if TYPE_CHECKING:
    from data_platform.runs import Pass

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
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Print every dbt model and test of the build, not only its summary and failures.",
)
@json_option
def run(
    watch: float | None, no_transform: bool, no_land: bool, verbose: bool, as_json: bool
) -> None:
    """Land the new files of every source the platform fetches itself whose schedule is
    due (DMAP, pedestrian, totesys, Kafka: each set up by its settings, at most every
    <SOURCE>_LAND_EVERY seconds), then scan the incoming zone and ingest every ready load,
    for all sources; when loads of a source the dbt models read (pedestrian, totesys) were
    archived, build the models and run their data tests (`data-platform transform`).
    After a pass that changed something, the tables of the sources of VERIFY_ON_RUN are
    verified against their sources (`data-platform verify`). It prints a line per source,
    the dbt build's summary with each failing or warning test named (-v: every model and
    test), the verifications and the tables behind or late.

    \b
    Exits 1 when a load was errored, an item of a landing failed (a DMAP feed, a totesys
    table), a model or data test failed or a verification found a mismatch, so a
    scheduler notices; a landing that failed as a whole exits with its cause's code once
    the sources are loaded, and a run that stopped with the code of its cause (3
    database, 4 storage, 5 job run; doc/operations.md, "Exit codes"). With --watch,
    each pass that changed something is printed after its time (passes with nothing new
    print nothing), and a failed pass is logged and the next one runs.

    \b
    Examples:
      data-platform run
      data-platform run --watch 60
      data-platform run --no-land
    """
    from datetime import datetime

    from data_platform import runs
    from data_platform.alerts import alert_run, alert_whole_run
    from data_platform.db.migrations import require_migrated
    from data_platform.errors import exit_code_for

    require_migrated()
    previous: str | None = None
    trigger = "cli" if watch is None else "watch"
    while True:
        record = runs.begin(trigger)
        try:
            text, code, changed = _pass(
                record,
                no_land=no_land,
                no_transform=no_transform,
                verbose=verbose,
                as_json=as_json,
            )
        except Exception as exc:
            ran = getattr(exc, "run_summary", None)
            if ran is None:
                alert_whole_run(exc)
            else:  # one alert per source that stopped and per cause
                alert_run(ran.stopped, [source.name for source in ran.runs])
            printed = ""
            if ran is not None and ran.runs:
                # The sources that did run, before the one Error line of those that stopped.
                printed = json.dumps(ran.to_dict()) if as_json else ran.render()
                click.echo(printed)
            record.finish(
                exit_code=exit_code_for(exc),
                counts=ran.counts() if ran is not None else None,
                summary=ran.to_dict() if ran is not None else None,
                output=printed,
                error=exc,
            )
            if watch is None:
                raise
            # A scheduler-like loop outlives a database or store that is down a while.
            log.error("run failed, next in %ss: %s", watch, exc, exc_info=log.isEnabledFor(10))
            time.sleep(watch)
            continue
        if watch is None:
            click.echo(text)
            if code:
                raise SystemExit(code)
            return
        if changed or text != previous:
            stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            click.echo(text if as_json else f"[{stamp}]\n{text}")
        previous = text
        time.sleep(watch)


def _pass(
    record: Pass, *, no_land: bool, no_transform: bool, verbose: bool, as_json: bool
) -> tuple[str, int, bool]:
    """One pass: land, scan and ingest every source (`run_once`), then the dbt build when
    rows the models read arrived, the verifications when something changed, and the
    freshness alerts; recorded in `record` (`runs.Pass`). Returns what to print and the
    exit code, and whether it changed anything. Raises what stopped the pass (with
    `run_summary` when sources ran)."""
    from data_platform.alerts import alert_run
    from data_platform.run import run_once

    summary = run_once(land=not no_land)
    alert_run({}, [source.name for source in summary.runs])
    lines = [summary.render()]
    details: dict = {"sources": summary.to_dict()}
    transformed = None
    if summary.transform_needed and not no_transform:
        from data_platform.transform import run_transform

        transformed = run_transform()
        lines.append(transformed.render(every_node=verbose))
        alert_transform(transformed.nodes)
        details["transform"] = {
            "ok": transformed.ok,
            "summary": transformed.summary(),
            "failed": [node.describe() for node in transformed.failed],
        }
    verified = None
    if summary.changed:
        from data_platform.settings import get_settings
        from data_platform.verify import verify, verify_lines

        on_run = [n.strip() for n in get_settings().verify_on_run.split(",") if n.strip()]
        verified = verify(sources=on_run)
        details["verify"] = verify_lines(verified)
        lines += details["verify"]
    late = [f"late: {table.line()}" for table in _alert_freshness(record.seconds)]
    lines += late
    details["late"] = late
    mismatched = verified is not None and verified.mismatched
    failed = (transformed is not None and not transformed.ok) or mismatched
    code = summary.exit_code or (1 if failed else 0)
    text = "\n".join(line for line in lines if line)
    record.finish(
        exit_code=code,
        counts=summary.counts(),
        summary=details,
        output=text,
        transform=None if transformed is None else "ok" if transformed.ok else "failed",
        failed_tests=0 if transformed is None else len(transformed.failed),
        verified=0 if verified is None else len(verified.results),
        mismatches=0 if verified is None else sum(v.verdict != "ok" for v in verified.results),
    )
    if as_json:
        # The sources by name, as ever; then the pass's own keys, never a source's name.
        text = json.dumps(
            {
                **details["sources"],
                "run": {"id": record.id, "exit_code": code, "seconds": round(record.seconds, 3)},
                **{k: v for k, v in details.items() if k != "sources"},
            }
        )
    return text, code, summary.changed


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
    found = _with_source_backlog(found, settings.freshness_behind_minutes)
    alert_freshness(found)
    alert_slow_pass(seconds, settings.run_expected_seconds)
    return [table for table in found if table.state in LATE]


def _with_source_backlog(found: list, behind_minutes: float) -> list:
    """`found` (Freshness) with the totesys backlog at the source (`batch.totesys.backlog`)
    where a table was extracted; a source that cannot be probed leaves them as they are
    (logged: its extraction reports the failure)."""
    from data_platform.batch.totesys.backlog import source_backlog
    from data_platform.errors import DataPlatformError

    try:
        backlog = {b.table: b for b in source_backlog()}
    except DataPlatformError as exc:
        log.warning("the totesys backlog at the source was not probed: %s", exc)
        return found
    return [
        table.with_source_backlog(
            backlog[table.table].rows, backlog[table.table].oldest_waiting_seconds, behind_minutes
        )
        if table.table in backlog
        else table
        for table in found
    ]
