"""Settings, the database URL, logging and the embedded server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_platform.db.engine import database_url, masked
from data_platform.log import JsonFormatter, TextFormatter
from data_platform.settings import Settings, get_settings, reset_settings


def test_defaults_are_the_embedded_platform(tmp_path: Path) -> None:
    settings = get_settings()
    assert settings.database_url is None
    assert settings.uses_s3 is False
    assert settings.home == tmp_path / "home"
    assert settings.log_format == "text" and settings.springboard_enabled is False


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_PLATFORM_HOME")
    Path(".env").write_text("DATA_PLATFORM_HOME=/srv/dp\nLOG_FORMAT=JSON\nS3_BUCKET_ERROR=b\n")
    reset_settings()
    settings = get_settings()
    assert (settings.home, settings.log_format, settings.uses_s3) == (Path("/srv/dp"), "json", True)


def test_environment_wins_over_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("LOG_LEVEL=DEBUG\n")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    reset_settings()
    assert get_settings().log_level == "WARNING"


def test_every_setting_is_documented_in_env_template() -> None:
    template = (Path(__file__).resolve().parents[1] / ".env.template").read_text()
    for name in Settings.model_fields:
        assert f"{name.upper()}=" in template, name


def test_database_url_adds_ssl_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://dp:pw@db.example:5432/dp")
    monkeypatch.setenv("DATABASE_SSLMODE", "verify-full")
    monkeypatch.setenv("DATABASE_SSLROOTCERT", "/certs/rds.pem")
    reset_settings()
    url = database_url()
    assert url.startswith("postgresql+psycopg2://dp:pw@db.example:5432/dp?")
    assert "sslmode=verify-full" in url and "sslrootcert=%2Fcerts%2Frds.pem" in url
    assert masked(url).startswith("postgresql+psycopg2://dp:***@db.example")


def _record(**extra) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "INFO", "msg": "applied %d", "args": (3,)}
    )
    record.__dict__.update(extra)
    return record


def test_log_lines_carry_table_and_load_ids() -> None:
    line = TextFormatter().format(_record(table="t", load_id=7))
    assert line.endswith("INFO    x: applied 3 [table=t load_id=7]")
    payload = json.loads(JsonFormatter().format(_record(table="t", load_id=7)))
    assert {k: payload[k] for k in ("level", "message", "table", "load_id")} == {
        "level": "INFO",
        "message": "applied 3",
        "table": "t",
        "load_id": 7,
    }


def test_log_lines_carry_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the CLI and the page configure: a secret of the settings, a URL's password
    and a signed link's query are masked in text and JSON lines, extras included."""
    from data_platform.alerts.scrub import log_scrub
    from data_platform.settings import Settings

    settings = Settings(web_password="hunter2-pass", web_user="ops")
    clean = log_scrub(settings)
    record = _record(url="https://bucket.example/f?X-Amz-Signature=abc")
    record.msg = "login hunter2-pass failed; postgresql://ops:pw-in-url@db/x"
    record.args = ()
    for formatter in (TextFormatter(clean), JsonFormatter(clean)):
        line = formatter.format(record)
        assert "hunter2" not in line and "pw-in-url" not in line, line
        assert "X-Amz-Signature" not in line and "db/x" in line, line


def test_uvicorns_coloured_copy_of_a_message_is_not_an_id() -> None:
    coloured = _record(color_message="Started server process [\x1b[36m%d\x1b[0m]")
    assert TextFormatter().format(coloured).endswith("INFO    x: applied 3")


@pytest.mark.slow
def test_two_commands_starting_the_embedded_server_at_once_share_it(tmp_path: Path) -> None:
    # Only PATH from outside (pgserver runs useradd from sbin when root): no DATABASE_URL.
    env = {"PATH": os.environ["PATH"], "DATA_PLATFORM_HOME": str(tmp_path / "shared-home")}
    argv = [sys.executable, "-m", "data_platform", "db", "url"]
    procs = [
        subprocess.Popen(
            argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    try:
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert outputs[0][0] == outputs[1][0]
        assert "data_platform" in outputs[0][0]
    finally:
        subprocess.run([*argv[:-1], "stop"], env=env, cwd=tmp_path, timeout=60, check=False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LOG_FORMAT": "yaml"},
            "invalid setting LOG_FORMAT: Input should be 'text' or 'json' (got 'yaml')",
        ),
        (
            {"LOG_LEVEL": "LOUD"},
            "invalid setting LOG_LEVEL: Input should be one of DEBUG, INFO, WARNING, ERROR, "
            "CRITICAL (got 'LOUD')",
        ),
        (
            {"LOAD_WORK_MEM": "lots"},
            "invalid setting LOAD_WORK_MEM: String should match pattern '^\\d+\\s*(kB|MB|GB)$' "
            "(got 'lots')",
        ),
        (
            {"DATABASE_URL": "not a url, s3cret"},
            "DATABASE_URL is not a database URL: expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (the port a number; the value is "
            "not shown)",
        ),
        (
            {"DATABASE_URL": "postgresql://u:s3cret@localhost:five/db"},
            "DATABASE_URL is not a database URL: expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (the port a number; the value is "
            "not shown)",
        ),
    ],
)
def test_an_invalid_setting_is_one_error_line_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    from click.testing import CliRunner

    from data_platform.cli.main import cli

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    result = CliRunner().invoke(cli, ["status"])
    assert (result.exit_code, result.stderr.splitlines()) == (2, [f"Error: {message}"])
    assert "s3cret" not in result.stderr


def test_alembic_and_usage_errors_are_one_line(platform: Settings) -> None:
    from click.testing import CliRunner

    from data_platform.cli.main import cli

    result = CliRunner().invoke(cli, ["db", "downgrade", "nosuch"])
    assert (result.exit_code, result.stderr.splitlines()) == (
        2,
        ["Error: alembic: Can't locate revision identified by 'nosuch'"],
    )
    result = CliRunner().invoke(cli, ["loads", "list", "--status", "nope"])
    (line,) = result.stderr.splitlines()  # no usage block: one line
    assert result.exit_code == 2
    assert line.startswith("Error: Invalid value for '--status': 'nope' is not one of 'ready'")
    assert line.endswith(" loads list --help)")


def test_the_runtime_lock_is_current() -> None:
    """`make demo` installs requirements-runtime.txt: the pins the package needs."""
    import importlib.util

    repo = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("lock_runtime", repo / "scripts/lock_runtime.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    assert (repo / "requirements-runtime.txt").read_text() == text, (
        "requirements-runtime.txt is stale: .venv/bin/python scripts/lock_runtime.py"
    )
    names = {line.split("==")[0].lower() for line in text.splitlines() if "==" in line}
    assert not names & {"pyspark", "moto", "ruff", "pytest", "awsgluedataplanepython"}
