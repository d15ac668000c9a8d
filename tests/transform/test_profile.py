"""The profile written for dbt, and the result's rendering (no database, no dbt run)."""

from __future__ import annotations

import json

import pytest

from data_platform.settings import reset_settings
from data_platform.transform import dbt
from data_platform.transform.result import NodeResult, TransformResult


def test_profile_names_the_password_only_as_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://etl:p%40ss-w0rd@db.example:6543/warehouse?sslmode=require"
    )
    reset_settings()

    output, password = dbt.connection()
    text = dbt._profile_text(output)

    assert password == "p@ss-w0rd"
    assert "p@ss-w0rd" not in text and "p%40ss" not in text
    target = json.loads(text)["data_platform"]["outputs"]["platform"]
    assert target == {
        "type": "postgres",
        "host": "db.example",
        "port": 6543,
        "user": "etl",
        "password": "{{ env_var('DBT_ENV_SECRET_DP_PASSWORD') }}",
        "dbname": "warehouse",
        "schema": "analytics",
        "threads": 4,
        "sslmode": "require",
    }


def test_dbt_home_is_under_the_data_home_not_the_checkout() -> None:
    from data_platform.settings import get_settings

    assert dbt.dbt_home() == get_settings().home / "dbt"
    assert not dbt.dbt_home().is_relative_to(dbt.project_dir())


def test_environment_is_set_for_the_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DO_NOT_TRACK", "0")
    monkeypatch.delenv(dbt.PASSWORD_ENV, raising=False)
    import os

    with dbt._environment({"DO_NOT_TRACK": "1", dbt.PASSWORD_ENV: "x"}):
        assert os.environ["DO_NOT_TRACK"] == "1" and os.environ[dbt.PASSWORD_ENV] == "x"
    assert os.environ["DO_NOT_TRACK"] == "0" and dbt.PASSWORD_ENV not in os.environ


def test_a_failed_test_makes_the_result_not_ok_and_is_named() -> None:
    result = TransformResult(
        nodes=[
            NodeResult("pedestrian_daily_totals", "model", "success"),
            NodeResult("rank_range", "test", "fail", failures=3),
            NodeResult("missing_location", "test", "warn", failures=2),
        ]
    )

    assert not result.ok
    assert [node.name for node in result.failed] == ["rank_range"]
    text = result.render()
    assert "test rank_range failed: 3 failing rows" in text
    assert text.endswith(
        "transform FAILED (1 failed): 1 model (1 success), 2 tests (1 fail, 1 warn)"
    )
    assert TransformResult(nodes=result.nodes[::2]).ok  # a warning alone is no failure


def test_run_prints_the_build_s_summary_and_failures_and_every_node_with_v(
    platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` is quiet by default (issue 26): the build's summary and each failing or
    warning test; -v adds every model and test."""
    from click.testing import CliRunner

    import data_platform.transform as transform
    from data_platform.cli.main import cli
    from data_platform.run import RunSummary

    built = TransformResult(
        nodes=[
            NodeResult("pedestrian_daily_totals", "model", "success"),
            NodeResult("rank_range", "test", "fail", failures=3),
            NodeResult("missing_location", "test", "warn", failures=2),
            NodeResult("not_null_count", "test", "pass"),
        ]
    )
    monkeypatch.setattr(RunSummary, "transform_needed", property(lambda self: True))
    monkeypatch.setattr(transform, "run_transform", lambda **kwargs: built)
    quiet = CliRunner().invoke(cli, ["run", "--no-land"])
    assert quiet.exit_code == 1
    assert quiet.stdout.splitlines()[-3:] == [
        "transform FAILED (1 failed): 1 model (1 success), 3 tests (1 fail, 1 pass, 1 warn)",
        "  test rank_range failed: 3 failing rows",
        "  test missing_location warned: 2 failing rows",
    ]
    assert "not_null_count" not in quiet.stdout and "pedestrian_daily_totals" not in quiet.stdout
    loud = CliRunner().invoke(cli, ["run", "--no-land", "-v"])
    assert "not_null_count" in loud.stdout and "pedestrian_daily_totals" in loud.stdout
