"""The newer sources' commands keep the documented exit codes: 2 for a wrong argument,
3 for a database that is down."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.settings import Settings, reset_settings


def test_a_reversed_fetch_window_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli, ["pedestrian", "fetch", "--since", "2026-11-01", "--until", "2026-10-01"]
    )
    assert result.exit_code == 2
    assert "is not after --since 2026-11-01" in result.output


def test_an_unreachable_totesys_source_exits_3(
    platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOTESYS_DATABASE_URL", "postgresql://reader:secret@127.0.0.1:9/totesys")
    reset_settings()
    result = CliRunner().invoke(cli, ["totesys", "extract"])
    assert result.exit_code == 3
    assert "totesys source unreachable" in result.output and "secret" not in result.output


@pytest.mark.slow
def test_a_transform_selecting_nothing_is_a_usage_error(platform: Settings) -> None:
    result = CliRunner().invoke(cli, ["transform", "--select", "no_such_model"])
    assert result.exit_code == 2
    assert "no_such_model matches no model or test" in result.output
    assert "transform ok" not in result.stderr  # never a success line before the error
    assert "no_such_model selects no model or test" in result.stderr


def test_a_database_never_migrated_says_to_upgrade(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    reset_settings()
    result = CliRunner().invoke(cli, ["cubic-qlik", "evolve-table", "--table", "EDW.SAMPLE"])
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        'Error: database: relation "source_tables" does not exist (is the database migrated? '
        "data-platform db upgrade)"
    ]
