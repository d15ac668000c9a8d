"""Job arguments exactly as AWS Glue passes them: a sys.argv list through getResolvedOptions."""

from __future__ import annotations

import pytest

from data_platform.batch.cubic_qlik.spark.ingest_incoming import parse_args, table_name_for_key
from data_platform.errors import ConfigError
from data_platform.jobs.job_input import JobEnv, JobInput, JobLoad, ZoneLocation

ENV = JobEnv({z: ZoneLocation(f"{z}-bucket") for z in ("incoming", "springboard", "operations")})
LOAD = JobLoad(
    source_key="cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz",
    table="cubic_ods_qlik__edw_sample",
    is_raw=False,
    destination_path="cubic/ods_qlik/EDW.SAMPLE/",
    snapshot="20211201T112233Z",
    identifier="LOAD00000001.csv.gz",
)
# What a Glue 5.0 run's sys.argv looks like: the script, Glue's own flags, then ours.
GLUE_FLAGS = [
    "ingest_incoming.py",  # Glue passes a path of its own here; only its place matters
    "--JOB_ID", "j_0123",
    "--JOB_RUN_ID", "jr_0123",
    "--job-bookmark-option", "job-bookmark-disable",
    "--TempDir", "s3://aws-glue-assets/temporary/",
    "--enable-glue-datacatalog", "true",
    "--JOB_NAME", "ingest_incoming",
]  # fmt: skip


def test_input_form_as_glue_passes_it() -> None:
    argv = [*GLUE_FLAGS, "--ENV", ENV.to_json(), "--INPUT", JobInput((LOAD,)).to_json()]
    args = parse_args(argv)
    assert args.job_name == "ingest_incoming"
    assert args.env == ENV
    assert args.job_input == JobInput((LOAD,))
    assert (args.object_key, args.result_key) == (None, None)
    assert args.glue_args["JOB_RUN_ID"] == "jr_0123"


def test_object_key_form_and_result_key() -> None:
    argv = [
        *GLUE_FLAGS,
        "--ENV", ENV.to_json(),
        "--OBJECT_KEY", LOAD.source_key,
        "--RESULT_KEY", "glue_job_runs/ingest_incoming/x.json",
    ]  # fmt: skip
    args = parse_args(argv)
    assert args.job_input is None
    assert args.object_key == LOAD.source_key
    assert args.result_key == "glue_job_runs/ingest_incoming/x.json"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --INPUT and --OBJECT_KEY"),
        (["--INPUT", "[]", "--OBJECT_KEY", "k"], "exactly one of --INPUT and --OBJECT_KEY"),
    ],
)
def test_exactly_one_source(extra: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_args([*GLUE_FLAGS, "--ENV", ENV.to_json(), *extra])


def test_missing_env_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--ENV"):
        parse_args([*GLUE_FLAGS, "--OBJECT_KEY", "k"])


def test_table_name_for_key() -> None:
    assert table_name_for_key(LOAD.source_key) == "cubic_ods_qlik__edw_sample"
    key = "cubic/ods_qlik/EDW.SAMPLE__ct/20211201-112233444.csv.gz"
    assert table_name_for_key(key) == "cubic_ods_qlik__edw_sample__ct"
