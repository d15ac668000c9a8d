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
    # The version: S3's ETag without quotes; the local store's "<mtime ns>-<inode>" (a
    # replace renames a new file into place, so a new inode). None when not known.
    etag: str | None = None

    def same_version(self, other: ObjectInfo) -> bool:
        """Is `other` the same version of the object? By ETag (and size) when both have
        one; else by size and time, within a second, since S3's HEAD answers last-modified
        to the second and its listings to the millisecond."""
        if self.size != other.size:
            return False
        if self.etag and other.etag:
            return self.etag == other.etag
        return abs((self.last_modified - other.last_modified).total_seconds()) < 1


class ObjectChangedError(StorageError):
    """The object under a key is no longer the version the caller expected."""


class ObjectStore(Protocol):
    """Bucket-level operations. Keys are full keys inside the bucket."""

    def describe(self, bucket: str) -> str:
        """A human name for the bucket (`s3://b` or a directory)."""
        ...

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key, fetched page by page."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def open(self, bucket: str, key: str, expect: ObjectInfo | None = None) -> BinaryIO:
        """A streaming reader; the caller closes it. With `expect`, the reader is of that
        version or ObjectChangedError is raised (checked atomically with the open)."""
        ...

    def put(self, bucket: str, key: str, body: BinaryIO) -> None: ...

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None: ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete; deleting a missing key is not an error (as on S3)."""
        ...

    def clean_partials(self, bucket: str, prefix: str) -> int:
        """Delete what killed writers left under `prefix` (never one a live writer is
        still writing); returns how many. The local store's temporary files; nothing on
        S3, where an unfinished put is an incomplete multipart upload, never an object."""
        ...


def check_key(key: str) -> str:
    """Refuse keys that would escape a prefix or a directory: `..`, empty parts, NUL."""
    if not key or "\x00" in key or key.startswith("/"):
        raise StorageError(f"invalid object key {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"invalid object key {key!r}")
    return key
