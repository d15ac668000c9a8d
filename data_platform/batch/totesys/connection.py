"""Where the totesys source database is, and the two ways in: as its owner (seed,
simulate) and as the read-only role `totesys_reader` (the platform's extraction).

TOTESYS_DATABASE_URL names it; unset, it is a database `totesys` on the platform's own
server (the embedded PostgreSQL, or DATABASE_URL's server). URLs are only ever logged or
shown masked (`data_platform.db.engine.masked`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from data_platform.db.engine import database_url, masked
from data_platform.errors import ConfigError, DatabaseError
from data_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

DATABASE_NAME = "totesys"
READER_ROLE = "totesys_reader"
_MAINTENANCE_DB = "postgres"


def source_url(settings: Settings | None = None) -> URL:
    """The source database's URL (driver postgresql+psycopg2): TOTESYS_DATABASE_URL, else
    the database `totesys` on the platform's server (the embedded one is started).

    Raises ConfigError for a URL that cannot be parsed (the value is never shown)."""
    settings = settings or get_settings()
    raw = settings.totesys_database_url
    if raw:
        return _parse(raw)
    return make_url(database_url(settings)).set(database=DATABASE_NAME)


def reader_url(url: URL | str | None = None) -> URL:
    """The source URL as the read-only role `totesys_reader` (no password: the role logs
    in where the server trusts it, as the embedded server does)."""
    url = as_url(url)
    # URL.set() ignores None: build it anew so the owner's password is not carried over.
    return URL.create(
        url.drivername,
        username=READER_ROLE,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )


def as_url(url: URL | str | None) -> URL:
    """`url` as a SQLAlchemy URL with the psycopg2 driver; None: `source_url()`."""
    if url is None:
        return source_url()
    return _parse(url) if isinstance(url, str) else url


def connect(url: URL | str | None = None, *, database: str | None = None, autocommit=False):
    """A psycopg2 connection to `url` (default the source), or to another `database` of its
    server. Connection failures become one DatabaseError line with the password masked."""
    import psycopg2

    url = as_url(url)
    if database is not None:
        url = url.set(database=database)
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    params: dict[str, Any] = {  # libpq keywords, for psycopg2.connect's **kwargs
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        "host": url.host,
        "port": url.port,
        **query,
    }
    if url.host is None and "host" in query:
        params["host"] = query["host"]
    params = {k: v for k, v in params.items() if v is not None}
    shown = masked(url.render_as_string(hide_password=False))
    try:
        conn = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"cannot connect to {shown}: {reason}") from exc
    conn.autocommit = autocommit
    return conn


def ensure_database(url: URL | str | None = None) -> URL:
    """Create the source database if it is missing (connecting to the server's `postgres`
    database, autocommit); return its URL. Safe to repeat and to race."""
    import psycopg2
    from psycopg2 import sql

    url = as_url(url)
    name = url.database
    if not name:
        raise ConfigError("TOTESYS_DATABASE_URL names no database (the URL is not shown)")
    conn = connect(url, database=_MAINTENANCE_DB, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    log.info("created database %s", masked(url.render_as_string(False)))
                except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                    pass  # created by another command at the same moment
    finally:
        conn.close()
    return url


def shown(url: URL) -> str:
    """`url` safe to print or log: the password replaced by ***."""
    return masked(url.render_as_string(hide_password=False))


def _parse(raw: str) -> URL:
    authority = raw.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        raise ConfigError(
            "TOTESYS_DATABASE_URL: the user or password holds an unencoded '@': "
            "percent-encode it as %40 (the URL is not shown because it holds the password)"
        )
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise ConfigError(
            "TOTESYS_DATABASE_URL is not a database URL: expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (the port a number; the value is "
            "not shown)"
        ) from exc
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")
    return url
