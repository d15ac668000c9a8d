"""`data-platform transform`: the command, its exit codes, and the password kept secret."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from data_platform.cli.transform import transform
from data_platform.settings import get_settings, reset_settings
from tests.transform.conftest import insert_counts, insert_location

SECRET = "s3cret-Pw-4711"


def test_help_names_the_option_and_an_example() -> None:
    result = CliRunner().invoke(transform, ["--help"])

    assert result.exit_code == 0
    assert "--select" in result.output and "data-platform transform --select" in result.output


@pytest.mark.slow
def test_exit_0_when_all_passed_1_naming_the_failed_test(
    pg, db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The embedded server trusts local connections: a password in the URL is accepted,
    # so we can check that it never shows.
    with_password = make_url(db_url).set(password=SECRET).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", with_password)
    reset_settings()
    insert_location(pg, 1)
    insert_counts(pg, [(1, date(2024, 5, 1), 8, 10)])
    caplog.set_level(logging.DEBUG, logger="data_platform.transform")
    runner = CliRunner()

    ok = runner.invoke(transform, ["--select", "source:pedestrian"])

    assert ok.exit_code == 0, ok.output
    assert "assert_no_negative_counts" in ok.stdout and ok.stderr == ""
    assert "transform ok" in ok.stdout

    insert_counts(pg, [(1, date(2024, 5, 1), 9, -3)])
    failed = runner.invoke(transform, ["-s", "assert_no_negative_counts"])

    assert failed.exit_code == 1
    assert failed.stderr == (
        "Error: transform failed: test assert_no_negative_counts failed: 1 failing row\n"
    )
    assert "test assert_no_negative_counts failed: 1 failing rows" in caplog.messages
    # Never printed, logged, nor written under the data home (dbt's logs and target).
    assert SECRET not in ok.output + failed.output + caplog.text
    written = [p for p in (get_settings().home / "dbt").rglob("*") if p.is_file()]
    assert written, "dbt wrote no target/logs under the data home"
    assert not any(SECRET.encode() in p.read_bytes() for p in written)


@pytest.mark.slow
def test_vars_set_the_yearly_change_windows_without_editing_the_repository(
    pg, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_location(pg, 1)
    insert_counts(pg, [(1, date(2022, 6, 1), 8, 5), (1, date(2023, 6, 1), 8, 10)])
    insert_counts(pg, [(1, date(2024, 6, 1), 8, 30)])
    runner = CliRunner()

    def yearly_change(*args: str) -> list[tuple]:
        result = runner.invoke(transform, ["-s", "pedestrian_yearly_change", *args])
        assert result.exit_code == 0, result.output
        with pg.cursor() as cur:
            cur.execute(
                "SELECT before_start::text, after_start::text, before_count, after_count "
                "FROM analytics.pedestrian_yearly_change"
            )
            return cur.fetchall()

    built = runner.invoke(transform, [])  # every model, the project's defaults (2019, 2020)
    assert built.exit_code == 0, built.output
    assert yearly_change() == []  # no sensor counted in both windows
    # YAML as dbt takes it (unquoted dates), then JSON.
    yaml_vars = "{footfall_before_start: 2023-01-01, footfall_after_start: 2024-01-01}"
    assert yearly_change("--vars", yaml_vars) == [("2023-01-01", "2024-01-01", 10, 30)]
    json_vars = '{"footfall_before_start": "2022-01-01", "footfall_after_start": "2023-01-01"}'
    assert yearly_change("--vars", json_vars) == [("2022-01-01", "2023-01-01", 5, 10)]
    # The setting serves `run` too; --vars overrides it name by name.
    monkeypatch.setenv("TRANSFORM_VARS", yaml_vars)
    reset_settings()
    assert yearly_change() == [("2023-01-01", "2024-01-01", 10, 30)]
    overridden = yearly_change("--vars", "{footfall_before_start: 2022-01-01}")
    assert overridden == [("2022-01-01", "2024-01-01", 5, 30)]


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("[1, 2]", "must be a mapping of var names to values"),
        ("{footfall_before_start: [2023", "is not YAML or JSON: "),
    ],
)
def test_vars_that_are_not_a_mapping_are_a_usage_error(given: str, reason: str) -> None:
    result = CliRunner().invoke(transform, ["--vars", given])

    assert result.exit_code == 2
    assert f"\nError: Invalid value for --vars: {reason}" in result.stderr
