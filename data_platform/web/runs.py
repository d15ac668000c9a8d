"""The runs list and a run's page: every pass of `data-platform run` (`runs`, revision
0021; written by `data_platform.runs`)."""

from __future__ import annotations

from sqlalchemy import select

from data_platform.db.engine import get_engine
from data_platform.db.models import Run
from data_platform.web.model import RunPage, RunsPage, RunView
from data_platform.web.queries import NotFound

PAGE = 50  # passes a page of the list shows
_VIEW = list(RunView.model_fields)
RUNS = Run.__table__


def runs_page(before: int | None = None, limit: int = PAGE) -> RunsPage:
    """The newest `limit` passes (those older than id `before`), newest first."""
    query = select(RUNS).order_by(RUNS.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(RUNS.c.id < before)
    with get_engine().connect() as conn:
        rows = list(conn.execute(query).mappings())
    found = [RunView.model_validate({name: row[name] for name in _VIEW}) for row in rows[:limit]]
    older = found[-1].id if len(rows) > limit else None
    return RunsPage(runs=found, older=older)


def run_page(run_id: int) -> RunPage:
    """One pass, whole: its counts, what it printed and its log. Raises NotFound."""
    with get_engine().connect() as conn:
        row = conn.execute(select(RUNS).where(RUNS.c.id == run_id)).mappings().first()
    if row is None:
        raise NotFound(f"no run {run_id}")
    return RunPage.model_validate(dict(row))
