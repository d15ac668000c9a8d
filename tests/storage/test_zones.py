"""One storage suite, run on the local directory store and on S3 through moto's server."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from data_platform.errors import ConfigError, StorageError
from data_platform.storage import get_zone

pytestmark = pytest.mark.usefixtures("storage_backend")


def _put(zone, key: str, data: bytes) -> None:
    zone.put(key, io.BytesIO(data))


def test_put_head_open_round_trip() -> None:
    zone = get_zone("incoming")
    before = datetime.now(UTC) - timedelta(seconds=5)
    _put(zone, "a/b/file.csv", b"hello\n")
    info = zone.head("a/b/file.csv")
    assert info is not None
    assert (info.key, info.size) == ("a/b/file.csv", 6)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    with zone.open("a/b/file.csv") as body:
        assert body.read() == b"hello\n"


def test_head_of_missing_key_is_none_and_open_raises() -> None:
    zone = get_zone("incoming")
    assert zone.head("nope.csv") is None
    with pytest.raises(StorageError, match="no such object"):
        zone.open("nope.csv")


def test_list_is_sorted_by_key_and_filtered_by_prefix() -> None:
    zone = get_zone("incoming")
    keys = ["t/EDW.A__ct/2.csv", "t/EDW.A/LOAD2.csv", "t/EDW.A/LOAD1.csv", "t/EDW.B/x", "u/y"]
    for key in keys:
        _put(zone, key, key.encode())
    assert [i.key for i in zone.list("t/")] == sorted(k for k in keys if k.startswith("t/"))
    assert [i.key for i in zone.list("t/EDW.A/")] == ["t/EDW.A/LOAD1.csv", "t/EDW.A/LOAD2.csv"]
    # A prefix that is not a directory boundary matches like S3 does.
    assert [i.key for i in zone.list("t/EDW.A")] == [
        "t/EDW.A/LOAD1.csv",
        "t/EDW.A/LOAD2.csv",
        "t/EDW.A__ct/2.csv",
    ]
    assert list(zone.list("missing/")) == []


def test_list_order_matches_byte_order_across_directories() -> None:
    zone = get_zone("incoming")
    keys = ["p/a-c", "p/a/b", "p/a.txt", "p/ab", "p/A"]
    for key in keys:
        _put(zone, key, b"x")
    assert [i.key for i in zone.list("p/")] == sorted(keys, key=lambda k: k.encode())


def test_put_overwrites_and_streams_large_objects() -> None:
    zone = get_zone("incoming")
    _put(zone, "big.bin", b"old")
    data = bytes(range(256)) * 40_000  # 10 MB, more than one multipart chunk on S3
    _put(zone, "big.bin", data)
    assert zone.head("big.bin").size == len(data)
    with zone.open("big.bin") as body:
        first = body.read(1000)
        rest = body.read()
    assert first + rest == data


def test_copy_and_move_between_zones() -> None:
    incoming, archive = get_zone("incoming"), get_zone("archive")
    _put(incoming, "x/f.csv", b"1")
    incoming.copy_to("x/f.csv", archive)
    assert incoming.head("x/f.csv") is not None and archive.head("x/f.csv") is not None
    _put(incoming, "x/g.csv", b"22")
    incoming.move_to("x/g.csv", archive)
    assert incoming.head("x/g.csv") is None
    with archive.open("x/g.csv") as body:
        assert body.read() == b"22"
    # A repeated move (after a crash between copy and delete, or a rerun) is a no-op.
    incoming.move_to("x/g.csv", archive)
    assert archive.head("x/g.csv").size == 2


def test_move_of_missing_object_raises() -> None:
    with pytest.raises(StorageError):
        get_zone("incoming").move_to("never/was.csv", get_zone("error"))


def test_delete_is_idempotent() -> None:
    zone = get_zone("incoming")
    _put(zone, "d/x", b"1")
    zone.delete("d/x")
    zone.delete("d/x")
    assert zone.head("d/x") is None
    assert list(zone.list("d/")) == []


def test_unicode_and_spaces_in_keys() -> None:
    zone = get_zone("incoming")
    key = "cubic/ods_qlik/EDW.ÜBER TABLE/LOAD 🔥.csv"
    _put(zone, key, b"ok")
    assert [i.key for i in zone.list("cubic/")] == [key]


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a//b", ""])
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        _put(get_zone("incoming"), key, b"x")


def test_unknown_zone() -> None:
    with pytest.raises(ConfigError, match="unknown zone 'landing'"):
        get_zone("landing")


def test_a_key_and_a_folder_of_the_same_name(storage_backend: str) -> None:
    zone = get_zone("incoming")
    _put(zone, "dir/a", b"1")
    if storage_backend == "s3":
        _put(zone, "dir/a/b", b"2")  # S3 has no folders
        assert [i.key for i in zone.list("dir/")] == ["dir/a", "dir/a/b"]
    else:
        with pytest.raises(StorageError, match="clashes with an existing key"):
            _put(zone, "dir/a/b", b"2")


def test_clean_partials_touches_no_object_nor_another_prefix(storage_backend: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from data_platform.storage.local import _host_id

    zone = get_zone("incoming")
    _put(zone, "src/a/x.csv", b"1")
    _put(zone, "other/y.csv", b"2")
    partials: list[Path] = []
    if storage_backend == "local":
        root = Path(zone.store.root) / zone.bucket  # type: ignore[attr-defined]
        ended = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()  # the pid of a writer that is gone
        name = f".{ended}-{_host_id()}-x.dp-partial"
        partials = [root / "src" / "a" / name, root / "other" / name]
        for partial in partials:
            partial.write_bytes(b"half")
    assert zone.clean_partials("src/") == len(partials[:1])
    assert [i.key for i in zone.list()] == ["other/y.csv", "src/a/x.csv"]
    assert [p.exists() for p in partials] == [False, True][: len(partials)]
