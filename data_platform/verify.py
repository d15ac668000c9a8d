"""`data-platform verify`: every table checked against its source, the results kept and
alerted (issue 25).

What each source's check compares (doc/operations.md#verify):

- Qlik (`batch/cubic_qlik/drift.py`): a table whose change files wrote rows, against
  the next full load of the source, once every part of it is applied: keys missing,
  extra or different.
- DMAP (`batch/cubic_dmap/verify.py`): each dataset's rows against its file's.
- Kafka (`batch/cubic_kafka/verify.py`): every offset the consumer group committed is a
  row or a dead letter.
- pedestrian (`batch/melbourne_pedestrian/verify.py`): records and total per day against
  the portal's own aggregates.
- totesys (`batch/totesys/verify.py`): each table against the source database, count
  and hash per key range, the ranges that differ narrowed to their keys.

Each result is stored (`verifications`), shown by `status` and the operations page, and
alerted when it is a mismatch (fingerprint `verify:<source>:<check>:<table>`); the next
`ok` of the same check resolves the alert. `data-platform run` verifies the sources of
VERIFY_ON_RUN after each pass that changed something.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from data_platform.alerts import notify, resolve
from data_platform.batch.cubic_dmap.verify import verify_dmap
from data_platform.batch.cubic_kafka.verify import verify_kafka
from data_platform.batch.cubic_qlik.drift import verify_qlik
from data_platform.batch.melbourne_pedestrian.verify import verify_pedestrian
from data_platform.batch.totesys.verify import verify_totesys
from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.errors import one_line
from data_platform.loads import verify as verifications
from data_platform.loads.verify import NotCompared, Verification

log = logging.getLogger(__name__)

# source -> its check: (engine, table or None) -> the verifications it recorded.
CHECKS: dict[str, Callable[[Engine, str | None], list[Verification]]] = {
    "cubic_qlik": verify_qlik,
    "cubic_dmap": verify_dmap,
    "totesys": verify_totesys,
    "cubic_kafka": verify_kafka,
    "melbourne_pedestrian": verify_pedestrian,
}


@dataclass
class VerifyRun:
    """What a `verify` ran (`results`, as recorded) and the sources whose check could not
    run (`failures`: source -> the exception: a source database or portal unreachable)."""

    results: list[Verification] = field(default_factory=list)
    failures: dict[str, Exception] = field(default_factory=dict)
    # source -> why its settings do not let it compare (`NotCompared`): not a failure.
    not_compared: dict[str, str] = field(default_factory=dict)

    @property
    def mismatched(self) -> bool:
        return any(v.verdict == "mismatch" for v in self.results)


def verify(
    source: str | None = None, table: str | None = None, *, sources: Iterable[str] | None = None
) -> VerifyRun:
    """Run the checks of every source (or `source`'s, or those of `sources`; only `table`,
    as `source_tables.name` holds it), record them, then alert each check whose latest
    result is a mismatch and resolve each whose latest is ok. A source whose check cannot
    run is logged and kept in `failures`; the others still run.

    Raises ValueError for a source without checks."""
    chosen = set(CHECKS) if sources is None else set(sources)
    if source is not None:
        chosen = {source}
    unknown = sorted(chosen - set(CHECKS))
    if unknown:
        known = ", ".join(CHECKS)
        raise ValueError(f"no checks for source {unknown[0]!r}; sources with checks: {known}")
    engine = get_engine()
    ran = VerifyRun()
    for name, check in CHECKS.items():
        if name in chosen:
            try:
                ran.results.extend(check(engine, table))
            except NotCompared as exc:
                log.warning("not verified: %s", exc, extra={"source": name})
                ran.not_compared[name] = str(exc)
            except Exception as exc:  # one source's check must not stop the others
                log.warning("could not verify: %s", exc, extra={"source": name})
                ran.failures[name] = exc
    for verification in ran.results:
        log.info(verification.line(), extra={"source": verification.source})
    alert_latest(engine)
    return ran


def latest(source: str | None = None, engine: Engine | None = None) -> list[Verification]:
    """The newest result of each check (of `source` when given)."""
    with (engine or get_engine()).connect() as conn, dbapi_cursor(conn) as cur:
        return verifications.latest(cur, source)


def alert_latest(engine: Engine | None = None) -> None:
    """Alert every check whose newest result is a mismatch (once: a repeat is
    suppressed until it clears), resolve every one whose newest is ok."""
    for verification in latest(engine=engine):
        fingerprint = f"verify:{verification.fingerprint_subject}"
        if verification.verdict == "ok":
            resolve(fingerprint)
            continue
        keys = ", ".join(f"{k['kind']} {k['key']}" for k in verification.keys[:10])
        more = verification.differing - min(10, len(verification.keys))
        notify(
            "verify",
            verification.fingerprint_subject,
            f"{verification.line()}\nfirst keys: {keys}"
            + (f" and {more} more" if more > 0 else ""),
            fingerprint=fingerprint,
        )


def verify_lines(ran: VerifyRun) -> list[str]:
    """`run`'s summary of the checks: one line per source (tables verified, mismatches),
    each mismatch with its first keys, each source its settings do not let compare
    (`not verified`) and each source whose check could not run."""
    lines = []
    results = ran.results
    for source in sorted({v.source for v in results}):
        mine = [v for v in results if v.source == source]
        bad = [v for v in mine if v.verdict == "mismatch"]
        lines.append(f"{source}: verified {len(mine)} table(s), {len(bad)} mismatch(es)")
        for verification in bad:
            lines.append(f"  {verification.line()}")
            lines.extend(f"    {k['kind']:<9} {k['key']}" for k in verification.keys[:5])
    for source, reason in sorted(ran.not_compared.items()):
        lines.append(f"{source}: not verified: {reason}")
    for source, exc in sorted(ran.failures.items()):
        lines.append(f"{source}: could not verify: {one_line(exc)[0]}")
    return lines
