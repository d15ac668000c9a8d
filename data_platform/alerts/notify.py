"""One alert per failure: recorded in alert_events first (the fingerprint of an open alert
is unique), sent only when the row is new, and `resolve`d when the failure clears (the row
stays, with its `resolved_at`) so that a recurrence is a new row and alerts again. A load's
alert is resolved by the load's own transitions (`data_platform.loads.state`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from data_platform.alerts.channels import build, configured
from data_platform.alerts.model import Alert, AlertKind, AlertOutcome, Delivery
from data_platform.alerts.scrub import scrub, secrets
from data_platform.db.engine import get_engine
from data_platform.db.models import AlertEvent
from data_platform.errors import DataPlatformError
from data_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

# A mapped class's __table__ is its Table (SQLAlchemy types the attribute FromClause).
_events = cast(sa.Table, AlertEvent.__table__)
# The rows `on conflict` meets: the open alerts (revision 0011's partial unique index).
_OPEN = _events.c.resolved_at.is_(None)
# What "only logged" is recorded as in alert_events.channels.
LOGGED = "log"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def fingerprint_for(kind: AlertKind | str, subject: str, settings: Settings | None = None) -> str:
    """The default fingerprint of a failure: `<kind>:<subject>` (subject scrubbed, on one
    line), e.g. `load:42`, `land:totesys:sales_order`, `transform:pedestrian:test_x`.

    Not a digest of the message: the same failure's text changes between attempts (times,
    counts, attempt numbers), and the subject is what names it."""
    known = secrets(settings or get_settings())
    return f"{AlertKind(kind)}:{_one_line(scrub(subject, known))}"


def notify(
    kind: AlertKind | str,
    subject: str,
    message: str,
    *,
    fingerprint: str | None = None,
    load_id: int | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> AlertOutcome:
    """Alert on a failure once: the first call for a fingerprint sends to every channel of
    ALERT_CHANNELS (or only logs, when there is none); later calls are suppressed until
    `resolve` clears it. Subject and message are scrubbed of secrets first. `load_id`: the
    load a load alert is about; its transitions out of the failure resolve the alert.

    Never raises for a channel or the database: a failed channel is logged on one line
    and the others still send; an unreachable database means the alert is sent without
    being recorded (a repeat beats silence). Raises ValueError for an unknown kind."""
    settings = settings or get_settings()
    kind = AlertKind(kind)
    known = secrets(settings)
    subject = _one_line(scrub(subject, known))
    message = scrub(message, known)
    fp = _one_line(scrub(fingerprint, known)) if fingerprint else f"{kind}:{subject}"
    alert = Alert(settings.alert_environment, kind, subject, message, datetime.now(UTC), fp)
    names = configured(settings)
    extra = {"alert": fp, "kind": str(kind)}

    try:
        engine = engine or get_engine()
        new = recorded = _record(engine, alert, names, load_id)
    except (SQLAlchemyError, DataPlatformError) as exc:
        log.warning("alert not recorded, sent anyway: %s", _reason(exc, known), extra=extra)
        engine, new, recorded = None, True, False
    if not new:
        log.info("alert suppressed, already sent: %s", alert.title, extra=extra)
        return AlertOutcome(
            fp, new=False, recorded=True, channels=dict.fromkeys(names, Delivery.SUPPRESSED)
        )

    log.error("%s: %s", alert.title, _first_line(message), extra=extra)
    channels: dict[str, Delivery] = {}
    for name in names:
        try:
            build(name, settings).send(alert)
        except Exception as exc:  # one channel's failure must not stop the others
            log.warning("alert channel %s failed: %s", name, _reason(exc, known), extra=extra)
            channels[name] = Delivery.FAILED
        else:
            channels[name] = Delivery.SENT

    if engine is not None and recorded:
        recorded = _settle(engine, fp, channels, known, extra)
    return AlertOutcome(fp, new=True, recorded=recorded, channels=channels)


def resolve(
    fingerprint: str | Sequence[str],
    *,
    below: bool = True,
    settings: Settings | None = None,
    engine: Engine | None = None,
) -> int:
    """The failure named `fingerprint` has cleared: its open alert is resolved, and so is
    every open one below it (`<fingerprint>:...`) unless `below` is False, so that a
    recurrence alerts again. `resolve("load:42")` clears load 42 (not load 420);
    `resolve("run:totesys")` every run-level cause of that source; `resolve("land:totesys",
    below=False)` the failure of the whole landing, not its tables'. Several fingerprints
    clear in one statement. Returns how many alerts were resolved."""
    names = [fingerprint] if isinstance(fingerprint, str) else list(fingerprint)
    if not names:
        return 0
    known = secrets(settings or get_settings())
    fps = [_one_line(scrub(name, known)) for name in names]
    column = _events.c.fingerprint
    statement = (
        sa.update(_events)
        .where(
            _OPEN,
            sa.or_(
                column.in_(fps),
                *(column.startswith(fp + ":", autoescape=True) for fp in fps if below),
            ),
        )
        .values(resolved_at=sa.func.now())
    )
    with (engine or get_engine()).begin() as conn:
        cleared = conn.execute(statement).rowcount
    if cleared:
        log.info("alert resolved: %d cleared", cleared, extra={"alert": ", ".join(fps)})
    return cleared


def _record(engine: Engine, alert: Alert, names: list[str], load_id: int | None) -> bool:
    """Insert the alert's row; True when it is new (no open alert had its fingerprint)."""
    statement = (
        insert(_events)
        .values(
            fingerprint=alert.fingerprint,
            kind=str(alert.kind),
            subject=alert.subject,
            message=alert.text,
            channels=",".join(names) or LOGGED,
            load_id=load_id,
        )
        .on_conflict_do_nothing(index_elements=["fingerprint"], index_where=_OPEN)
        .returning(_events.c.id)
    )
    with engine.begin() as conn:
        return conn.execute(statement).first() is not None


def _settle(
    engine: Engine, fp: str, channels: dict[str, Delivery], known: tuple[str, ...], extra: dict
) -> bool:
    """Write where the alert went; when every channel failed, delete the row instead, so
    that the next occurrence tries again. Returns whether the row stays."""
    keep = not channels or Delivery.SENT in channels.values()
    where = sa.and_(_events.c.fingerprint == fp, _OPEN)
    statement: sa.Update | sa.Delete
    if keep:
        shown = ",".join(f"{name}={d}" for name, d in channels.items()) or LOGGED
        statement = sa.update(_events).where(where).values(channels=shown)
    else:
        statement = sa.delete(_events).where(where)
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    except SQLAlchemyError as exc:
        log.warning("alert outcome not recorded: %s", _reason(exc, known), extra=extra)
    return keep


def _reason(exc: BaseException, known: tuple[str, ...]) -> str:
    """One line about `exc`, scrubbed."""
    if isinstance(exc, SQLAlchemyError) and getattr(exc, "orig", None) is not None:
        text = str(exc.orig)  # type: ignore[attr-defined]
    else:
        text = str(exc)
    line = _first_line(scrub(text, known))
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
