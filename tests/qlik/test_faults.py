"""Whose fault a failed Qlik load is (`loads.faults`, the worker's one rule): the
database refusing the platform (permission denied, which a Qlik load once errored while a
DMAP one stayed ready) leaves the load ready and stops the pass with exit code 3; a bad
row errors the load."""

from __future__ import annotations

from tests.loads.roles import as_owner, run, status  # noqa: F401
from tests.qlik.conftest import QlikTable, seq

T = "2021-12-01 11:20:30"


def test_permission_denied_leaves_the_load_ready_and_a_bad_row_errors_it(
    sample: QlikTable,
    as_owner,  # noqa: F811
) -> None:
    assert run().exit_code == 0  # the full load
    key = sample.changes([(seq(1), "I", T, 5, "five", T)])
    target = "cubic_ods_qlik.test_sample"
    as_owner(f"REVOKE INSERT, UPDATE, DELETE ON {target} FROM CURRENT_USER")
    stopped = run()
    assert stopped.exit_code == 3, stopped.output
    assert "permission denied for table test_sample (SQLSTATE 42501)" in stopped.stderr
    assert status(key) == ("ready", None)

    as_owner(f"GRANT INSERT, UPDATE, DELETE ON {target} TO CURRENT_USER")
    assert run().exit_code == 0 and status(key)[0] == "archived"
    assert [r[0] for r in sample.rows()] == [1, 2, 5]

    bad = sample.changes([(seq(2), "I", T, "six", "bad id", T)], name="20211201-112233555")
    assert run().exit_code == 1
    state, error = status(bad)
    assert (
        state == "errored"
        and 'column SAMPLE_ID: invalid input syntax for type integer: "six"' in error
    )
