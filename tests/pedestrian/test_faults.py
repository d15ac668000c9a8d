"""Whose fault a failed pedestrian load is (`loads.faults`, the worker's one rule): the
database refusing the platform (permission denied) leaves the load ready and stops the
pass with exit code 3; a bad row errors the load."""

from __future__ import annotations

from datetime import date

from tests.loads.roles import as_owner, run, status  # noqa: F401
from tests.pedestrian.test_load import _count, _counts_file


def test_permission_denied_leaves_the_load_ready_and_a_bad_row_errors_it(as_owner) -> None:  # noqa: F811
    key = _counts_file(date(2026, 11, 1), date(2026, 11, 2), [_count(1, "2026-11-01", 0, 10)])
    as_owner("REVOKE INSERT ON pedestrian.hourly_counts FROM CURRENT_USER")
    stopped = run()
    assert stopped.exit_code == 3, stopped.output
    assert "permission denied for table hourly_counts (SQLSTATE 42501)" in stopped.stderr
    assert status(key) == ("ready", None)

    as_owner("GRANT INSERT ON pedestrian.hourly_counts TO CURRENT_USER")
    assert run().exit_code == 0 and status(key)[0] == "archived"

    bad = _counts_file(
        date(2026, 11, 1),
        date(2026, 11, 2),
        [_count(1, "2026-11-01", 0, 11).replace(";11;S1", ";many;S1")],
        minutes=5,
    )
    assert run().exit_code == 1
    state, error = status(bad)
    assert state == "errored" and "line 2, column pedestriancount: invalid input syntax" in error
