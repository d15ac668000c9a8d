"""Whose fault a failed totesys load is (`loads.faults`, the worker's one rule): the
database refusing the platform (permission denied) leaves the load ready and stops the
pass with exit code 3; a bad row errors the load."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.extract import PREFIX, schema_of
from data_platform.storage import get_zone
from tests.loads.roles import as_owner, run, status  # noqa: F401


def _currency_file(stamp: str, currency_id: int, schema: pa.Schema | None = None) -> str:
    """A pass of the currency table holding one row, as an extraction writes it."""
    row = {
        "currency_id": currency_id,
        "currency_code": "GBP",
        "created_at": datetime(2026, 11, 1, 9, 0),
        "last_updated": datetime(2026, 11, 1, 9, 0),
        "dp__extracted_at": datetime(2026, 12, 1, tzinfo=UTC),
        "dp__deleted": False,
    }
    body = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist([row], schema=schema or schema_of(T.BY_NAME["currency"])), body
    )
    key = f"{PREFIX}currency/extracted={stamp}.parquet"
    get_zone("incoming").put(key, io.BytesIO(body.getvalue()))
    return key


def test_permission_denied_leaves_the_load_ready_and_a_bad_row_errors_it(as_owner) -> None:  # noqa: F811
    key = _currency_file("20261201T000000.000000Z", 1)
    as_owner("REVOKE INSERT ON totesys_history.currency FROM CURRENT_USER")
    stopped = run()
    assert stopped.exit_code == 3, stopped.output
    assert "permission denied for table currency (SQLSTATE 42501)" in stopped.stderr
    assert status(key) == ("ready", None)

    as_owner("GRANT INSERT ON totesys_history.currency TO CURRENT_USER")
    assert run().exit_code == 0 and status(key)[0] == "archived"

    schema = schema_of(T.BY_NAME["currency"])
    wide = schema.set(schema.get_field_index("currency_id"), pa.field("currency_id", pa.int64()))
    bad = _currency_file("20261202T000000.000000Z", 3_000_000_000, wide)
    assert run().exit_code == 1
    state, error = status(bad)
    assert state == "errored" and "column currency_id" in error and "out of range" in error
