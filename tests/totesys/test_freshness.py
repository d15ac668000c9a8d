"""`data-platform run --watch` extracts, ingests and transforms: an order updated in the
source appears as a new version in the warehouse's fact_sales_order within a pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from data_platform.batch.totesys.connection import connect
from data_platform.batch.totesys.extract import extract
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.transform import run_transform
from data_platform.transform.dbt import FULL_BUILD, dbt_home

INTERVAL = 2  # seconds between passes


def _versions(order: int) -> list[tuple]:
    with get_engine().connect() as conn:
        return conn.execute(
            text(
                "SELECT units_sold, is_current FROM analytics.fact_sales_order "
                "WHERE sales_order_id = :o ORDER BY last_updated_date, last_updated_time"
            ),
            {"o": order},
        ).all()


@pytest.mark.slow
def test_an_update_reaches_the_facts_within_a_watch_pass(platform, seeded: str) -> None:
    extract()
    run_once()
    assert run_transform().ok
    # A build of every model is kept where a later --select run cannot overwrite it.
    kept = dbt_home() / FULL_BUILD / "run_results.json"
    assert json.loads(kept.read_text())["args"].get("select") in (None, [])
    (before,) = _versions(7)
    env = {k: v for k, v in os.environ.items()}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "data_platform", "run", "--watch", str(INTERVAL)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(INTERVAL)  # the watcher's first pass: nothing new
        conn = connect(seeded)
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE sales_order SET units_sold = 9999, "
                "last_updated = (now() AT TIME ZONE 'UTC')::timestamp(3) WHERE sales_order_id = 7"
            )
        conn.close()
        updated = time.monotonic()
        while time.monotonic() < updated + 90 and len(_versions(7)) < 2:
            time.sleep(0.5)
        took = time.monotonic() - updated
    finally:
        watcher.terminate()
        output = watcher.communicate(timeout=30)[0]
    versions = _versions(7)
    assert versions == [(before[0], False), (9999, True)], output[-3000:]
    assert took < INTERVAL + 60, output[-3000:]  # one interval plus a pass's run time
