"""run_springboard: the local subprocess for real, and AWS mode against moto's Glue."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from data_platform.errors import ConfigError, JobRunError
from data_platform.jobs.job_input import JobEnv, JobInput, JobLoad, ZoneLocation
from data_platform.jobs.springboard import run_springboard, springboard_mode
from data_platform.settings import ZONES, Settings, get_settings
from data_platform.storage import get_zone
from tests.jobs.conftest import KEY, TABLE, Col, read_partition, write_qlik

COLUMNS = [Col("SAMPLE_ID", "INT4", key=1), Col("SAMPLE_NAME", "STRING")]
BAD = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000002.csv.gz"
LOADS = [
    JobLoad(
        key, TABLE, False, "cubic/ods_qlik/EDW.SAMPLE/", "20211201T112233Z", key.rsplit("/")[-1]
    )
    for key in (KEY, BAD)
]


@pytest.mark.slow
@pytest.mark.spark
def test_local_mode_runs_the_aws_script_with_plain_pyspark(
    env, incoming: Path, springboard: Path
) -> None:
    # One real subprocess: `python aws/s3/glue_jobs/.../ingest_incoming.py --JOB_NAME ...`.
    write_qlik(incoming, KEY, COLUMNS, "1,Sample 1 🔥\n")
    write_qlik(incoming, BAD, COLUMNS, "1,a\n2.5,b\n")
    results = run_springboard(LOADS)
    assert results == {
        KEY: None,
        BAD: f"{BAD}: line 3, column SAMPLE_ID: '2.5' is not a valid INT4 "
        f"(integer -2147483648..2147483647) (table {TABLE})",
    }
    assert read_partition(springboard, LOADS[0]) == [{"SAMPLE_ID": 1, "SAMPLE_NAME": "Sample 1 🔥"}]
    assert list(get_zone("operations").list()) == []  # the result document was consumed


def test_nothing_to_do_starts_nothing() -> None:
    assert run_springboard([]) == {}


def test_mode_follows_the_settings() -> None:
    buckets = {f"s3_bucket_{zone}": f"b-{zone}" for zone in ZONES}
    assert springboard_mode(Settings()) == "local"
    assert springboard_mode(Settings(**buckets)) == "aws"
    with pytest.raises(ConfigError, match="cannot reach S3_ENDPOINT_URL=http://minio:9000"):
        springboard_mode(Settings(**buckets, s3_endpoint_url="http://minio:9000"))


def _create_job(glue) -> None:
    glue.create_job(
        Name="ingest_incoming",
        Role="arn:aws:iam::123456789012:role/glue-jobs",
        Command={"Name": "glueetl", "ScriptLocation": "s3://ops/ingest_incoming.py"},
        ExecutionProperty={"MaxConcurrentRuns": 10},
    )


def test_aws_mode_starts_a_run_polls_and_reads_the_answer(glue, s3_env: dict[str, str]) -> None:
    _create_job(glue)
    polls: list[float] = []

    def the_glue_job_runs(seconds: float) -> None:
        # Stands in for the job on AWS: checks its arguments, writes its result document.
        polls.append(seconds)
        if len(polls) > 1:
            return
        (job_run,) = glue.get_job_runs(JobName="ingest_incoming")["JobRuns"]
        arguments = job_run["Arguments"]
        assert JobInput.from_json(arguments["--INPUT"]) == JobInput(tuple(LOADS))
        env = JobEnv.from_json(arguments["--ENV"])
        assert env.zones["incoming"] == ZoneLocation(s3_env["incoming"], "dev/incoming/")
        assert env.local_root is None
        document = {"job_name": "ingest_incoming", "results": {KEY: None, BAD: "bad row"}}
        body = io.BytesIO(json.dumps(document).encode())
        get_zone("operations").put(arguments["--RESULT_KEY"], body)

    results = run_springboard(
        LOADS, mode="aws", glue_client=glue, poll_seconds=0.5, sleep=the_glue_job_runs
    )
    assert results == {KEY: None, BAD: "bad row"}
    assert polls and set(polls) == {0.5}
    assert list(get_zone("operations").list()) == []


def test_aws_run_without_a_result_is_a_job_run_error(glue) -> None:
    _create_job(glue)
    with pytest.raises(
        JobRunError, match=r"Glue job run jr_\w+ ended SUCCEEDED: .*no result at s3://"
    ):
        run_springboard(LOADS, mode="aws", glue_client=glue, poll_seconds=0, sleep=lambda _: None)


def test_aws_run_that_does_not_end_in_time(glue) -> None:
    _create_job(glue)
    with pytest.raises(JobRunError, match="still RUNNING after 0s; left running"):
        run_springboard(
            LOADS, mode="aws", glue_client=glue, timeout_seconds=0, sleep=lambda _: None
        )


def test_aws_job_not_deployed(glue) -> None:
    with pytest.raises(JobRunError, match=r"cannot start Glue job ingest_incoming: .*deploy glue"):
        run_springboard(LOADS, mode="aws", glue_client=glue)


def test_local_mode_refuses_s3(s3_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="local Spark reads and writes file:// only"):
        run_springboard(LOADS, get_settings(), mode="local")
