"""Landing an ingested file again says what it would do, and does it only with --force."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from data_platform.cli.main import cli
from tests.qlik.conftest import QlikTable, QlikWorld


def test_a_file_ingested_before_is_refused_without_force(
    qlik: QlikWorld, sample: QlikTable, tmp_path: Path
) -> None:
    qlik.run()
    src = tmp_path / "again"
    shutil.copytree(qlik.files, src)
    args = ["storage", "upload", str(src), "--zone", "incoming", "--prefix", "cubic/ods_qlik"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: 1 file(s) were ingested already; landing again makes: ")
    assert (
        "cubic/ods_qlik/TEST.SAMPLE/LOAD00000001.csv.gz (load 1, archived): a new load and a "
        "new snapshot: the table is reloaded from it" in line
    )
    assert line.endswith(". Pass --force to land them")
    assert qlik.keys("incoming") == []  # nothing landed
    result = CliRunner().invoke(cli, [*args, "--force"])
    assert (result.exit_code, result.stdout) == (
        0,
        "uploaded 2 file(s), skipped 0 already present\n",
    )
    summary = qlik.run()
    assert (summary.scan.new_loads, summary.scan.new_snapshots) == (1, 1)


def test_a_fixed_file_goes_back_by_the_command_the_messages_give(
    qlik: QlikWorld, sample: QlikTable, tmp_path: Path
) -> None:
    """Recovery as documented (issue 26 item 5): the errored load's `loads show` and
    `status` give the commands; the upload they name lands the fixed file without
    --force (it is the errored load's fix, not a new load), and `retry` applies it."""
    from tests.qlik.conftest import seq

    T = "2021-12-01 11:20:30"
    qlik.run()
    bad = sample.changes([(seq(1), "I", T, "not a number", "x", T)], name="20211201-000000001")
    qlik.run()
    load_id = qlik.load_ids()[bad]
    shown = CliRunner().invoke(cli, ["loads", "show", str(load_id)]).stdout
    folder, _, name = bad.rpartition("/")
    hint = (
        f"to retry: put the fixed {name} back under its key (`data-platform storage upload "
        f"DIR --zone incoming --prefix {folder}`, DIR holding it), then `data-platform retry "
        f"{load_id}`"
    )
    assert hint in shown
    assert hint in CliRunner().invoke(cli, ["status"]).stdout
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    path = sample.changes([(seq(1), "I", T, 3, "three", T)], name="20211201-000000001", land=False)
    local = qlik.files / path.removeprefix("cubic/ods_qlik/")
    for found in local.parent.glob("20211201-000000001.*"):
        shutil.copy(found, fixed / found.name)
    upload = CliRunner().invoke(
        cli, ["storage", "upload", str(fixed), "--zone", "incoming", "--prefix", folder]
    )
    assert upload.exit_code == 0, upload.stderr
    assert CliRunner().invoke(cli, ["retry", str(load_id)]).exit_code == 0
    summary = qlik.run()
    assert (summary.scan.new_loads, summary.ingest.archived, summary.ingest.errored) == (0, 1, 0)
    assert [row[:2] for row in sample.rows()] == [(1, "one"), (2, "two"), (3, "three")]
