"""`data-platform web`: its options, the errors it refuses to start with (one `Error:` line,
exit 2), and what it hands uvicorn."""

from __future__ import annotations

import os
import socket

import pytest
from click.testing import CliRunner

from data_platform.cli.main import cli
from data_platform.settings import Settings, reset_settings


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help() -> None:
    code, out, _ = run("web", "-h")
    assert code == 0
    for option in ("--host", "--port", "--allow-actions", "Example"):
        assert option in out


def test_actions_without_credentials_refuse_to_start() -> None:
    code, _, err = run("web", "--allow-actions")
    assert (code, err) == (
        2,
        "Error: --allow-actions needs credentials: set WEB_TOKEN, or WEB_USER and WEB_PASSWORD\n",
    )


def test_half_a_user_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_PASSWORD", "x")
    code, _, err = run("web")
    assert (code, err) == (2, "Error: WEB_USER and WEB_PASSWORD go together: set both or neither\n")


def test_a_bad_time_zone_is_named_with_what_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_PLATFORM_TIMEZONE", "Mars/Olympus")
    code, _, err = run("web")
    assert code == 2
    assert err == (
        "Error: invalid setting DATA_PLATFORM_TIMEZONE: expected an IANA time zone name such "
        "as UTC, Europe/London or Australia/Melbourne (got 'Mars/Olympus')\n"
    )


def test_bad_freshness_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRESHNESS_HOURS_BY_TABLE", '{"t": 0}')
    code, _, err = run("web")
    assert code == 2 and "FRESHNESS_HOURS_BY_TABLE: hours must be a number above 0" in err


def test_a_port_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run("web", "--port", str(port))
    assert code == 2
    assert err.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert err.endswith("(choose another --port)\n")
    assert run("web", "--port", "70000")[0] == 2


def test_serves_the_app_with_uvicorn(
    platform: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    monkeypatch.setenv("WEB_TOKEN", "t0k3n-for-the-cli-test")
    reset_settings()
    args = ("web", "--host", "0.0.0.0", "--port", "18050")
    code, _, err = run(*args, "--allow-actions", "--workers", "1")
    assert code == 0, err
    ((app, kwargs),) = calls
    assert app.state.allow_actions is True
    assert kwargs == {
        "host": "0.0.0.0",
        "port": 18050,
        "log_config": None,
        "server_header": False,
        "proxy_headers": False,  # the app reads a trusted proxy's headers itself
    }
    assert "operations page on http://0.0.0.0:18050/ (actions on, 1 worker(s))" in err
    calls.clear()
    # Several workers: each process builds the app from the factory, told of the actions.
    code, _, err = run(*args, "--allow-actions", "--workers", "3")
    assert code == 0, err
    ((target, kwargs),) = calls
    assert (target, kwargs["factory"], kwargs["workers"]) == (
        "data_platform.web.app:app_for_worker",
        True,
        3,
    )
    # One signing key for every worker, or a login made at one would fail at another.
    assert len(os.environ.get("WEB_SECRET_KEY", "")) >= 32
    monkeypatch.delenv("WEB_SECRET_KEY")
    from data_platform.web.app import ALLOW_ACTIONS_ENV, app_for_worker

    assert app_for_worker().state.allow_actions is True  # as the worker builds it
    monkeypatch.setenv(ALLOW_ACTIONS_ENV, "")
    calls.clear()
    monkeypatch.delenv("WEB_TOKEN")
    reset_settings()
    code, _, err = run(*args, "--workers", "1")
    assert code == 0 and calls[0][0].state.allow_actions is False
    assert "listening on 0.0.0.0 without credentials: anyone who reaches port 18050" in err
