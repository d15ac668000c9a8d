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
