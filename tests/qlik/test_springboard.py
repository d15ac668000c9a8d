"""SPRINGBOARD_ENABLED: the ingest hands loads to the Glue job (local PySpark) first."""

from __future__ import annotations

import pytest

from data_platform.settings import reset_settings
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"
pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(autouse=True)
def _springboard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRINGBOARD_ENABLED", "true")
    reset_settings()


def test_loads_go_to_the_springboard_before_they_are_archived(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes([(seq(1), "U", T, 1, "ONE", T)], name="20211201-000000001")
    bad = sample.changes([(seq(2), "I", T, 3, "x", "not a time")], name="20211201-000000002")
    summary = qlik.run()
    assert (summary.ingest.archived, summary.ingest.errored) == (2, 1)
    parquet = [k for k in qlik.keys("springboard") if k.endswith(".parquet")]
    partitions = sorted({k.rsplit("/", 1)[0] for k in parquet})
    assert [p.split("/identifier=")[1] for p in partitions] == [
        "LOAD00000001.csv.gz",
        "20211201-000000001.csv.gz",
    ]
    assert all("/snapshot=" in p for p in partitions)
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


def test_parquet_of_a_load_postgres_rejects_is_removed(qlik: QlikWorld, sample: QlikTable) -> None:
    null_key = sample.changes([(seq(1), "D", T, None, None, None)], name="20211201-000000001")
    summary = qlik.run()
    assert (summary.ingest.archived, summary.ingest.errored) == (1, 1)
    assert "key column is empty (NULL)" in dict((k, e) for k, _, e in qlik.loads())[null_key]
    identifiers = {k.split("/identifier=")[1].split("/")[0] for k in qlik.keys("springboard")}
    assert identifiers == {"LOAD00000001.csv.gz"}


def test_a_load_recorded_while_the_job_runs_gets_its_parquet_before_it_is_archived(
    qlik: QlikWorld, sample: QlikTable, monkeypatch: pytest.MonkeyPatch
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
