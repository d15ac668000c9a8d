"""Every pass of `data-platform run` recorded in `runs` (revision 0021): once from the
CLI, each `--watch` pass, a table's Run from the operations page.

`begin` records the pass as `running` and starts keeping its log lines (INFO and up, of
the thread that runs it; the first LOG_LINES); `Pass.finish` records how it ended, with
its counts, what it printed and its log, secrets scrubbed (`alerts.scrub`). A pass killed
before it finished stays `running` with no end: the page shows it so. Runs older than
RUNS_KEEP_DAYS go when a new one begins.

Recording never stops a pass: when the database cannot take the record (it is down, or
not migrated to 0021), the pass runs unrecorded and says so in the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from data_platform.alerts.scrub import scrub, secrets
from data_platform.db.engine import get_engine
from data_platform.db.models import Run
from data_platform.errors import one_line
from data_platform.log import TextFormatter
from data_platform.settings import get_settings

log = logging.getLogger(__name__)

LOG_LINES = 1000  # log lines kept per pass
TRIGGERS = ("cli", "watch", "web")
# The counts a pass records (columns of `runs`), from `RunSummary.counts()`.
COUNTS = ("landed", "recorded", "archived", "errored", "rows", "dead_letters")


class _Capture(logging.Handler):
    """The log lines of one thread, as the CLI's text format writes them."""

    def __init__(self, thread: int) -> None:
        super().__init__(logging.INFO)
        self.thread = thread
        self.lines: list[str] = []
        self.dropped = 0
        self.setFormatter(TextFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        if len(self.lines) >= LOG_LINES:
            self.dropped += 1
            return
        self.lines.append(self.format(record))


@dataclass
class Pass:
    """One pass being recorded (`begin`); `id` None when it could not be."""

    id: int | None
    started: float = field(default_factory=time.monotonic)
    capture: _Capture | None = None

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def finish(
        self,
        *,
        exit_code: int,
        counts: Mapping[str, int] | None = None,
        summary: dict[str, Any] | None = None,
        output: str = "",
        transform: str | None = None,
        failed_tests: int = 0,
        verified: int = 0,
        mismatches: int = 0,
        error: BaseException | None = None,
    ) -> None:
        """Record how the pass ended: `exit_code` (what `run` exits with), its counts
        (`COUNTS`), `summary` (what each source did), what it printed, the dbt build
        (`transform`: ok, failed or None) and the verifications after it. `error`: what
        stopped it (status `stopped`); else status `ok` for exit 0, `failed` otherwise."""
        if self.capture is not None:
            logging.getLogger("data_platform").removeHandler(self.capture)
        if self.id is None:
            return
        known = secrets(get_settings())
        lines = list(self.capture.lines) if self.capture else []
        if self.capture and self.capture.dropped:
            lines.append(f"... {self.capture.dropped} more line(s) not kept")
        if error is not None:
            output = "\n".join(filter(None, [output, f"Error: {one_line(error)[0]}"]))
        values = {
            "finished_at": func.now(),
            "seconds": self.seconds,
            "status": "stopped" if error is not None else "ok" if exit_code == 0 else "failed",
            "exit_code": exit_code,
            **{name: int((counts or {}).get(name, 0)) for name in COUNTS},
            "transform": transform,
            "failed_tests": failed_tests,
            "verified": verified,
            "mismatches": mismatches,
            "summary": summary or {},
            "output": scrub(output, known),
            "log": scrub("\n".join(lines), known),
        }
        try:
            with get_engine().begin() as conn:
                conn.execute(update(Run).where(Run.id == self.id).values(**values))
        except SQLAlchemyError as exc:
            log.warning("the end of run %s was not recorded: %s", self.id, one_line(exc)[0])


def begin(trigger: str, *, actor: str | None = None, subject: str | None = None) -> Pass:
    """Record a pass as `running` (`trigger`: one of TRIGGERS; `actor` and `subject`: who
    ran which table from the page) and keep its thread's log lines until it finishes.
    Raises ValueError for another trigger."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger {trigger!r}: one of {', '.join(TRIGGERS)}")
    keep_days = get_settings().runs_keep_days
    try:
        with get_engine().begin() as conn:
            old = func.now() - func.make_interval(0, 0, 0, keep_days)
            conn.execute(delete(Run).where(Run.started_at < old))
            run_id = conn.scalar(
                insert(Run).values(trigger=trigger, actor=actor, subject=subject).returning(Run.id)
            )
    except SQLAlchemyError as exc:
        log.warning("this pass is not recorded in runs: %s", one_line(exc)[0])
        return Pass(None)
    capture = _Capture(threading.get_ident())
    logging.getLogger("data_platform").addHandler(capture)
    return Pass(run_id, capture=capture)


def last_seconds(conn) -> dict[str, float]:
    """The duration of the last finished pass of each trigger, seconds."""
    newest = (
        select(Run.trigger, func.max(Run.id).label("id"))
        .where(Run.finished_at.is_not(None))
        .group_by(Run.trigger)
        .subquery()
    )
    rows = conn.execute(select(Run.trigger, Run.seconds).join(newest, newest.c.id == Run.id))
    return {trigger: seconds for trigger, seconds in rows}
