"""The object store interface both backends implement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from data_platform.errors import StorageError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # timezone-aware, UTC


class ObjectStore(Protocol):
    """Bucket-level operations. Keys are full keys inside the bucket."""

    def describe(self, bucket: str) -> str:
        """A human name for the bucket (`s3://b` or a directory)."""
        ...

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key, fetched page by page."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def open(self, bucket: str, key: str) -> BinaryIO:
        """A streaming reader; the caller closes it."""
        ...

    def put(self, bucket: str, key: str, body: BinaryIO) -> None: ...

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None: ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete; deleting a missing key is not an error (as on S3)."""
        ...


def check_key(key: str) -> str:
    """Refuse keys that would escape a prefix or a directory: `..`, empty parts, NUL."""
    if not key or "\x00" in key or key.startswith("/"):
        raise StorageError(f"invalid object key {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"invalid object key {key!r}")
    return key
