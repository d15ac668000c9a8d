"""Whose fault a failed DMAP load is (`loads.faults`, the worker's one rule): the
database refusing the platform (permission denied, which a DMAP load once left ready
while a Qlik one errored) leaves the load ready and stops the pass with exit code 3; a
bad row errors the load."""

from __future__ import annotations

from tests.dmap.test_ingest import _gz_csv, _land, _row, onboarded  # noqa: F401
from tests.loads.roles import as_owner, run, status  # noqa: F401


def test_permission_denied_leaves_the_load_ready_and_a_bad_row_errors_it(
    onboarded,  # noqa: F811
    as_owner,  # noqa: F811
) -> None:
    key = _land("agg_daily_fareprod_20220516", _gz_csv([_row("2022-05-16", 10)]))
    as_owner("REVOKE INSERT ON cubic_dmap.agg_daily_fareprod FROM CURRENT_USER")
    stopped = run()
    assert stopped.exit_code == 3, stopped.output
    assert "permission denied for table agg_daily_fareprod (SQLSTATE 42501)" in stopped.stderr
    assert status(key) == ("ready", None)

    as_owner("GRANT INSERT ON cubic_dmap.agg_daily_fareprod TO CURRENT_USER")
    assert run().exit_code == 0 and status(key)[0] == "archived"

    bad = _land("agg_daily_fareprod_20220517", _gz_csv([_row("2022-05-17", "many")]))
    assert run().exit_code == 1
    state, error = status(bad)
    assert (
        state == "errored" and 'column count: invalid input syntax for type bigint: "many"' in error
    )
