"""SPRINGBOARD_ENABLED: the ingest hands loads to the Glue job (local PySpark) first.

The job runs in this test process (`job_in_process`), on the session's SparkSession: the
aws/ script itself, with the arguments `run_springboard` gives its subprocess, and the
same answer read back from the operations zone. Only the interpreter and the JVM start of
each run are spared; tests/jobs/test_run_springboard.py starts the real subprocess once.
"""

from __future__ import annotations

import logging
import os
import re
import runpy
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from data_platform.db.engine import get_engine
from data_platform.db.models import Load
from data_platform.settings import reset_settings
from data_platform.storage import get_zone
from tests.qlik.conftest import PREFIX, QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"
FIRST = f"{PREFIX}TEST.SAMPLE/LOAD00000001.csv.gz"


def _partitions(qlik: QlikWorld) -> set[tuple[str, int | None]]:
    """(file name, load id) of every partition in the springboard (None: a partition
    keyed by the file alone)."""
    found = set()
    for key in qlik.keys("springboard"):
        if key.endswith(".parquet"):
            match = re.search(r"/identifier=([^/]+)/(?:dp__load_id=(\d+)/)?", key)
            assert match, key
            found.add((match[1], int(match[2]) if match[2] else None))
    return found


def _archived(qlik: QlikWorld) -> set[tuple[str, int]]:
    """(file name, load id) of every load archived as applied."""
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(Load.s3_key, Load.id).where(Load.status == "archived", Load.rows.is_not(None))
        ).all()
    return {(key.rsplit("/", 1)[1], load_id) for key, load_id in rows}


def _set_mtime(key: str, moment: datetime) -> None:
    incoming = get_zone("incoming")
    seconds = moment.timestamp()
    os.utime(incoming.store.root / incoming.bucket / key, (seconds, seconds))


def _rows(qlik: QlikWorld, file_name: str, load_id: int) -> list[tuple]:
    """The rows of the load's partition (of the file's, were partitions keyed by file)."""
    import pyarrow.parquet as pq

    springboard = get_zone("springboard")
    partitions = {
        key.rsplit("/", 1)[0]
        for key in qlik.keys("springboard")
        if f"/identifier={file_name}/" in key
        and (f"/dp__load_id={load_id}/" in key or "/dp__load_id=" not in key)
    }
    rows = []
    for partition in partitions:
        table = pq.read_table(springboard.store.root / springboard.bucket / partition)
        rows += [(r["SAMPLE_ID"], r["SAMPLE_NAME"]) for r in table.to_pylist()]
    return sorted(rows, key=repr)


def _holds_its_rows(qlik: QlikWorld, loads: dict[str, int]) -> None:
    """The partition of each of these loads (file name -> load id) holds the file's rows
    as the sample and the change file of these tests have them."""
    expected = {
        "LOAD00000001.csv.gz": [(1, "one"), (2, "two")],
        "20211201-000000001.csv.gz": [(7, "seven")],
    }
    assert {name: _rows(qlik, name, load_id) for name, load_id in loads.items()} == {
        name: expected[name] for name in loads
    }


pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(autouse=True)
def _springboard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRINGBOARD_ENABLED", "true")
    reset_settings()


