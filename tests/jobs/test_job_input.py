"""--ENV and --INPUT: JSON round trips and the checks that keep sender and job in step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from data_platform.errors import ConfigError
from data_platform.jobs.job_input import JobEnv, JobInput, JobLoad, ZoneLocation, format_snapshot

ZONES = {
    "incoming": ZoneLocation("in-bucket", "dev/incoming/"),
    "springboard": ZoneLocation("sb-bucket"),
    "operations": ZoneLocation("ops-bucket", "ops/"),
}


def _load(**overrides) -> JobLoad:
    fields = {
        "source_key": "cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz",
        "table": "cubic_ods_qlik__edw_sample",
        "is_raw": False,
        "destination_path": "cubic/ods_qlik/EDW.SAMPLE/",
        "snapshot": "20211201T112233Z",
        "identifier": "LOAD00000001.csv.gz",
    }
    return JobLoad(**{**fields, **overrides})


def test_job_input_round_trips_through_json() -> None:
    job_input = JobInput((_load(), _load(source_key="x/y/LOAD00000002.csv", is_raw=True)))
    text = job_input.to_json()
    assert isinstance(json.loads(text), list)
    assert JobInput.from_json(text) == job_input


def test_job_env_round_trips_through_json() -> None:
    for env in (
        JobEnv(ZONES, glue_database_incoming="inc", s3_endpoint_url="http://minio:9000"),
        JobEnv(ZONES, local_root="/srv/store"),
    ):
        assert JobEnv.from_json(env.to_json()) == env


def test_create_derives_destination_identifier_and_utc_snapshot() -> None:
    moment = datetime(2021, 12, 1, 12, 22, 33, 444000, tzinfo=timezone(timedelta(hours=1)))
    load = JobLoad.create("cubic/ods_qlik/EDW.SAMPLE__ct/20211201-112233444.csv.gz", "t", moment)
    assert load.destination_path == "cubic/ods_qlik/EDW.SAMPLE__ct/"
    assert load.identifier == "20211201-112233444.csv.gz"
    assert load.snapshot == "20211201T112233Z"
    assert load.partition_path == (
        "cubic/ods_qlik/EDW.SAMPLE__ct/snapshot=20211201T112233Z/"
        "identifier=20211201-112233444.csv.gz/"
    )
    raw = JobLoad.create("a/b/LOAD00000001.csv", "t", moment, is_raw=True)
    assert raw.output_path == "raw/a/b/"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_snapshot(datetime(2021, 1, 1))
    assert format_snapshot(datetime(2021, 1, 1, tzinfo=UTC)) == "20210101T000000Z"


def test_a_load_id_keys_the_partition_and_survives_the_round_trip() -> None:
    moment = datetime(2021, 12, 1, 11, 22, 33, tzinfo=UTC)
    key = "cubic/ods_qlik/EDW.SAMPLE/LOAD00000001.csv.gz"
    first, reload = (JobLoad.create(key, "t", moment, load_id=n) for n in (7, 8))
    assert first.partition_path == (
        "cubic/ods_qlik/EDW.SAMPLE/snapshot=20211201T112233Z/"
        "identifier=LOAD00000001.csv.gz/dp__load_id=7/"
    )
    assert first.partitions == {
        "snapshot": "20211201T112233Z",
        "identifier": "LOAD00000001.csv.gz",
        "dp__load_id": "7",
    }
    assert reload.partition_path != first.partition_path
    assert JobInput.from_json(JobInput((first,)).to_json()) == JobInput((first,))
    with pytest.raises(ConfigError, match="load_id must be a positive integer"):
        JobLoad.create(key, "t", moment, load_id=0)


def test_uris_for_s3_and_the_local_store() -> None:
    s3 = JobEnv(ZONES)
    assert s3.uri("incoming", "a/b.csv") == "s3a://in-bucket/dev/incoming/a/b.csv"
    assert s3.uri("springboard") == "s3a://sb-bucket/"
    local = JobEnv(ZONES, local_root="/srv/store/")
    assert local.uri("operations", "r.json") == "file:///srv/store/ops-bucket/ops/r.json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "--INPUT is not valid JSON"),
        ('{"loads": []}', "must be a JSON list"),
        ('[{"source_key": "a/b.csv"}]', "missing key(s): destination_path, identifier"),
        (
            json.dumps([{**json.loads(JobInput((_load(),)).to_json())[0], "partition": "x"}]),
            "unknown key(s): partition",
        ),
        (JobInput((_load(),)).to_json().replace("20211201T112233Z", "2021-12-01"), "snapshot"),
        (JobInput((_load(),)).to_json().replace('"is_raw": false', '"is_raw": "no"'), "is_raw"),
        (JobInput((_load(),)).to_json().replace("cubic/ods_qlik/EDW", "../EDW"), "source_key"),
    ],
)
def test_bad_input_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        JobInput.from_json(text)


def test_duplicate_source_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="more than once"):
        JobInput((_load(), _load(is_raw=True)))


def test_bad_env_is_refused() -> None:
    doc = json.loads(JobEnv(ZONES).to_json())
    del doc["zones"]["operations"]
    with pytest.raises(ConfigError, match="no zone"):
        JobEnv.from_json(json.dumps(doc))
    doc = json.loads(JobEnv(ZONES).to_json())
    doc["bucket"] = "x"
    with pytest.raises(ConfigError, match="unknown key"):
        JobEnv.from_json(json.dumps(doc))
    with pytest.raises(ConfigError, match="absolute"):
        JobEnv(ZONES, local_root="relative/dir")
