"""`data-platform glue run` through click's runner, on the local store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.jobs.env import LOCAL_SPARK_NEEDS_LOCAL_STORE
from data_platform.jobs.job_input import JobInput, JobLoad
from data_platform.settings import ZONES, reset_settings
from tests.jobs.conftest import KEY, TABLE, Col, write_qlik

COLUMNS = [Col("SAMPLE_ID", "INT4", key=1), Col("SAMPLE_NAME", "STRING")]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.spark
def test_run_one_object(spark, env, incoming: Path, springboard: Path) -> None:
    write_qlik(incoming, KEY, COLUMNS, "1,a\n2,b\n")
    code, out, _ = invoke("glue", "run", "ingest_incoming", "--OBJECT_KEY", KEY)
    assert (code, out) == (0, f"written  {KEY}\n")
    assert list(
        (springboard / "cubic/ods_qlik/EDW.SAMPLE").glob("snapshot=*/identifier=*/*.parquet")
    )


@pytest.mark.spark
def test_run_input_with_a_failing_load(spark, env, incoming: Path) -> None:
    bad = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000002.csv.gz"
    write_qlik(incoming, KEY, COLUMNS, "1,a\n")
    write_qlik(incoming, bad, COLUMNS, "1,a\nx,b\n")
    loads = [
        JobLoad(
            k, TABLE, False, "cubic/ods_qlik/EDW.SAMPLE/", "20211201T112233Z", k.rsplit("/", 1)[1]
        )
        for k in (KEY, bad)
    ]
    code, out, err = invoke(
        "glue", "run", "ingest_incoming", "--INPUT", JobInput(tuple(loads)).to_json()
    )
    assert code == 1
    assert out == (
        f"written  {KEY}\n"
        f"failed   {bad}: line 3, column SAMPLE_ID: 'x' is not a valid INT4 "
        f"(integer -2147483648..2147483647) (table {TABLE})\n"
    )
    assert err.splitlines()[-1] == "Error: 1 of 2 load(s) failed"


def test_run_refuses_s3_with_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for zone in ZONES:
        monkeypatch.setenv(f"S3_BUCKET_{zone.upper()}", f"bucket-{zone}")
    reset_settings()
    code, out, err = invoke("glue", "run", "ingest_incoming", "--OBJECT_KEY", KEY)
    assert (code, out, err) == (2, "", f"Error: {LOCAL_SPARK_NEEDS_LOCAL_STORE}\n")


@pytest.mark.parametrize("extra", [[], ["--INPUT", "[]", "--OBJECT_KEY", KEY]])
def test_run_needs_exactly_one_source(extra: list[str]) -> None:
    code, _, err = invoke("glue", "run", "ingest_incoming", *extra)
    assert code == 2 and "give exactly one of --INPUT and --OBJECT_KEY" in err


def test_bad_input_json_is_one_error_line() -> None:
    code, _, err = invoke("glue", "run", "ingest_incoming", "--INPUT", "[{}]")
    assert code == 2
    assert err.splitlines()[-1].startswith("Error: --INPUT load 0 is missing key(s): ")


@pytest.mark.parametrize("args", [["glue", "-h"], ["deploy", "-h"]])
def test_group_help(args: list[str]) -> None:
    code, out, _ = invoke(*args)
    assert code == 0 and "Usage: " in out


@pytest.mark.parametrize(
    "args", [["glue", "run", "-h"], ["glue", "env", "-h"], ["deploy", "glue", "-h"]]
)
def test_command_help_has_examples(args: list[str]) -> None:
    code, out, _ = invoke(*args)
    assert code == 0 and "Usage: " in out and "Example" in out


def test_env_prints_the_job_env_for_these_settings(s3_env: dict[str, str]) -> None:
    from data_platform.jobs.job_input import JobEnv, ZoneLocation

    code, out, _ = invoke("glue", "env")
    env = JobEnv.from_json(out)
    assert code == 0 and env.local_root is None and env.s3_endpoint_url
    assert env.zones["incoming"] == ZoneLocation(s3_env["incoming"], "dev/incoming/")
    assert env.uri("springboard", "x/") == f"s3a://{s3_env['springboard']}/x/"
