"""S3 (or MinIO, or moto) through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from data_platform.errors import StorageError
from data_platform.storage.base import ObjectChangedError, ObjectInfo, check_key


def _error(exc: Exception, bucket: str, key: str | None = None) -> StorageError:
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return StorageError(f"bucket does not exist: s3://{bucket}")
        if code in ("NoSuchKey", "404"):
            return StorageError(f"no such object: {where}")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageError(f"access denied to {where} ({code})")
        return StorageError(f"S3 error on {where}: {code or exc}")
    return StorageError(f"S3 error on {where}: {exc}")


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


def _info(key: str, response: dict[str, Any]) -> ObjectInfo:
    """ObjectInfo from a HEAD or GET response."""
    return ObjectInfo(
        key, response["ContentLength"], response["LastModified"], _etag(response.get("ETag"))
    )


class S3ObjectStore:
    def __init__(self, client: Any, page_size: int = 1000) -> None:
        self.client = client
        self.page_size = page_size

    def describe(self, bucket: str) -> str:
        return f"s3://{bucket}"

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
            ):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        obj["Key"], obj["Size"], obj["LastModified"], _etag(obj.get("ETag"))
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, bucket) from exc

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise _error(exc, bucket, key) from exc
        except BotoCoreError as exc:
            raise _error(exc, bucket, key) from exc
        return _info(key, response)

    def open(self, bucket: str, key: str, expect: ObjectInfo | None = None) -> BinaryIO:
        args: dict[str, Any] = {"Bucket": bucket, "Key": check_key(key)}
        if expect is not None and expect.etag:
            # S3 checks the version and serves it in one request (412 otherwise).
            args["IfMatch"] = f'"{expect.etag}"'
        try:
            response = self.client.get_object(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise ObjectChangedError(f"s3://{bucket}/{key} was replaced") from exc
            raise _error(exc, bucket, key) from exc
        except BotoCoreError as exc:
            raise _error(exc, bucket, key) from exc
        if expect is not None and not expect.same_version(_info(key, response)):
            response["Body"].close()
            raise ObjectChangedError(f"s3://{bucket}/{key} was replaced")
        return response["Body"]

    def put(self, bucket: str, key: str, body: BinaryIO) -> None:
        try:
            # upload_fileobj streams in parts: memory stays flat for large files.
            self.client.upload_fileobj(body, bucket, check_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, bucket, key) from exc
        except Exception as exc:  # s3transfer wraps ClientError in its own types
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise _error(cause, bucket, key) from exc
            raise

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        try:
            self.client.copy(
                {"Bucket": src_bucket, "Key": check_key(src_key)}, dst_bucket, check_key(dst_key)
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, src_bucket, src_key) from exc

    def clean_partials(self, bucket: str, prefix: str) -> int:
        """Nothing to do: a killed upload leaves no object, never a listed key. (A large one
        leaves an incomplete multipart upload, invisible but stored until aborted: a
        bucket lifecycle rule AbortIncompleteMultipartUpload ends those.)"""
        return 0

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=check_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, bucket, key) from exc
