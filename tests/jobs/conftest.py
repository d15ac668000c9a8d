"""Qlik files written by the job tests, the job on the local store, Glue on moto's server.

The SparkSession (`spark`) is the whole session's, in tests/conftest.py."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.samples.qlik import CHANGE_HEADERS, Column
from harness.samples.qlik import dfm_document as qlik_dfm_document


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    precision: int = 0
    scale: int = 0
    key: int = 0


def dfm_document(columns: list[Col], *, table: str = "SAMPLE", null_value: str = "") -> dict:
    """A .dfm as Qlik Replicate writes it, from the platform's own writer. For a change
    file (`table` ending in __ct) `columns` starts with the writer's header columns."""
    changes = table.endswith("__ct")
    headers = [c.name for c in columns if c.name.startswith("header__")]
    assert headers == ([name for name, _, _ in CHANGE_HEADERS] if changes else [])
    data = [
        Column(c.name, c.type, precision=c.precision, scale=c.scale, key_pos=c.key)
        for c in columns
        if not c.name.startswith("header__")
    ]
    return qlik_dfm_document(
        "EDW",
        table.removesuffix("__ct"),
        data,
        changes=changes,
        file_name="LOAD00000001.csv.gz",
        record_count=None,
        null_value=null_value,
    )


def write_qlik(
    root: Path, key: str, columns: list[Col], body: str, *, table: str = "SAMPLE"
) -> Path:
    """Write `key` (gzip when it ends in .gz) with a header row and its .dfm beside it.

    `body` is the CSV text after the header, exactly as Qlik would write it.
    """
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ",".join(col.name for col in columns) + "\n" + body
    if key.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    base = key.removesuffix(".gz").removesuffix(".csv")
    (root / f"{base}.dfm").write_text(json.dumps(dfm_document(columns, table=table)))
    return path


# --- The job on the platform's local store -------------------------------------------------

KEY = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz"
TABLE = "cubic_ods_qlik__edw_sample"


@pytest.fixture
def env():
    """--ENV for the local store of this test's settings (DATA_PLATFORM_HOME is per test)."""
    from data_platform.jobs.env import local_job_env
    from data_platform.settings import get_settings

    return local_job_env(get_settings())


@pytest.fixture
def incoming(env) -> Path:
    return Path(env.local_root) / env.zones["incoming"].bucket


@pytest.fixture
def springboard(env) -> Path:
    return Path(env.local_root) / env.zones["springboard"].bucket


def run_job(env, *, loads=None, object_key: str | None = None, extra: tuple[str, ...] = ()):
    """The job exactly as the Glue script runs it, with a sys.argv-style list."""
    from data_platform.batch.cubic_qlik.spark.ingest_incoming import run
    from data_platform.jobs.job_input import JobInput

    source = ("--INPUT", JobInput(tuple(loads)).to_json()) if loads is not None else ()
    if object_key is not None:
        source = ("--OBJECT_KEY", object_key)
    argv = ["ingest_incoming.py", "--JOB_NAME", "ingest_incoming", "--ENV", env.to_json()]
    return run([*argv, *source, *extra])


def read_partition(springboard: Path, load) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(springboard / load.partition_path).to_pylist()


# --- AWS Glue on moto's server --------------------------------------------------------------


@pytest.fixture
def glue(s3_env: dict[str, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A Glue client on moto's server, without the job before and after the test.

    Glue state on the server lives for the whole test session, so the job is deleted
    rather than left for the next test. boto3 clients made by the code under test reach
    the same server through AWS_ENDPOINT_URL_GLUE. A job run moves one state per
    GetJobRun (STARTING -> RUNNING -> SUCCEEDED), as a real one takes a while.
    """
    import boto3

    from data_platform.jobs.scripts import GLUE_SCRIPTS

    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_endpoint)
    client = boto3.client("glue", endpoint_url=moto_endpoint)
    for name in GLUE_SCRIPTS:
        client.delete_job(JobName=name)
    transition = {"progression": "manual", "times": 1}
    _moto_api(
        moto_endpoint, "set-transition", {"model_name": "glue::job_run", "transition": transition}
    )
    yield client
    _moto_api(moto_endpoint, "unset-transition", {"model_name": "glue::job_run"})
    for name in GLUE_SCRIPTS:
        client.delete_job(JobName=name)


def _moto_api(endpoint: str, action: str, body: dict) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/{action}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
