"""What an operator may do from the page, through the CLI's own library functions:

- retry an errored load: `data_platform.loads.retry.retry_load`, with the load's
  source's companions (as `data-platform retry` does), recorded as `web:<who>`;
- skip a ready or errored load for good, with a reason: `loads.history.skip_load` (as
  `data-platform loads skip`), recorded as `web:<who>` with the reason;
- run a table's pass: `data-platform run`'s own entry (`data_platform.run.run_once`) for
  the table's source alone: its landing when due, its scan, and the ingest of that table
  alone (as `data-platform cubic-qlik ingest --table`); its lines are `run`'s, and it is
  recorded in `runs` like every pass (trigger `web`, who ran it, the table).

Every action is logged with who did it and from where, done or refused.
"""

from __future__ import annotations

import logging

from data_platform.errors import DataPlatformError
from data_platform.web.auth import Identity
from data_platform.web.model import ActionResult

log = logging.getLogger(__name__)


def retry(load_id: int, who: Identity, client: str) -> ActionResult:
    """errored -> ready (`retry_load`); raises DataPlatformError as the CLI would."""
    from sqlalchemy import select

    from data_platform.db.engine import get_engine
    from data_platform.db.models import Load
    from data_platform.loads.retry import retry_load
    from data_platform.run import all_sources
    from data_platform.web.queries import NotFound

    extra = {"load_id": load_id, "actor": who.actor, "client": client}
    with get_engine().connect() as conn:
        if conn.scalar(select(Load.id).where(Load.id == load_id)) is None:
            raise NotFound(f"no load {load_id}")
    try:
        how = retry_load(load_id, actor=who.actor, sources=all_sources())
    except DataPlatformError as exc:
        log.warning("%s could not retry load %s: %s", who.actor, load_id, exc, extra=extra)
        raise
    log.info("%s retried load %s (%s)", who.actor, load_id, how, extra=extra)
    return ActionResult(
        ok=True,
        action="retry",
        subject=f"load {load_id}",
        actor=who.actor,
        lines=[f"load {load_id} is ready again ({how})"],
    )


def skip(load_id: int, reason: str, who: Identity, client: str) -> ActionResult:
    """ready or errored -> skipped, never applied (`loads.history.skip_load`, as `data-platform
    loads skip`), with `reason`; raises DataPlatformError as the CLI would (no reason,
    another state), NotFound for no such load."""
    from sqlalchemy import select

    from data_platform.db.engine import get_engine
    from data_platform.db.models import Load
    from data_platform.loads.history import skip_load
    from data_platform.run import all_sources
    from data_platform.web.queries import NotFound

    extra = {"load_id": load_id, "actor": who.actor, "client": client}
    with get_engine().connect() as conn:
        if conn.scalar(select(Load.id).where(Load.id == load_id)) is None:
            raise NotFound(f"no load {load_id}")
    try:
        done = skip_load(load_id, reason, actor=who.actor, sources=all_sources())
    except DataPlatformError as exc:
        log.warning("%s could not skip load %s: %s", who.actor, load_id, exc, extra=extra)
        raise
    log.info("%s skipped load %s: %s", who.actor, load_id, reason.strip(), extra=extra)
    return ActionResult(
        ok=True, action="skip", subject=f"load {load_id}", actor=who.actor, lines=[done]
    )


def run_table(name: str, who: Identity, client: str) -> ActionResult:
    """Land the table's source when due, scan it and ingest that table (`run_once`).
    Raises DataPlatformError (an unknown table: NotFound) or what the pass raised (the
    table stopped)."""
    from data_platform import runs
    from data_platform.db.engine import get_engine
    from data_platform.errors import exit_code_for
    from data_platform.run import all_sources, run_once
    from data_platform.web.queries import find_table

    with get_engine().connect() as conn:
        table = find_table(conn, name)
    extra = {"table": table.name, "actor": who.actor, "client": client}
    sources = {source.name: source for source in all_sources()}
    source = sources.get(table.source)
    if source is None:
        raise DataPlatformError(
            f"{table.name} belongs to source {table.source!r}, which this platform does not run"
        )
    record = runs.begin("web", actor=who.actor, subject=table.name)
    log.info("%s runs the pass of %s", who.actor, table.name, extra=extra)
    try:
        summary = run_once([source], tables=[table.name])
    except Exception as exc:
        log.error("%s: the pass of %s stopped: %s", who.actor, table.name, exc, extra=extra)
        ran_before = getattr(exc, "run_summary", None)
        record.finish(
            exit_code=exit_code_for(exc),
            counts=ran_before.counts() if ran_before is not None else None,
            error=exc,
        )
        raise
    ran = summary.source(source.name)
    result = ran.ingest
    lines = ran.render_lines()
    lines += [f"  {busy}: another worker is on it" for busy in result.busy_tables]
    ok = not result.errored and not summary.landing_failures
    record.finish(
        exit_code=summary.exit_code,
        counts=summary.counts(),
        summary={"sources": summary.to_dict()},
        output="\n".join(lines),
    )
    log.info(
        "%s ran the pass of %s: archived %s, errored %s, %s row(s)",
        who.actor,
        table.name,
        result.archived,
        result.errored,
        result.rows,
        extra=extra,
    )
    return ActionResult(
        ok=ok,
        action="run",
        subject=table.name,
        actor=who.actor,
        lines=lines,
    )
