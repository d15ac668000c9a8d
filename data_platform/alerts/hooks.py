"""The alerts of the platform's failures that are not a single call: a load errored or a
landing ended (events of the load machinery, `data_platform.loads.hooks`, which this
module listens to once `register_alerts` ran at startup) and a pass of `data-platform
run`. Each is cleared when the next attempt succeeds, so a recurrence alerts again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from data_platform.alerts.notify import notify, resolve
from data_platform.loads import hooks


def alert_load(event: hooks.LoadErrored) -> None:
    """A load errored: alerted before it reaches `errored`, since only from there can it
    be retried or skipped (which resolves the alert, `loads.state.transition`), so the
    alert is always recorded before its resolution, never after it (where it would stay
    open and swallow the next one)."""
    notify("load", str(event.load_id), f"{event.table}: {event.message}", load_id=event.load_id)


def alert_landing(event: hooks.LandingEnded) -> None:
    """A landing ended. Fingerprints: `land:<source>` for the landing as a whole (it
    raised), `land:<source>:<item>` for one item (a feed, dataset, table or topic) that
    failed while the others went on. A landing that ran to its end resolves the source's
    whole-landing alert and the alerts of the items it went through; an item not tried
    this time (a command limited to some) keeps its alert."""
    whole = f"land:{event.source}"
    if event.error is not None:  # the subject names the cause, as a run's alert does
        notify("land", f"{event.source}: {event.error}", event.error, fingerprint=whole)
        return
    for item, why in event.failures.items():
        notify("land", f"{event.source}:{item}", why, fingerprint=f"{whole}:{item}")
    resolve(whole, below=False)
    resolve([f"{whole}:{item}" for item in event.passed])


def register_alerts() -> None:
    """Listen to the load machinery's events (a process's startup: the CLI, the web app);
    safe to call again."""
    hooks.register(hooks.LoadErrored, alert_load)
    hooks.register(hooks.LandingEnded, alert_landing)


# The fingerprint subject of a failure of the whole run, before any source ran (settings,
# the sources' code); any run that reaches its sources clears it.
WHOLE_RUN = "data-platform run"


def cause_class(exc: BaseException) -> str:
    """A short, stable name for the kind of failure `exc` is, the same from one attempt to
    the next (never its text, which holds times, ids and counts). Named after the innermost
    cause (`__cause__`, else `__context__`; a SQLAlchemy error's DBAPI error):
    `database connection` (libpq could not connect or log in), `database undefined_table`
    (the SQLSTATE's name), `storage SlowDown` (the S3 error code), `storage
    EndpointConnectionError`, `HTTP 503`, or else the exception's class (`JobRunError`)."""
    import psycopg2
    import requests
    from botocore.exceptions import BotoCoreError, ClientError
    from psycopg2 import errorcodes
    from sqlalchemy.exc import DBAPIError

    root, seen = exc, {id(exc)}
    while True:
        if isinstance(root, DBAPIError) and root.orig is not None:
            inner: BaseException | None = root.orig
        else:  # `raise ... from`, else the exception being handled when it was raised
            inner = root.__cause__ or (None if root.__suppress_context__ else root.__context__)
        if inner is None or id(inner) in seen:
            break
        root = inner
        seen.add(id(root))
    if isinstance(root, psycopg2.Error):
        if not root.pgcode:  # libpq's own: the server could not be reached or logged into
            return "database connection"
        return f"database {(errorcodes.lookup(root.pgcode) or root.pgcode).lower()}"
    if isinstance(root, ClientError):
        error = root.response.get("Error", {})
        status = root.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"storage {error.get('Code') or status or 'error'}"
    if isinstance(root, BotoCoreError):
        return f"storage {type(root).__name__}"
    if isinstance(root, requests.HTTPError) and root.response is not None:
        return f"HTTP {root.response.status_code}"
    return type(root).__name__


def alert_run(stopped: Mapping[str, BaseException], passed: Iterable[str]) -> None:
    """After a pass of `data-platform run`: alert on each source that `stopped` (name ->
    its exception), fingerprinted `run:<source>:<cause class>` so that a second source
    stopping while the first is down alerts too, and a source's new kind of failure as
    well; resolve every run alert of each source that `passed` (its scan and ingest
    finished), and the whole-run alert."""
    from data_platform.errors import one_line

    for source, exc in stopped.items():
        cause = cause_class(exc)
        notify(
            "run",
            f"{source}: {one_line(exc)[0]}",
            f"{source} stopped ({cause}):\n{one_line(exc)[0]}",
            fingerprint=f"run:{source}:{cause}",
        )
    resolve([f"run:{WHOLE_RUN}", *(f"run:{source}" for source in passed)])


def alert_whole_run(exc: BaseException) -> None:
    """A run that failed before or outside its sources (no source is to blame)."""
    from data_platform.errors import one_line

    notify("run", WHOLE_RUN, one_line(exc)[0])


class BuiltNode(Protocol):
    """A model or data test of a dbt build as its alert needs it. The transformation's
    `NodeResult` is one: alerts and the transformation are peers, neither imports the
    other, and the commands above both (`transform`, `run`) hand the one to the other."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def failed(self) -> bool: ...

    def describe(self) -> str: ...


def alert_transform(nodes: Iterable[BuiltNode]) -> None:
    """After a transformation: alert on each failed node of its build (`nodes`, e.g.
    `TransformResult.nodes`), fingerprinted `transform:dbt <kind> <name>`; clear the
    alerts of the nodes that passed."""
    passed = []
    for node in nodes:
        subject = f"dbt {node.kind} {node.name}"
        if node.failed:
            notify("transform", subject, node.describe())
        else:
            passed.append(f"transform:{subject}")
    resolve(passed)  # one statement for the hundreds of nodes that passed
