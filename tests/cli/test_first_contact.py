"""A new user's first commands (issue 26 item 7): a database never migrated is named in
one line with the command that fixes it; a command run from inside the project finds
the project's data instead of starting an empty platform of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.settings import Settings, reset_settings


@pytest.mark.parametrize("command", [["run"], ["run", "--json"], ["web", "--port", "18051"]])
def test_a_database_never_migrated_is_one_line_naming_the_upgrade(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    reset_settings()
    done = CliRunner().invoke(cli, command)
    assert done.exit_code == 3
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        "Error: the metadata database has no tables yet: run `data-platform db upgrade` first"
    ]
    assert "relation" not in done.stderr and "SQL" not in done.stderr


def test_the_home_is_found_from_a_subdirectory_of_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / ".data" / "postgres").mkdir(parents=True)
    deep = project / "transform" / "models"
    (deep / ".data").mkdir(parents=True)  # a `.data` of another tool: not the platform's
    monkeypatch.delenv("DATA_PLATFORM_HOME", raising=False)
    monkeypatch.chdir(deep)
    assert Settings().home == project / ".data"
    monkeypatch.chdir(tmp_path)  # outside any project: a new home here
    assert Settings().home == tmp_path / ".data"
    monkeypatch.setenv("DATA_PLATFORM_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(deep)
    assert Settings().home == tmp_path / "elsewhere"  # the setting wins


def test_glue_run_without_pyspark_says_what_to_install(
    platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's install has no PySpark: the command names the install that has it."""
    import sys

    for name in [m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.startswith("data_platform.batch.cubic_qlik.spark")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "data_platform.jobs.runtime", raising=False)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark: ModuleNotFoundError
    done = CliRunner().invoke(
        cli, ["glue", "run", "ingest_incoming", "--OBJECT_KEY", "cubic/ods_qlik/X/LOAD00000001.csv"]
    )
    assert done.exit_code == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: `glue run` needs PySpark (pyspark is not installed) and Java 17: `make install` "
        "installs the full requirements (requirements.txt); `make demo` installs only the "
        "runtime's"
    )
