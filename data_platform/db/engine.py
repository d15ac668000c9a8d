"""The engine comes from one cached factory; the URL from settings or the embedded server."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2.extensions
from sqlalchemy import Connection, Engine, Executable, Row, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from data_platform.errors import ConfigError, DatabaseError
from data_platform.settings import Settings, get_settings, on_reset

log = logging.getLogger(__name__)


def database_url(settings: Settings | None = None) -> str:
    """The configured DATABASE_URL, else the embedded server's (started on demand)."""
    settings = settings or get_settings()
    if settings.database_url:
        _check_url(settings.database_url)
        try:
            url = make_url(settings.database_url)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
            # Never echo the URL: it may hold the password.
            raise ConfigError(
                "DATABASE_URL is not a database URL: expected "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (the port a number; the value is "
                "not shown)"
            ) from exc
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg2")
        query = dict(url.query)
        if settings.database_sslmode:
            query["sslmode"] = settings.database_sslmode
        if settings.database_sslrootcert:
            query["sslrootcert"] = settings.database_sslrootcert
        return url.set(query=query).render_as_string(hide_password=False)
    from data_platform.db.embedded import ensure_database

    return ensure_database(settings.home)


def _check_url(raw: str) -> None:
    """Refuse a URL whose user or password holds an unencoded `@`: it would be parsed as
    part of the host, and the password would then show in logs and errors. The message
    never echoes the URL.

    Raises ConfigError."""
    authority = raw.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        raise ConfigError(
            "DATABASE_URL: the user or password holds an unencoded '@': percent-encode it "
            "as %40 (the URL is not shown because it holds the password)"
        )


def masked(url: str) -> str:
    """A URL safe to print or log: the password replaced by ***."""
    return make_url(url).render_as_string(hide_password=True)


@functools.cache
def get_engine() -> Engine:
    url = database_url()
    log.debug("connecting to %s", masked(url))
    return create_engine(url, pool_pre_ping=True, future=True)


@on_reset
def reset_engine() -> None:
    """Dispose of the engine: the next `get_engine` connects with the settings of then."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


@functools.cache
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return _session_factory(engine or get_engine())


def dbapi_cursor(conn: Connection | PoolProxiedConnection) -> psycopg2.extensions.cursor:
    """A psycopg2 cursor on `conn`'s own connection (a Connection's, inside its
    transaction, or an `Engine.raw_connection()`): for COPY and psycopg2.sql statements.
    The caller closes it (a `with` block does).

    Raises DatabaseError when `conn` holds no psycopg2 connection (it was invalidated)."""
    proxied = conn.connection if isinstance(conn, Connection) else conn
    raw = proxied.dbapi_connection
    if not isinstance(raw, psycopg2.extensions.connection):
        raise DatabaseError("the connection was invalidated: no psycopg2 connection under it")
    return raw.cursor()


@contextmanager
def connection_errors(url: str) -> Iterator[None]:
    """Turn a refused or failed connection into one DatabaseError line (password masked)."""
    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot connect to {masked(url)}: {reason}") from exc


def rows_within(
    conn: Connection, statement: Executable, milliseconds: int
) -> list[Row[Any]] | None:
    """The rows of `statement` run inside `conn`'s transaction with a statement timeout of
    its own (in a savepoint; the session's timeout is put back after), None when it ran
    out of time: for what a page shows only if it is cheap (exact counts, previews)."""
    from psycopg2 import errors as pg_errors
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    timeout = text("SELECT set_config('statement_timeout', :value, true)")
    previous = conn.scalar(text("SELECT current_setting('statement_timeout')"))
    try:
        with conn.begin_nested():
            conn.execute(timeout, {"value": str(milliseconds)})
            rows = list(conn.execute(statement).all())
            conn.execute(timeout, {"value": previous})
    except DBAPIError as exc:
        # The savepoint's rollback put the timeout back.
        if not isinstance(exc.orig, pg_errors.QueryCanceled):
            raise
        return None
    return rows
