"""Several workers at once, and a worker killed in the middle of a load (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from data_platform.batch.cubic_qlik.scan import scan_incoming
from data_platform.db.engine import get_engine
from data_platform.db.models import Load
from data_platform.run import run_once
from data_platform.settings import Settings
from harness.samples.qlik import Column
from tests.qlik.conftest import QlikWorld, seq

T = "2021-12-01 11:20:30"
COLUMNS = [Column("ID", "INT4", key_pos=1), Column("V", "INT8"), Column("NOTE", "STRING", 40)]


def _env(platform: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "S3_"))}
    env.update(DATABASE_URL=platform.database_url or "", DATA_PLATFORM_HOME=str(platform.home))
    return env


def _ingest_process(platform: Settings, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "data_platform.batch.cubic_qlik.ingest"],
        env=_env(platform),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _changes(n_files: int, per_file: int, keys: int) -> list[list[tuple]]:
    """Change files hitting `keys` keys again and again; returns rows per file."""
    files, n = [], 0
    for _ in range(n_files):
        rows = []
        for _ in range(per_file):
            n += 1
            key = n * 7919 % keys
            op = "D" if n % 11 == 0 else ("I" if n % 3 else "U")
            note = None if op == "D" else f"change {n}"
            rows.append((seq(n), op, T, key, None if op == "D" else n, note))
        files.append(rows)
    return files


def _expected(initial: dict[int, tuple], files: list[list[tuple]]) -> list[tuple]:
    state = dict(initial)
    for rows in files:
        for _, op, _, key, v, note in sorted(rows, key=lambda r: r[0]):
            if op == "D":
                state.pop(key, None)
            else:
                state[key] = (key, v, note)
    return [state[k] for k in sorted(state)]


@pytest.mark.slow
def test_two_workers_in_parallel_apply_every_load_once_in_order(
    qlik: QlikWorld, platform: Settings, tmp_path: Path
) -> None:
    tables, expected = [], {}
    for t in range(4):
        table = qlik.table(f"TEST.PAR{t}", COLUMNS)
        initial = {k: (k, 0, "initial") for k in range(50)}
        table.full_load(list(initial.values()))
        table.onboard()
        files = _changes(n_files=6, per_file=300, keys=80)
        for i, rows in enumerate(files):
            table.changes(rows, name=f"20211201-{i:09d}")
        tables.append(table)
        expected[table.qualified] = _expected(initial, files)
    # Every statement on a target table is logged with its load and transaction: the final
    # rows alone cannot show a load applied twice or out of order (changes are idempotent
    # and ordered by change sequence).
    with get_engine().begin() as conn:
        conn.execute(text(APPLY_LOG))
        for table in tables:
            conn.execute(text(APPLY_TRIGGER.format(table=".".join(table.db_table))))
    scan_incoming()
    workers = [_ingest_process(platform, tmp_path) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    run_once()  # picks up anything a busy table left (there should be nothing)
    with get_engine().connect() as conn:
        statuses = conn.execute(select(Load.status)).scalars().all()
        applied = conn.execute(
            text(
                "SELECT l.s3_key, a.tbl, count(DISTINCT a.xid), min(a.at) "
                "FROM test_apply_log a JOIN loads l ON l.id = a.load_id "
                "GROUP BY l.s3_key, a.tbl ORDER BY a.tbl, min(a.at)"
            )
        ).all()
    assert set(statuses) == {"archived"} and len(statuses) == 4 * 7
    # Each load went in by one committed transaction (rolled-back tries leave no log row).
    assert [(key, n) for key, _, n, _ in applied if n != 1] == []
    for table in tables:
        assert table.rows() == expected[table.qualified]
        order = [key for key, tbl, _, _ in applied if tbl == table.db_table[1]]
        # The full load, then the change files in name order.
        assert len(order) == 7 and order == sorted(order, key=lambda k: ("__ct/" in k, k))


APPLY_LOG = """
CREATE TABLE test_apply_log (
    tbl text, load_id bigint, xid xid8, at timestamptz DEFAULT clock_timestamp()
);
CREATE FUNCTION test_log_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_apply_log (tbl, load_id, xid)
    VALUES (TG_TABLE_NAME, current_setting('data_platform.load_id')::bigint,
            pg_current_xact_id());
    RETURN NULL;
END $$;
"""
APPLY_TRIGGER = (
    "CREATE TRIGGER test_log_apply AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION test_log_apply()"
)


# A DATETIME column: the change file is staged with its values converted on the client
# while it streams (staging.stage_file, inside a savepoint of the load's transaction).
STAMP, STAMPED = "2021-12-01 11:20:30.1234565", datetime(2021, 12, 1, 11, 20, 30, 123456)


@pytest.mark.slow
@pytest.mark.parametrize("stamped", [False, True], ids=["sql-rules", "datetime-on-the-client"])
def test_worker_killed_mid_load_leaves_nothing_half_applied(
    qlik: QlikWorld, platform: Settings, tmp_path: Path, stamped: bool
) -> None:
    extra, typed = ((STAMP,), (STAMPED,)) if stamped else ((), ())
    columns = [*COLUMNS, Column("AT", "DATETIME")] if stamped else COLUMNS
    table = qlik.table("TEST.KILL", columns)
    initial = {k: (k, 0, "initial") for k in range(1000)}
    table.full_load([(*row, *extra) for row in initial.values()])
    table.onboard()
    run_once()
    files = _changes(n_files=1, per_file=400_000, keys=50_000)
    key = table.changes([(*row, *extra) for row in files[0]])
    scan_incoming()
    worker = _ingest_process(platform, tmp_path)
    deadline = time.monotonic() + 60
    with get_engine().connect() as conn:
        while time.monotonic() < deadline:
            status = conn.scalar(select(Load.status).where(Load.s3_key == key))
            conn.rollback()
            if status == "ingesting":
                break
            time.sleep(0.02)
    assert status == "ingesting"
    with get_engine().connect() as conn:  # into the COPY: the worker's file is streaming
        while time.monotonic() < deadline:
            copying = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND query ILIKE 'COPY %'"
                )
            )
            conn.rollback()
            if copying:
                break
            time.sleep(0.02)
    assert copying
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    with get_engine().connect() as conn:
        assert conn.scalar(select(Load.status).where(Load.s3_key == key)) == "ingesting"
    # Nothing of the file is visible.
    assert table.rows() == [(*row, *typed) for row in sorted(initial.values())]
    summary = run_once().source("cubic_qlik")
    assert (summary.ingest.archived, summary.ingest.errored) == (1, 0)
    assert table.rows() == [(*row, *typed) for row in _expected(initial, files)]
