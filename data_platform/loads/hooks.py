"""Events the load machinery publishes, and who listens to them.

`loads/` is the bottom of the platform: it calls nothing above it. What a layer above
wants to hear (alerts: a load errored, a landing failed or went through) it registers
here at startup (`data_platform.alerts.register_alerts`, called by the CLI and the web
app); the worker and the landing `publish` their events and never know who listens.

    from data_platform.loads import hooks

    hooks.register(hooks.LoadErrored, lambda event: print(event.message))
    hooks.publish(hooks.LoadErrored(load_id=7, table="t", message="bad"))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from data_platform.db.models import SourceName

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadErrored:
    """A load was errored (its file's fault), before it reaches `errored`: `message`
    names file, line, column, table and load."""

    load_id: int
    table: str
    message: str


@dataclass(frozen=True)
class LandingEnded:
    """A landing of `source` ended (`data_platform.loads.landing.land`): `error` is the
    one line of a landing that failed as a whole (None when it ran to its end); `failures`
    the items (feeds, datasets, tables, topics) that failed while the others went on,
    item -> one line; `passed` the items it went through without failure."""

    source: SourceName
    error: str | None = None
    failures: dict[str, str] = field(default_factory=dict)
    passed: tuple[str, ...] = ()


Event = LoadErrored | LandingEnded
E = TypeVar("E", LoadErrored, LandingEnded)

_listeners: dict[type, list[Callable[[Any], None]]] = {}


def register(kind: type[E], listener: Callable[[E], None]) -> None:
    """Call `listener` with every event of `kind` published from now on. Registering
    the same listener again does nothing (startup may run more than once in a process)."""
    listeners = _listeners.setdefault(kind, [])
    if listener not in listeners:
        listeners.append(listener)


def unregister(kind: type[E], listener: Callable[[E], None]) -> None:
    """Stop calling `listener` (tests); one not registered is ignored."""
    listeners = _listeners.get(kind, [])
    if listener in listeners:
        listeners.remove(listener)


def publish(event: Event) -> None:
    """Hand `event` to every listener of its kind, in registration order. A listener
    that raises is logged and the others still run: what is published has happened, and
    a listener's failure must not change its outcome (a load errored stays errored)."""
    for listener in list(_listeners.get(type(event), ())):
        try:
            listener(event)
        except Exception:
            log.exception("a listener of %s failed", type(event).__name__)
