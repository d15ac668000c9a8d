"""The totesys backlog at the source (issue 25): rows the source stamped after the newest
stamp landed make the table `behind` once they wait longer than FRESHNESS_BEHIND_MINUTES;
`run` probes after each pass, says so, alerts once, and the next extraction clears it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from data_platform.batch.totesys.backlog import source_backlog
from data_platform.batch.totesys.extract import extract
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.settings import reset_settings
from tests.totesys.sql import on_source

ORDERS = "totesys__sales_order"


def _open_fresh_alerts() -> list[str]:
    with get_engine().connect() as conn:
        return list(
            conn.scalars(
                text(
                    "SELECT fingerprint FROM alert_events WHERE kind = 'fresh' "
                    "AND resolved_at IS NULL ORDER BY 1"
                )
            )
        )


def test_rows_waiting_at_the_source_make_the_table_behind(
    platform, seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert source_backlog() == []  # nothing extracted yet: no mark to measure from
    extract()
    run_once()
    backlog = {b.table: b for b in source_backlog()}
    assert len(backlog) == 11 and {b.rows for b in backlog.values()} == {0}
    assert backlog[ORDERS].oldest_waiting_seconds is None
    on_source(
        seeded,
        "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = localtimestamp "
        "WHERE sales_order_id IN (3, 4)",
    )
    (orders,) = [b for b in source_backlog() if b.table == ORDERS]
    assert orders.rows == 2 and orders.oldest_waiting_seconds is not None
    monkeypatch.setenv("FRESHNESS_BEHIND_MINUTES", "0.0001")  # a wait of 6 ms is behind
    reset_settings()
    held = CliRunner().invoke(cli, ["run", "--no-land", "--no-transform"])
    assert held.exit_code == 0, held.output
    (late,) = [line for line in held.stdout.splitlines() if line.startswith("late: ")]
    assert late.startswith(f"late: {ORDERS}: behind: ")
    assert "2 row(s) at the source not yet extracted" in late
    assert _open_fresh_alerts() == [f"fresh:{ORDERS}:behind"]
    again = CliRunner().invoke(cli, ["run", "--no-land", "--no-transform"])
    assert again.exit_code == 0 and _open_fresh_alerts() == [f"fresh:{ORDERS}:behind"]
    caught_up = CliRunner().invoke(cli, ["run", "--no-transform"])  # extracts: due at once
    assert caught_up.exit_code == 0, caught_up.output
    assert "late: " not in caught_up.stdout
    assert _open_fresh_alerts() == []
