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
