"""A local directory that behaves like an S3 bucket: `<root>/<bucket>/<key>`."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import psutil

from data_platform.errors import StorageError
from data_platform.storage.base import ObjectChangedError, ObjectInfo, check_key

log = logging.getLogger(__name__)

# Files the local store writes while a put or copy is in flight; never listed. Named
# `.<pid>-<host>-<random>.dp-partial` after the writing process and host, so a cleaner can
# tell a killed writer's file from a live one's (`_abandoned`).
_PARTIAL_SUFFIX = ".dp-partial"
_PARTIAL_NAME = re.compile(r"^\.(\d+)-([0-9a-f]{8})-[^/]*\.dp-partial$")


def _host_id() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, bucket: str) -> str:
        return str(self._bucket_dir(bucket))

    def _bucket_dir(self, bucket: str) -> Path:
        if not bucket or "/" in bucket or bucket in (".", ".."):
            raise StorageError(f"invalid bucket name {bucket!r}")
        return self.root / bucket

    def _path(self, bucket: str, key: str) -> Path:
        return self._bucket_dir(bucket) / check_key(key)

    @staticmethod
    def _info(key: str, stat: os.stat_result) -> ObjectInfo:
        modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        etag = f"{stat.st_mtime_ns:x}-{stat.st_ino:x}"
        return ObjectInfo(key=key, size=stat.st_size, last_modified=modified, etag=etag)

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        base = self._bucket_dir(bucket)
        if not base.is_dir():
            return
        # Walk only the directory the prefix points into, then filter by the full prefix,
        # so listing one table's prefix does not read the whole bucket.
        start_dir = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not start_dir.is_dir():
            return
        yield from self._walk(base, start_dir, prefix)

    def _walk(self, base: Path, directory: Path, prefix: str) -> Iterator[ObjectInfo]:
        # S3 sorts by key in UTF-8 byte order; a directory walk sorted by "name + /" for
        # directories gives the same order without materialising the whole tree.
        entries = []
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.endswith(_PARTIAL_SUFFIX):
                    continue
                sort_name = entry.name + "/" if entry.is_dir() else entry.name
                entries.append((sort_name.encode(), entry))
        for _, entry in sorted(entries, key=lambda pair: pair[0]):
            rel = Path(entry.path).relative_to(base).as_posix()
            if entry.is_dir():
                if (rel + "/").startswith(prefix) or prefix.startswith(rel + "/"):
                    yield from self._walk(base, Path(entry.path), prefix)
            elif rel.startswith(prefix):
                yield self._info(rel, entry.stat())

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._path(bucket, key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        return self._info(key, stat) if path.is_file() else None

    def open(self, bucket: str, key: str, expect: ObjectInfo | None = None) -> BinaryIO:
        try:
            body = self._path(bucket, key).open("rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise StorageError(f"no such object: {self.describe(bucket)}/{key}") from exc
        if expect is not None:
            # fstat of the open file: a replace after this point does not change what
            # this reader reads (the old inode stays readable).
            found = self._info(key, os.fstat(body.fileno()))
            if not expect.same_version(found):
                body.close()
                raise ObjectChangedError(
                    f"{self.describe(bucket)}/{key} was replaced: {_version(found)}, "
                    f"expected {_version(expect)}"
                )
        return body

    def put(self, bucket: str, key: str, body: BinaryIO) -> None:
        path = self._path(bucket, key)
        try:
            self._write(path, lambda out: shutil.copyfileobj(body, out, 1 << 20))
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            # S3 can hold both `a` and `a/b`; a directory tree cannot.
            raise StorageError(
                f"cannot store {key!r} in {self.describe(bucket)}: it clashes with an existing "
                "key used as a folder (or a folder used as a key)"
            ) from exc

    def clean_partials(self, bucket: str, prefix: str) -> int:
        """Delete the temporary files of killed writers under `prefix` (every folder
        below it), whatever their age; returns how many. A file whose writer process
        still runs is left (`_abandoned`)."""
        base = self._bucket_dir(bucket)
        top = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        removed = 0
        for directory, _, files in os.walk(top):
            for name in files:
                path = Path(directory, name)
                if name.endswith(_PARTIAL_SUFFIX) and (
                    path.relative_to(base).as_posix().startswith(prefix)
                ):
                    removed += _remove_if_abandoned(path)
        return removed

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        with self.open(src_bucket, src_key) as src:
            self.put(dst_bucket, dst_key, src)

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        # Drop directories the delete left empty, as S3 has no directories.
        parent, base = path.parent, self._bucket_dir(bucket)
        while parent != base:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    @staticmethod
    def _write(path: Path, writer) -> None:
        # Write beside the target and rename: a reader sees the whole object or none.
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(path.parent)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{os.getpid()}-{_host_id()}-", suffix=_PARTIAL_SUFFIX
        )
        try:
            with os.fdopen(fd, "wb") as out:
                writer(out)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _version(info: ObjectInfo) -> str:
    return f"{info.size} bytes, modified {info.last_modified.isoformat()}"


# A partial file older than this was left by a killed writer (a live one renames its file
# when done, and a write of one object takes far less). Only for files whose writer cannot
# be checked (another host's, or named before writers were named in them).
STALE_PARTIAL_SECONDS = 3600


def _abandoned(path: Path) -> bool:
    """Was the partial file at `path` left by a writer that is gone? Its name gives the
    writer's pid and host: on this host, the writer is gone when no such process runs, it
    is a zombie, or the process under that pid started after the file was last written
    (the pid was reused). Another host's file, or an unnamed one, counts as abandoned once
    STALE_PARTIAL_SECONDS old. This process's own files are never abandoned (another
    thread may be writing). Raises FileNotFoundError when the file is gone."""
    modified = path.stat().st_mtime
    match = _PARTIAL_NAME.match(path.name)
    if match is None or match[2] != _host_id():
        return time.time() - modified > STALE_PARTIAL_SECONDS
    pid = int(match[1])
    if pid == os.getpid():
        return False
    try:
        writer = psutil.Process(pid)
        return writer.status() == psutil.STATUS_ZOMBIE or writer.create_time() > modified + 1
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False  # another user's live process: leave its file


def _remove_if_abandoned(path: Path) -> int:
    """Delete `path` when `_abandoned`; 1 if this call deleted it, else 0."""
    try:
        if not _abandoned(path):
            return 0
        path.unlink()
    except FileNotFoundError:
        return 0  # renamed into place, or another process cleaned it up first
    log.warning("removed %s, left by a stopped writer", path)
    return 1


_cleaned: set[Path] = set()


def _remove_stale_partials(directory: Path) -> None:
    """Delete temporary files that a killed process left in `directory`: once per
    directory and process, at its first write (a scan per write would grow with it)."""
    if directory in _cleaned:
        return
    _cleaned.add(directory)
    for entry in os.scandir(directory):
        if entry.name.endswith(_PARTIAL_SUFFIX) and entry.is_file():
            _remove_if_abandoned(Path(entry.path))
