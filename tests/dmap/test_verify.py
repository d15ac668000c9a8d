"""DMAP tables verified against their files (issue 25): a row deleted, a row added and a
dataset no file brought are each found and named, through `data-platform verify`; the
mismatch is alerted once and resolved by the next good check."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import text

from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from tests.dmap.test_ingest import _gz_csv, _land, _row, onboarded  # noqa: F401 (fixture)


def _open_alerts() -> list[str]:
    with get_engine().connect() as conn:
        return list(
            conn.scalars(
                text("SELECT fingerprint FROM alert_events WHERE resolved_at IS NULL ORDER BY id")
            )
        )


def test_rows_per_dataset_against_their_files(onboarded) -> None:  # noqa: F811
    _land("ds1", _gz_csv([_row("2022-05-16", 1), _row("2022-05-17", 2)]))
    _land("ds2", _gz_csv([_row("2022-05-16", 3)]))
    _land("ds3", _gz_csv([_row("2022-05-18", 4)]))
    run_once()
    runner = CliRunner()
    good = runner.invoke(cli, ["verify", "--source", "cubic_dmap", "--json"])
    assert good.exit_code == 0, good.output
    (found,) = json.loads(good.stdout)
    assert (found["verdict"], found["expected"], found["actual"]) == ("ok", 4, 4)

    with get_engine().begin() as conn:
        conn.execute(
            text("DELETE FROM cubic_dmap.agg_daily_fareprod WHERE dataset_id = 'ds1' AND count = 2")
        )
        conn.execute(text("DELETE FROM cubic_dmap.agg_daily_fareprod WHERE dataset_id = 'ds3'"))
        conn.execute(
            text(
                "INSERT INTO cubic_dmap.agg_daily_fareprod (dataset_id, date, count, dp__load_id) "
                "VALUES ('ds2', '2022-05-16', 9, 0), ('ds9', '2022-05-16', 9, 0)"
            )
        )
    bad = runner.invoke(cli, ["verify"])
    assert bad.exit_code == 1, bad.output
    assert (
        "mismatch dataset_rows cubic_dmap.agg_daily_fareprod, 4 of 4 row(s): 4 differ" in bad.output
    )
    shown = [line.split() for line in bad.output.splitlines() if line.startswith("  ")]
    assert shown == [
        ["different", "['ds1']"],
        ["different", "['ds2']"],
        ["missing", "['ds3']"],
        ["extra", "['ds9']"],
    ]
    assert _open_alerts() == ["verify:cubic_dmap:dataset_rows:cubic_dmap.agg_daily_fareprod"]
    assert runner.invoke(cli, ["verify"]).exit_code == 1
    assert len(_open_alerts()) == 1  # alerted once

    _land("ds1", _gz_csv([_row("2022-05-16", 1), _row("2022-05-17", 2)]))  # re-issued
    _land("ds3", _gz_csv([_row("2022-05-18", 4)]))
    with get_engine().begin() as conn:
        conn.execute(
            text("DELETE FROM cubic_dmap.agg_daily_fareprod WHERE dataset_id IN ('ds2', 'ds9')")
        )
    _land("ds2", _gz_csv([_row("2022-05-16", 3)]))
    result = runner.invoke(cli, ["run", "--no-land"])
    assert "cubic_dmap: verified 1 table(s), 0 mismatch(es)" in result.output, result.output
    assert result.exit_code == 0
    assert _open_alerts() == []
    latest = runner.invoke(cli, ["verify", "--latest"])
    assert latest.output.startswith("ok       dataset_rows cubic_dmap.agg_daily_fareprod")
    status = json.loads(runner.invoke(cli, ["status", "--json"]).stdout)
    assert [(v["check"], v["verdict"]) for v in status["verifications"]] == [("dataset_rows", "ok")]