@pytest.fixture
def job_in_process(spark, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """`run_springboard`'s subprocess, run in this process: the aws/ script executed as
    `__main__` with the argv it was given, on `spark` (the job takes the active session).
    An exception ends it as the interpreter would: exit code 1, the error on stderr.
    Returns the argv of every run."""
    from data_platform.jobs import springboard
    from data_platform.jobs.scripts import INGEST_INCOMING, script_path

    runs: list[list[str]] = []
    real_run = subprocess.run  # `subprocess` is one module: others (Alembic's ruff hook) use it too

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        if argv[1:2] != [str(script_path(INGEST_INCOMING))]:
            return real_run(argv, **kwargs)  # type: ignore[call-overload]
        assert argv[:2] == [sys.executable, str(script_path(INGEST_INCOMING))], argv
        assert set(kwargs) == {"capture_output", "text", "timeout", "env"}, kwargs
        runs.append(argv)
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level  # the script configures logging
        try:
            with monkeypatch.context() as patch:
                patch.setattr(sys, "argv", argv[1:])
                runpy.run_path(argv[1], run_name="__main__")
        except Exception as exc:
            return subprocess.CompletedProcess(argv, 1, "", f"{type(exc).__name__}: {exc}\n")
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(springboard.subprocess, "run", run)
    return runs


def test_loads_go_to_the_springboard_before_they_are_archived(
    job_in_process, qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes([(seq(1), "U", T, 1, "ONE", T)], name="20211201-000000001")
    bad = sample.changes([(seq(2), "I", T, 3, "x", "not a time")], name="20211201-000000002")
    summary = qlik.run()
    assert (summary.ingest.archived, summary.ingest.errored) == (2, 1)
    ids = qlik.load_ids()
    assert _partitions(qlik) == {
        ("LOAD00000001.csv.gz", ids[f"{PREFIX}TEST.SAMPLE/LOAD00000001.csv.gz"]),
        ("20211201-000000001.csv.gz", ids[f"{PREFIX}TEST.SAMPLE__ct/20211201-000000001.csv.gz"]),
    }
    parquet = [k for k in qlik.keys("springboard") if k.endswith(".parquet")]
    assert all("/snapshot=" in k for k in parquet)
    error = dict((k, e) for k, _, e in qlik.loads())[bad]
    assert bad in error and "EDW_INSERTED_DTM" in error and "line 2" in error
    assert [r[:2] for r in sample.rows()] == [(1, "ONE"), (2, "two")]


def test_a_failed_job_run_blames_no_file(
    qlik: QlikWorld, sample: QlikTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_platform.errors import DataPlatformError

    monkeypatch.setenv("PYSPARK_PYTHON", "/nonexistent/python")  # the job cannot start
    monkeypatch.setenv("JAVA_HOME", "/nonexistent/java")
    reset_settings()
    with pytest.raises(DataPlatformError, match="ingest stopped for 1 table"):
        qlik.run()
    assert set(qlik.statuses().values()) == {"ready"}
    assert qlik.keys("error") == []


def test_parquet_of_a_load_postgres_rejects_is_removed(
    job_in_process, qlik: QlikWorld, sample: QlikTable
) -> None:
    null_key = sample.changes([(seq(1), "D", T, None, None, None)], name="20211201-000000001")
    summary = qlik.run()
    assert (summary.ingest.archived, summary.ingest.errored) == (1, 1)
    assert "key column is empty (NULL)" in dict((k, e) for k, _, e in qlik.loads())[null_key]
    identifiers = {k.split("/identifier=")[1].split("/")[0] for k in qlik.keys("springboard")}
    assert identifiers == {"LOAD00000001.csv.gz"}


def test_a_load_recorded_while_the_job_runs_gets_its_parquet_before_it_is_archived(
    job_in_process, qlik: QlikWorld, sample: QlikTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_platform.batch.cubic_qlik.scan import scan_incoming
    from data_platform.jobs import springboard

    real = springboard.run_springboard
    runs: list[list[str]] = []

    def in_flight(job_loads):
        runs.append([load.source_key for load in job_loads])
        if len(runs) == 1:  # another scan records a new file while this run is in flight
            sample.changes([(seq(1), "I", T, 7, "seven", T)], name="20211201-000000001")
            scan_incoming()
        return real(job_loads)

    monkeypatch.setattr(springboard, "run_springboard", in_flight)
    summary = qlik.run()
    assert summary.ingest.archived == 2
    assert len(runs) == 2  # the late load had a job run of its own
    identifiers = {k.split("/identifier=")[1].split("/")[0] for k in qlik.keys("springboard")}
    assert identifiers == {"LOAD00000001.csv.gz", "20211201-000000001.csv.gz"}


def test_a_reload_under_the_same_key_while_a_run_is_in_flight_gets_its_own_run_and_parquet(
    job_in_process, qlik: QlikWorld, sample: QlikTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_platform.batch.cubic_qlik.scan import scan_incoming
    from data_platform.jobs import springboard

    real = springboard.run_springboard
    runs: list[list[tuple[str, int | None]]] = []

    def in_flight(job_loads):
        runs.append([(load.source_key, getattr(load, "load_id", None)) for load in job_loads])
        if len(runs) == 1:  # a change file is recorded while the first run is in flight
            sample.changes([(seq(1), "I", T, 7, "seven", T)], name="20211201-000000001")
            scan_incoming()
        elif len(runs) == 2:  # and Replicate reloads the table while the second one is
            sample.full_load([(1, "one again", T), (3, "three", T)])
            _set_mtime(FIRST, datetime.now(UTC) + timedelta(minutes=1))
            scan_incoming()
        return real(job_loads)

    monkeypatch.setattr(springboard, "run_springboard", in_flight)
    summary = qlik.run()
    assert summary.ingest.errored == 0
    reload_id = qlik.load_ids()[FIRST]
    assert runs[-1] == [(FIRST, reload_id)]  # the reload had a run of its own
    assert len(runs) == 3
    archived = _archived(qlik)
    assert len(archived) == 3  # the first load, the change file, the reload
    assert _partitions(qlik) == archived
    assert _rows(qlik, "LOAD00000001.csv.gz", reload_id) == [(1, "one again"), (3, "three")]
    assert _rows(qlik, "LOAD00000001.csv.gz", reload_id - 2) == [(1, "one"), (2, "two")]
    assert [r[:2] for r in sample.rows()] == [(1, "one again"), (3, "three")]


@pytest.mark.parametrize("resent", ["reload", "change file"])
def test_a_rejected_reload_never_deletes_the_parquet_of_an_earlier_archived_load(
    job_in_process, qlik: QlikWorld, sample: QlikTable, resent: str
) -> None:
    # The first load's time is a whole second; a reload in that same second has the same
    # snapshot partition value, and a change file sent again the same snapshot and name.
    first_time = datetime(2021, 12, 1, 11, 22, 33, tzinfo=UTC)
    _set_mtime(FIRST, first_time)
    sample.changes([(seq(1), "I", T, 7, "seven", T)], name="20211201-000000001")
    qlik.run()
    before = dict(_archived(qlik))
    _holds_its_rows(qlik, before)
    # The same key again, with a row the job converts but Postgres refuses (a NULL key).
    if resent == "reload":
        again = sample.full_load([(None, "no key", T)])
        _set_mtime(again, first_time + timedelta(milliseconds=400))
    else:
        again = sample.changes([(seq(2), "D", T, None, None, None)], name="20211201-000000001")
    summary = qlik.run()
    assert summary.ingest.errored == 1
    [error] = [e for k, status, e in qlik.loads() if k == again and status == "errored"]
    assert "key column is empty (NULL)" in error
    assert dict(_archived(qlik)) == before
    # Every archived load still has its own partition, holding its own rows, not the
    # rejected load's; the rejected load has none.
    _holds_its_rows(qlik, before)
    rejected = qlik.load_ids()[again]
    assert not [p for p in _partitions(qlik) if p[1] == rejected]


def test_of_two_loads_of_a_replaced_file_only_the_newest_is_converted_and_applied(
    job_in_process, qlik: QlikWorld, sample: QlikTable
) -> None:
    from data_platform.batch.cubic_qlik.scan import scan_incoming

    name = "20211201-000000001"
    sample.changes([(seq(1), "I", T, 7, "seven", T)], name=name)
    scan_incoming()
    # Replaced in incoming before any run: both versions are ready loads of one key.
    key = sample.changes([(seq(1), "I", T, 8, "eight", T)], name=name)
    scan_incoming()
    summary = qlik.run()
    assert (summary.ingest.errored, summary.ingest.replaced) == (0, 1)
    with get_engine().connect() as conn:
        older, newer = conn.execute(
            select(Load.id, Load.status, Load.rows).where(Load.s3_key == key).order_by(Load.id)
        ).all()
    assert (older.status, older.rows, newer.status) == ("archived", None, "archived")
    assert _partitions(qlik) == _archived(qlik)
    assert ("20211201-000000001.csv.gz", newer.id) in _partitions(qlik)
    assert _rows(qlik, "20211201-000000001.csv.gz", newer.id) == [(8, "eight")]
    assert [r[:2] for r in sample.rows()] == [(1, "one"), (2, "two"), (8, "eight")]
