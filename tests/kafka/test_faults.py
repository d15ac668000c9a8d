"""Whose fault a failed Kafka load is (`loads.faults`, the worker's one rule): the
database refusing the platform (permission denied) leaves the load ready and stops the
pass with exit code 3; a broken file errors the load (a bad record in a good file is a
dead letter, the rest of the file loads: `test_load.py`)."""

from __future__ import annotations

import io

from data_platform.storage import get_zone
from tests.kafka.test_load import TOPIC, _land, _tap
from tests.loads.roles import as_owner, run, status  # noqa: F401


def test_permission_denied_leaves_the_load_ready_and_a_broken_file_errors_it(as_owner) -> None:  # noqa: F811
    key = _land(0, 0, [_tap(0), _tap(1)])
    as_owner("REVOKE INSERT ON cubic_kafka.taps FROM CURRENT_USER")
    stopped = run()
    assert stopped.exit_code == 3, stopped.output
    assert "permission denied for table taps (SQLSTATE 42501)" in stopped.stderr
    assert status(key) == ("ready", None)

    as_owner("GRANT INSERT ON cubic_kafka.taps TO CURRENT_USER")
    assert run().exit_code == 0 and status(key)[0] == "archived"

    bad = f"cubic/kafka/{TOPIC}/partition=0/offsets={2:020d}-{3:020d}.jsonl.gz"
    get_zone("incoming").put(bad, io.BytesIO(b"not gzip at all"))
    assert run().exit_code == 1
    state, error = status(bad)
    assert state == "errored" and "gzip" in error.lower()
