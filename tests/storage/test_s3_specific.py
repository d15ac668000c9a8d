"""What only the S3 backend has: pagination, missing buckets, partial configuration."""

from __future__ import annotations

import io

import boto3
import pytest

from data_platform.errors import ConfigError, StorageError
from data_platform.settings import reset_settings
from data_platform.storage import get_zone
from data_platform.storage.s3 import S3ObjectStore


def test_listing_follows_pages(s3_env: dict[str, str], moto_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = s3_env["archive"]
    keys = [f"k/{i:04d}" for i in range(25)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    store = S3ObjectStore(client, page_size=4)
    assert [i.key for i in store.list(bucket, "k/")] == keys


def test_zone_prefix_is_applied_and_hidden(s3_env: dict[str, str], moto_endpoint: str) -> None:
    get_zone("incoming").put("a.csv", io.BytesIO(b"x"))
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    listed = client.list_objects_v2(Bucket=s3_env["incoming"])["Contents"]
    assert [o["Key"] for o in listed] == ["dev/incoming/a.csv"]
    assert [i.key for i in get_zone("incoming").list()] == ["a.csv"]


def test_missing_bucket_is_one_clear_error(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_BUCKET_ERROR", "no-such-bucket-here")
    reset_settings()
    with pytest.raises(StorageError, match=r"bucket does not exist: s3://no-such-bucket-here"):
        list(get_zone("error").list())
    with pytest.raises(StorageError, match=r"bucket does not exist"):
        get_zone("error").put("x", io.BytesIO(b"1"))


def test_zone_without_bucket_when_s3_is_used(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("S3_BUCKET_SPRINGBOARD")
    reset_settings()
    with pytest.raises(ConfigError, match="set S3_BUCKET_SPRINGBOARD"):
        get_zone("springboard")
