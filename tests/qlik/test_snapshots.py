"""Reloads: a new LOAD00000001 starts a snapshot, whatever order files become visible in."""

from __future__ import annotations

import os
import time

from click.testing import CliRunner

from data_platform.batch.cubic_qlik.scan import scan_incoming
from data_platform.cli.main import cli
from data_platform.loads.moves import archive_key
from data_platform.storage import get_zone
from tests.qlik.conftest import PREFIX, QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def _set_mtime(key: str, seconds: float) -> None:
    incoming = get_zone("incoming")
    path = incoming.store.root / incoming.bucket / key  # the local store's file
    os.utime(path, (seconds, seconds))


def test_change_listed_before_its_full_load_is_visible_is_kept(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    qlik.later()
    change = sample.changes([(seq(9), "I", T, 99, "after reload", T)], name="20211202-000000001")
    scan_incoming()  # the change is listed while the new full load is still uploading
    load1 = sample.full_load([(10, "ten", T)])
    # S3 dates a multipart upload by its start: before the change file.
    _set_mtime(load1, get_zone("incoming").head(change).last_modified.timestamp() - 0.5)
    summary = qlik.run()
    assert (summary.scan.new_snapshots, summary.ingest.superseded) == (1, 0)
    assert [r[0] for r in sample.rows()] == [10, 99]


def test_reload_after_an_errored_full_load_part(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.full_load([("bad", "two-bad", T)], part=2)
    qlik.run()
    assert [s for _, s, _ in qlik.loads()] == ["archived", "errored"]
    qlik.later()
    sample.full_load([(10, "ten", T)], part=1)  # Replicate reloads the table
    sample.full_load([(20, "twenty", T)], part=2)
    summary = qlik.run()
    assert (summary.scan.new_snapshots, summary.scan.new_loads) == (1, 2)
    assert [r[0] for r in sample.rows()] == [10, 20]
    assert qlik.keys("incoming") == []


def test_retry_repairs_a_bad_first_part_in_the_same_snapshot(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """The fixed LOAD00000001 is applied in its snapshot, then the parts and changes that
    waited: nothing superseded, nothing lost."""
    sample.full_load([("bad", "x", T)])  # the first part itself is bad
    sample.full_load([(2, "two", T)], part=2)
    sample.changes([(seq(1), "U", T, 1, "changed after the load", T)], name="20211201-000000001")
    qlik.run()
    assert [s for _, s, _ in qlik.loads()] == ["errored", "ready", "ready"]
    qlik.later()
    sample.full_load([(1, "fixed", T)])  # the fixed file, put back under its key
    summary = qlik.run()  # held for retry: no new snapshot, nothing superseded
    assert (summary.scan.new_snapshots, summary.scan.new_loads) == (0, 0)
    result = CliRunner().invoke(cli, ["cubic-qlik", "retry", "1"])
    assert result.exit_code == 0, result.stderr
    summary = qlik.run()
    assert (summary.scan.new_snapshots, summary.ingest.superseded) == (0, 0)
    assert [r[:2] for r in sample.rows()] == [(1, "changed after the load"), (2, "two")]
    assert set(qlik.statuses().values()) == {"archived"}


def test_retry_repairs_a_bad_later_part_and_a_bad_change_file(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.full_load([("bad", "x", T)], part=2)
    sample.changes([(seq(1), "I", T, 5, "five", T)], name="20211201-000000001")
    qlik.run()
    assert [r[0] for r in sample.rows()] == [1, 2]  # part 1 only; the rest waits
    qlik.later()
    sample.full_load([(3, "three", T)], part=2)
    assert CliRunner().invoke(cli, ["cubic-qlik", "retry", "2"]).exit_code == 0
    qlik.run()
    assert [r[0] for r in sample.rows()] == [1, 2, 3, 5]
    # A bad change file, then a good one after it: the table waits, then both apply.
    bad = sample.changes([(seq(2), "X", T, 6, "six", T)], name="20211201-000000002")
    sample.changes([(seq(3), "U", T, 6, "six later", T)], name="20211201-000000003")
    qlik.run()
    assert qlik.statuses()[bad] == "errored"
    assert [r[0] for r in sample.rows()] == [1, 2, 3, 5]
    qlik.later()
    sample.changes([(seq(2), "I", T, 6, "six", T)], name="20211201-000000002")
    load_id = next(i for i, (k, _, _) in enumerate(qlik.loads(), start=1) if k == bad)
    assert CliRunner().invoke(cli, ["cubic-qlik", "retry", str(load_id)]).exit_code == 0
    qlik.run()
    assert sample.rows()[-1][:2] == (6, "six later")
    assert set(qlik.statuses().values()) == {"archived"}


def test_a_newer_file_under_the_same_key_is_not_archived_with_the_old_load(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    scan_incoming()  # LOAD00000001 recorded, not yet ingested
    qlik.later()
    sample.full_load([(30, "reloaded", T)])  # lands under the same key before ingest
    summary = qlik.run()
    # The old load is superseded (its file is gone); the new one is applied, not lost.
    assert (summary.scan.new_snapshots, summary.ingest.superseded) == (1, 1)
    assert [r[:2] for r in sample.rows()] == [(30, "reloaded")]
    assert qlik.keys("incoming") == []


def test_change_applied_before_its_full_load_was_visible_is_applied_again(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    # The first snapshot was written two seconds ago: the archive's copy of the change,
    # dated by the store when it is made, is over a second newer (what a wait would do).
    _set_mtime(f"{PREFIX}TEST.SAMPLE/LOAD00000001.csv.gz", time.time() - 2)
    qlik.run()
    change = sample.changes([(seq(9), "I", T, 99, "after reload", T)], name="20211202-000000001")
    qlik.run()  # applied and archived on the old snapshot
    assert [r[0] for r in sample.rows()] == [1, 2, 99]
    load1 = sample.full_load([(10, "ten", T)])
    archived_key = archive_key(change, qlik.load_ids()[change])
    archived = get_zone("archive").head(archived_key).last_modified.timestamp()
    _set_mtime(load1, archived - 0.5)  # the reload started before the change was written
    summary = qlik.run()
    assert (summary.scan.new_snapshots, summary.scan.new_loads) == (1, 2)
    assert [r[0] for r in sample.rows()] == [10, 99]
    assert qlik.keys("incoming") == []
    assert [k for k, _, _ in qlik.loads()].count(change) == 2  # history kept, applied twice
