"""Landing: the platform putting a source's new files into the incoming zone itself (a
DMAP or pedestrian fetch, a totesys extraction, a Kafka topic consumed), one protocol for
every such source. ADR: doc/adr/0013-landing-as-one-protocol.md.

- A source that lands is a `Lander`: its `source` name, `every` (its schedule: the
  interval from its setting `<SOURCE>_LAND_EVERY`, or None when it is not set up for
  `data-platform run` to land it), `land()` (returns a `LandResult`: the files landed,
  the items it went through and those that failed, lines for run's summary, and its own
  result for its command to print) and `position` (a mark, in words, for the pages).
- `land(lander)` is the one place every landing goes through, by `data-platform run`
  (`land_due`), the source's own command, the demo and the web's run action: it records
  the landing in `landings` (started, ended, files, error) and publishes how it ended
  (`hooks.LandingEnded`; alerts listen: `land:<source>` when it failed as a whole,
  `land:<source>:<item>` for one item, resolved by the next landing that went through).
- `land_due(landers)` lands every source whose interval has passed since its last landing
  started (by a clock the caller may give); each failure is recorded and returned, the
  other sources still land.

Where a source resumes is its marks (`loads.marks`, table `landing_marks`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from data_platform.db.engine import get_engine
from data_platform.db.models import Landing, SourceName
from data_platform.errors import ConfigError, one_line
from data_platform.loads import hooks
from data_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class LandResult:
    """What one landing did. `summary`: one phrase for run's line ("2 dataset(s)
    fetched"); `files`: the incoming keys it put; `items`: what it went through (feeds,
    datasets, tables, topics); `failures`: the items that failed while the others went on,
    item -> one line; `notes`: lines for run's summary; `detail`: the source's own result
    (FetchResult, ExtractResult, ...), which its command prints."""

    summary: str
    files: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    detail: Any = None

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def passed(self) -> tuple[str, ...]:
        """The items it went through without failure."""
        return tuple(item for item in self.items if item not in self.failures)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (without `detail`, the source's own, which its command prints)."""
        return {
            "summary": self.summary,
            "files": list(self.files),
            "items": list(self.items),
            "failures": dict(self.failures),
        }


class Lander(Protocol):
    """A source that the platform lands itself (see the module's doc)."""

    @property
    def source(self) -> SourceName:
        """The source's name (source_tables.source, landing_marks.source)."""
        ...

    def every(self, settings: Settings) -> float | None:
        """Seconds between two landings by `data-platform run` (0: every run), or None
        when the source is not set up to be landed by it (its settings are unset)."""
        ...

    def land(self) -> LandResult:
        """Put the source's new files into incoming and move its marks after them. An
        item that fails is in the result's `failures` (the others go on); a failure of
        the whole landing (settings, the source unreachable) is raised."""
        ...

    def position(self, mark: dict[str, Any]) -> str:
        """One of the source's marks (`landing_marks.mark`), in words."""
        ...


def utcnow() -> datetime:
    """The landing clock's default: now, in UTC."""
    return datetime.now(UTC)


def land(lander: Lander, *, now: datetime | None = None) -> LandResult:
    """Land `lander`'s source, recorded and published (see the module's doc). `now`: when
    it started, by the caller's clock (default `utcnow()`); its end is that plus the time
    it took. The record is written when it ends: a landing killed midway leaves the last
    one's, and is due again.

    Returns the LandResult (failed items in it). Raises what failed the whole landing,
    after recording and publishing it; a ConfigError (the source is not set up, or the
    command was given what it cannot do: exit code 2) is raised as it is, neither
    recorded nor published, like a source `data-platform run` does not land."""
    source = lander.source
    started = now or utcnow()
    clock = time.monotonic()
    try:
        result = lander.land()
    except ConfigError:
        raise
    except Exception as exc:
        ended = started + timedelta(seconds=time.monotonic() - clock)
        reason = one_line(exc)[0]
        _record(source, started, ended, files=None, error=reason)
        hooks.publish(hooks.LandingEnded(source, error=reason))
        raise
    ended = started + timedelta(seconds=time.monotonic() - clock)
    error = "\n".join(f"{item}: {why}" for item, why in result.failures.items()) or None
    _record(source, started, ended, files=len(result.files), error=error)
    hooks.publish(hooks.LandingEnded(source, None, dict(result.failures), result.passed))
    log.info("landed: %s", result.summary, extra={"source": source})
    return result


def last_started(sources: list[SourceName]) -> dict[str, datetime]:
    """When the last landing of each of `sources` started (those never landed absent)."""
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(Landing.source, Landing.started_at).where(Landing.source.in_(sources))
        )
        return {source: started for source, started in rows}


def is_due(every: float, last: datetime | None, now: datetime) -> bool:
    """Is a landing due at `now`: never landed, or `every` seconds passed since `last`?"""
    return last is None or (now - last).total_seconds() >= every


def land_due(
    landers: list[Lander], *, settings: Settings | None = None, now: datetime | None = None
) -> dict[str, LandResult | Exception]:
    """Land, in order, each of `landers` that is set up (`every` is not None) and due at
    `now` (default `utcnow()`) by its interval since its last landing started, whoever ran
    it. Returns source -> its LandResult, or the exception that failed it (recorded and
    published by `land`); the sources not due or not set up are absent. A landing that
    fails does not stop the next."""
    settings = settings or get_settings()
    now = now or utcnow()
    last = last_started([lander.source for lander in landers])
    done: dict[str, LandResult | Exception] = {}
    for lander in landers:
        every = lander.every(settings)
        if every is None:
            continue
        if not is_due(every, last.get(lander.source), now):
            log.debug("landing not due (every %ss)", every, extra={"source": lander.source})
            continue
        try:
            done[lander.source] = land(lander, now=now)
        except Exception as exc:
            log.error("landing failed: %s", one_line(exc)[0], extra={"source": lander.source})
            done[lander.source] = exc
    return done


def _record(
    source: SourceName,
    started: datetime,
    ended: datetime,
    *,
    files: int | None,
    error: str | None,
) -> None:
    """The source's last landing is this one (`landings`); `succeeded_at` moves when it
    went through without a failure."""
    values: dict[str, object] = {
        "started_at": started,
        "ended_at": ended,
        "files": files,
        "error": error,
    }
    if error is None:
        values["succeeded_at"] = ended
    statement = insert(Landing).values(source=source, **values)
    with get_engine().begin() as conn:
        conn.execute(statement.on_conflict_do_update(index_elements=[Landing.source], set_=values))
