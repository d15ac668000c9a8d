"""Zones: a bucket plus a prefix on one backend. Keys passed in are relative to the zone."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from data_platform.errors import ConfigError
from data_platform.settings import ZONES, Settings, get_settings, on_reset
from data_platform.storage.base import ObjectInfo, ObjectStore, check_key


@dataclass(frozen=True)
class ZoneStore:
    name: str
    store: ObjectStore
    bucket: str
    prefix: str  # "" or ending in "/"

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def describe(self, key: str = "") -> str:
        return f"{self.store.describe(self.bucket)}/{self.prefix}{key}"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.store.list(self.bucket, self.prefix + prefix):
            yield dataclasses.replace(info, key=info.key[len(self.prefix) :])

    def head(self, key: str) -> ObjectInfo | None:
        info = self.store.head(self.bucket, self._full(key))
        return dataclasses.replace(info, key=key) if info else None

    def open(self, key: str, expect: ObjectInfo | None = None) -> BinaryIO:
        """A streaming reader (the caller closes it); of version `expect` when given, else
        ObjectChangedError."""
        return self.store.open(self.bucket, self._full(key), expect)

    def put(self, key: str, body: BinaryIO) -> None:
        self.store.put(self.bucket, self._full(key), body)

    def delete(self, key: str) -> None:
        self.store.delete(self.bucket, self._full(key))

    def clean_partials(self, prefix: str) -> int:
        """Delete the temporary files killed writers left under `prefix` (a source's
        prefix), whatever their age, sparing any whose writer still runs; returns how
        many. Sources call it when they start landing (pedestrian and DMAP fetch, totesys
        extract, Kafka consume): a killed fetch's file never outlives the next fetch."""
        return self.store.clean_partials(self.bucket, self.prefix + prefix)

    def copy_to(self, key: str, dest: ZoneStore, dest_key: str | None = None) -> None:
        if dest.store is not self.store:
            with self.open(key) as body:
                dest.put(dest_key or key, body)
            return
        self.store.copy(self.bucket, self._full(key), dest.bucket, dest._full(dest_key or key))

    def move_to(self, key: str, dest: ZoneStore, dest_key: str | None = None) -> None:
        """Copy then delete. Safe to repeat: a move interrupted after the copy completes
        on the next try (the source is gone but the destination holds the object)."""
        if self.head(key) is None and dest.head(dest_key or key) is not None:
            return
        self.copy_to(key, dest, dest_key)
        self.delete(key)


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return prefix + "/" if prefix else ""


@functools.cache
def _backend(kind: str, root: str, endpoint: str | None) -> ObjectStore:
    if kind == "local":
        from pathlib import Path

        from data_platform.storage.local import LocalObjectStore

        return LocalObjectStore(Path(root))
    import boto3
    from botocore.config import Config

    from data_platform.storage.s3 import S3ObjectStore

    config = Config(retries={"max_attempts": 3, "mode": "standard"})
    return S3ObjectStore(boto3.client("s3", endpoint_url=endpoint, config=config))


def get_zone(name: str, settings: Settings | None = None) -> ZoneStore:
    settings = settings or get_settings()
    if name not in ZONES:
        raise ConfigError(f"unknown zone {name!r} (zones: {', '.join(ZONES)})")
    prefix = _normalise_prefix(settings.prefix(name))
    if settings.uses_s3:
        bucket = settings.bucket(name)
        if not bucket:
            raise ConfigError(
                f"zone {name!r} has no bucket: set S3_BUCKET_{name.upper()} "
                "(S3 is in use because another S3_BUCKET_* is set)"
            )
        return ZoneStore(name, _backend("s3", "", settings.s3_endpoint_url), bucket, prefix)
    root = str(settings.home / "storage")
    return ZoneStore(name, _backend("local", root, None), name, prefix)


@on_reset
def reset_storage() -> None:
    """Forget the backends: the next `get_zone` makes them with the settings of then."""
    _backend.cache_clear()
