"""Moving local trees into zones."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from data_platform.storage.base import ObjectInfo
from data_platform.storage.zones import ZoneStore, get_zone

log = logging.getLogger(__name__)

_BLOCK = 1 << 20


@dataclass(frozen=True)
class UploadResult:
    uploaded: int
    skipped: int


def _digest(body: BinaryIO, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    for block in iter(lambda: body.read(_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


def same_content(path: Path, store: ZoneStore, info: ObjectInfo) -> bool:
    """Does the object `info` in `store` hold exactly the bytes of `path`? Sizes first;
    then the MD5 an S3 ETag of a single-part upload is; else both streams compared (a
    multipart ETag or the local store's version tag say nothing of the content)."""
    if info.size != path.stat().st_size:
        return False
    etag = info.etag or ""
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag):
        with path.open("rb") as local:
            if _digest(local, "md5") == etag:
                return True
    with path.open("rb") as local, store.open(info.key) as stored:
        return _digest(local, "sha256") == _digest(stored, "sha256")


def upload_tree(
    src_dir: Path,
    zone: str,
    *,
    prefix: str = "",
    overwrite: bool = False,
    skip: Collection[str] = (),
    check: Callable[[list[str]], None] | None = None,
) -> UploadResult:
    """Upload every file under `src_dir` to `zone` at `prefix + relative path`.

    An object that exists with the same content is skipped unless `overwrite`, so
    seeding twice does not rewrite objects (which would give them new versions and new
    loads); one with other content is replaced. Keys in `skip` are not uploaded at all.
    `check` sees the keys about to be uploaded before any is, and may refuse them by
    raising (the CLI refuses files that were ingested already, see `loads.relanding`)."""
    store = get_zone(zone)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    planned: list[tuple[Path, str]] = []
    skipped = 0
    for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(src_dir).as_posix()
        if key in skip:
            skipped += 1
            continue
        existing = store.head(key)
        if existing is not None and not overwrite and same_content(path, store, existing):
            skipped += 1
            continue
        planned.append((path, key))
    if check is not None:
        check([key for _, key in planned])
    for path, key in planned:
        with path.open("rb") as body:
            store.put(key, body)
        log.info("uploaded %s to %s", path, store.describe(key))
    return UploadResult(len(planned), skipped)
