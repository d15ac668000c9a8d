"""`data-platform web`: the operations page, served by uvicorn."""

from __future__ import annotations

import logging
import os
import socket

import click

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _PlainRecords(logging.Filter):
    """uvicorn adds a `color_message` to its records; the platform's formatters would
    print it as an extra field."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def _check_port(host: str, port: int) -> None:
    """Raise ConfigError when `host:port` cannot be listened on (in use, no such address),
    before the database is touched."""
    from data_platform.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror} (choose another --port)"
            ) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8050, show_default=True, help="TCP port."
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Enable retrying errored loads and running a table's pass (needs WEB_TOKEN, or "
    "WEB_USER and WEB_PASSWORD). Without it the page is read-only.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    metavar="N",
    help="Worker processes serving the page (default: WEB_WORKERS).",
)
def web(host: str, port: int, allow_actions: bool, workers: int | None) -> None:
    """Serve the operations page: every source's tables with their loads, errors,
    freshness and rows, each load's history, the last dbt build; the same as JSON
    under /api (described at /openapi.json).

    \b
    Times are shown in DATA_PLATFORM_TIMEZONE; a table is late after FRESHNESS_HOURS
    (per table: FRESHNESS_HOURS_BY_TABLE). With WEB_TOKEN or WEB_USER/WEB_PASSWORD set,
    every page needs them (log in, or send Authorization: Bearer/Basic).

    \b
    Examples:
      data-platform web                                   # http://127.0.0.1:8050/
      WEB_TOKEN=s3cret data-platform web --host 0.0.0.0 --allow-actions
    """
    import uvicorn

    from data_platform.db.engine import get_engine
    from data_platform.db.migrations import require_migrated
    from data_platform.settings import get_settings
    from data_platform.web.app import ALLOW_ACTIONS_ENV, create_app

    app = create_app(allow_actions=allow_actions)
    _check_port(host, port)
    with get_engine().connect():  # fail now (exit 3) rather than on the first page
        pass
    require_migrated()
    if host not in LOOPBACK and not app.state.credentials.required:
        log.warning(
            "listening on %s without credentials: anyone who reaches port %s reads the page "
            "(set WEB_TOKEN, or WEB_USER and WEB_PASSWORD)",
            host,
            port,
        )
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_PlainRecords())
    mode = "actions on" if allow_actions else "read-only"
    workers = workers or get_settings().web_workers or min(os.cpu_count() or 1, 4)
    log.info("operations page on http://%s:%s/ (%s, %s worker(s))", host, port, mode, workers)
    if workers == 1:
        # The app reads a proxy's headers itself (WEB_TRUSTED_PROXIES), not uvicorn.
        uvicorn.run(
            app, host=host, port=port, log_config=None, server_header=False, proxy_headers=False
        )
        return
    # Each worker process builds the same app (`app_for_worker`), told by the environment
    # whether actions are on: the page's CPU spreads over the cores.
    os.environ[ALLOW_ACTIONS_ENV] = "1" if allow_actions else ""
    if get_settings().web_secret_key is None:
        # One key for all workers, or a login made at one would not hold at another.
        import secrets

        os.environ["WEB_SECRET_KEY"] = secrets.token_urlsafe(32)
    uvicorn.run(
        "data_platform.web.app:app_for_worker",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )
