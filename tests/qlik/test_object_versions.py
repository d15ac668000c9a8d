"""A load applies the version of the file it recorded, and the archive and error zones
keep every file (issue 8, items 13 and 14). Each test runs on the local store and on S3."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from data_platform.batch.cubic_qlik.scan import scan_incoming
from data_platform.batch.cubic_qlik.source import ingest_qlik as ingest
from data_platform.db.engine import get_engine
from data_platform.db.models import Load
from data_platform.loads.moves import archive_key, error_key
from data_platform.storage import ObjectChangedError, get_zone
from tests.qlik.conftest import QlikTable, QlikWorld, seq

pytestmark = pytest.mark.usefixtures("storage_backend")

T = "2021-12-01 11:20:30"


def _loads(key: str) -> list[tuple[int, str]]:
    with get_engine().connect() as conn:
        return [
            (load_id, status)
            for load_id, status in conn.execute(
                select(Load.id, Load.status).where(Load.s3_key == key).order_by(Load.id)
            )
        ]


def _read(zone: str, key: str) -> bytes:
    with get_zone(zone).open(key) as body:
        return body.read()


def test_a_change_file_replaced_after_the_scan_is_a_new_load(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    key = sample.changes([(seq(1), "U", T, 1, "first version", T)])
    assert scan_incoming().new_loads == 1
    # Replicate (or an operator) writes the file again before the worker reads it.
    sample.changes([(seq(2), "U", T, 2, "second version", T)])
    result = ingest()
    # The recorded version is gone: nothing of it may be applied, least of all the new
    # content under the old load.
    assert (result.replaced, result.archived, result.rows) == (1, 1, 0)
    assert [r[:2] for r in sample.rows()] == [(1, "one"), (2, "two")]
    assert [status for _, status in _loads(key)] == ["archived"]
    assert key in qlik.keys("incoming")  # the new version waits for its own load
    summary = qlik.run()
    assert summary.scan.new_loads == 1
    assert [r[:2] for r in sample.rows()] == [(1, "one"), (2, "second version")]
    (old, _), (new, _) = _loads(key)
    assert [status for _, status in _loads(key)] == ["archived", "archived"]
    assert qlik.keys("incoming") == []
    # Only the applied version is in the archive, under its own load.
    assert archive_key(key, new) in qlik.keys("archive")
    assert archive_key(key, old) not in qlik.keys("archive")


def test_a_full_load_part_replaced_after_the_scan_is_a_new_load(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    key = sample.full_load([(3, "three", T)], part=2)
    scan_incoming()
    sample.full_load([(3, "three, fixed", T), (4, "four", T)], part=2)
    assert ingest().replaced == 1
    assert [r[0] for r in sample.rows()] == [1, 2]
    qlik.run()
    assert [r[:2] for r in sample.rows()] == [
        (1, "one"),
        (2, "two"),
        (3, "three, fixed"),
        (4, "four"),
    ]
    assert [status for _, status in _loads(key)] == ["archived", "archived"]


def test_a_reader_is_of_the_version_asked_for(qlik: QlikWorld) -> None:
    incoming = get_zone("incoming")
    incoming.put("cubic/ods_qlik/X/a.csv", io.BytesIO(b"old"))
    old = incoming.head("cubic/ods_qlik/X/a.csv")
    assert old is not None and old.etag
    with incoming.open(old.key, old) as body:
        incoming.put(old.key, io.BytesIO(b"new!"))
        # An open reader keeps reading the version it was opened on.
        assert body.read() == b"old"
    with pytest.raises(ObjectChangedError, match="replaced"):
        incoming.open(old.key, old)
    new = incoming.head(old.key)
    assert new is not None and new.etag != old.etag and not old.same_version(new)
    with incoming.open(old.key, new) as body:
        assert body.read() == b"new!"


def test_a_reload_keeps_every_snapshots_first_part_in_the_archive(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    key = "cubic/ods_qlik/TEST.SAMPLE/LOAD00000001.csv.gz"
    first = _read("archive", archive_key(key, _loads(key)[0][0]))
    qlik.later()  # a reload: the same key, a newer file
    sample.full_load([(7, "seven", T)])
    summary = qlik.run()
    assert summary.scan.new_snapshots == 1
    assert [r[0] for r in sample.rows()] == [7]
    (old, _), (new, _) = _loads(key)
    assert _read("archive", archive_key(key, old)) == first
    assert _read("archive", archive_key(key, new)) != first
    # The .dfm of each snapshot's part lies beside it.
    dfm = key.replace(".csv.gz", ".dfm")
    assert {archive_key(dfm, old), archive_key(dfm, new)} <= set(qlik.keys("archive"))


def test_errored_files_are_kept_by_landing_time_and_retry_finds_them(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    from data_platform.batch.cubic_qlik.source import companions
    from data_platform.loads.retry import retry_load

    def landed(load_id: int):
        with get_engine().connect() as conn:
            return conn.scalar(select(Load.s3_modified).where(Load.id == load_id))

    qlik.run()
    key = sample.changes([(seq(1), "I", T, "x", "bad", T)])
    qlik.run()
    ((load_id, status),) = _loads(key)
    assert status == "errored"
    first = error_key(key, landed(load_id))
    assert first in qlik.keys("error") and key not in qlik.keys("error")
    first_bad = _read("error", first)
    from data_platform.status import platform_status

    status_now = platform_status()
    (table,) = [t for t in status_now.tables if t.name == "cubic_ods_qlik__test_sample"]
    assert table.latest_error_file == first
    assert f"  its file: {get_zone('error').describe(first)}" in status_now.render()
    # A second file, still bad, put back under the same key and retried: the first copy
    # is stale (the error zone holds what failed and is not fixed), the second one, when
    # it fails too, is filed under its own landing time.
    qlik.later()
    sample.changes([(seq(1), "I", T, "y", "still bad", T)])
    assert retry_load(load_id, companions) == "using the file put back in incoming"
    assert first not in qlik.keys("error")
    qlik.run()
    assert _loads(key) == [(load_id, "errored")]
    second = error_key(key, landed(load_id))
    assert second != first
    assert _read("error", second) != first_bad
    assert qlik.filed("error").count(key) == 1
    # retry with nothing put back moves the newest copy back from the error zone.
    assert retry_load(load_id, companions) == "moved the file back from the error zone"
    assert qlik.filed("error").count(key) == 0
    qlik.run()
    assert _loads(key) == [(load_id, "errored")]
    # The fixed file is applied in the same load.
    qlik.later()
    sample.changes([(seq(1), "I", T, 5, "fixed", T)])
    retry_load(load_id, companions)
    qlik.run()
    assert _loads(key) == [(load_id, "archived")]
    assert [r[0] for r in sample.rows()] == [1, 2, 5]
    assert qlik.filed("error") == []  # no stale copy of the fixed file


def test_files_archived_under_their_incoming_key_are_still_found(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """Archives written before keys carried the load: a rebuild re-applies from them."""
    qlik.run()
    change = sample.changes([(seq(1), "U", T, 1, "changed", T)])
    qlik.run()
    archive = get_zone("archive")
    change_id = _loads(change)[0][0]
    for name in (change, change.replace(".csv.gz", ".dfm")):
        archive.copy_to(archive_key(name, change_id), archive, name)
        archive.delete(archive_key(name, change_id))
    # A late part of the snapshot: the table is rebuilt from the archive.
    sample.full_load([(3, "three", T)], part=2)
    summary = qlik.run()
    assert summary.ingest.rebuilds == 1
    assert [r[:2] for r in sample.rows()] == [(1, "changed"), (2, "two"), (3, "three")]
