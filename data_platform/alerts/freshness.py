"""Alerts of tables falling behind or going stale, and of a pass that runs too long
(issue 25): each alerted once when it starts, resolved when it ends, so a recurrence
alerts again.

Fingerprints: `fresh:<table>:behind` and `fresh:<table>:stale` (a table going from behind
to stale is alerted again, as stale, and its `behind` alert resolved); `run:slow` for a
pass longer than RUN_EXPECTED_SECONDS.
"""

from __future__ import annotations

from collections.abc import Iterable

from data_platform.alerts.notify import notify, resolve
from data_platform.loads.freshness import Freshness

LATE = ("behind", "stale")


def alert_freshness(found: Iterable[Freshness]) -> None:
    """Alert each table that is behind or stale (`loads.freshness`), resolve the alerts
    of every table that is neither."""
    cleared = []
    for table in found:
        base = f"fresh:{table.table}"
        if table.state in LATE:
            other = "stale" if table.state == "behind" else "behind"
            cleared.append(f"{base}:{other}")
            notify("fresh", f"{table.table} {table.state}", table.line(),
                   fingerprint=f"{base}:{table.state}")  # fmt: skip
        else:
            cleared.extend(f"{base}:{state}" for state in LATE)
    if cleared:
        resolve(cleared)


def alert_slow_pass(seconds: float, expected: float) -> None:
    """A `run` pass took `seconds`: alerted when over `expected` (0: no expectation),
    resolved otherwise."""
    if expected and seconds > expected:
        notify(
            "run",
            "slow",
            f"a run pass took {seconds:.0f} s, over its expectation of {expected:g} s "
            "(RUN_EXPECTED_SECONDS)",
            fingerprint="run:slow",
        )
    else:
        resolve("run:slow")
