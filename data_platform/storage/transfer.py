"""Moving local trees into zones."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from data_platform.storage.zones import get_zone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadResult:
    uploaded: int
    skipped: int


def upload_tree(
    src_dir: Path,
    zone: str,
    *,
    prefix: str = "",
    overwrite: bool = False,
    skip: Collection[str] = (),
) -> UploadResult:
    """Upload every file under `src_dir` to `zone` at `prefix + relative path`.

    An object that exists with the same size is skipped unless `overwrite`, so seeding
    twice does not rewrite objects (which would give them new last-modified times).
    Keys in `skip` are not uploaded at all.
    """
    store = get_zone(zone)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    uploaded = skipped = 0
    for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(src_dir).as_posix()
        if key in skip:
            skipped += 1
            continue
        existing = store.head(key)
        if existing is not None and existing.size == path.stat().st_size and not overwrite:
            skipped += 1
            continue
        with path.open("rb") as body:
            store.put(key, body)
        log.info("uploaded %s to %s", path, store.describe(key))
        uploaded += 1
    return UploadResult(uploaded, skipped)
