"""The embedded default: a private PostgreSQL cluster under the data home (pgserver).

Started on demand and left running so later commands reuse it; pgserver serialises
start-up with an inter-process lock, so two commands starting at once share one server.
Within a process it is not safe for threads (two threads asking at once can see a server
half set up), so `_server` holds a lock: the page's first readers of a new worker
process all ask at once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from data_platform.errors import DatabaseError

log = logging.getLogger(__name__)

DATABASE_NAME = "data_platform"
# The data home `make demo` fills when the package runs from its checkout.
CHECKOUT_DATA = Path(__file__).resolve().parents[2] / ".data"


def pgdata_dir(home: Path) -> Path:
    return home / "postgres"


_STARTING = threading.Lock()


def _server(home: Path):
    """The running pgserver of `home`, started when it is not; one thread at a time."""
    with _STARTING:
        return _start(home)


def _start(home: Path):
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = pgdata_dir(home)
    if not pgdata.exists():
        warn_new_home(home)
    # Create the data directory ourselves: pgserver checks and creates it outside its
    # lock (mkdir with exist_ok=False), so two commands starting at once race on it.
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        return pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # pgserver raises plain exceptions from pg_ctl/initdb
        raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc


def warn_new_home(home: Path, checkout_data: Path = CHECKOUT_DATA) -> None:
    """Say loudly that `home` gets a new, empty database: a command run outside the
    project would otherwise start a second, empty platform without a word. Names the
    data of the checkout the package runs from (`checkout_data`) when it holds some."""
    where = "run from the project's directory"
    if pgdata_dir(checkout_data).is_dir() and checkout_data.resolve() != home.resolve():
        where = f"run from {checkout_data.parent}, whose data is in {checkout_data}"
    log.warning(
        "no embedded database in %s yet: creating a new, empty one (set "
        "DATA_PLATFORM_HOME, or %s, to use an existing one)",
        home,
        where,
    )


def server_url(home: Path, database: str = "postgres") -> str:
    """The SQLAlchemy URL of the embedded server, starting it if needed."""
    with _STARTING:  # the URI too: it reads what another thread may be setting up
        uri = _start(home).get_uri(database)
    return make_url(uri).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def ensure_database(home: Path, database: str = DATABASE_NAME) -> str:
    """Start the embedded server and create `database` if missing; return its URL."""
    import psycopg2
    from psycopg2 import sql

    admin = make_url(server_url(home))
    # libpq keywords, passed through to psycopg2.connect's **kwargs.
    connect_args: dict[str, Any] = {"dbname": "postgres", "user": admin.username, **admin.query}
    conn = psycopg2.connect(**connect_args)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                    log.info("created database %s in the embedded server", database)
                except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                    pass  # another command created it at the same moment
    finally:
        conn.close()
    return admin.set(database=database).render_as_string(hide_password=False)


def stop(home: Path) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    import subprocess

    pgdata = pgdata_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _server(home)  # imports pgserver first, quietly (see _server)
    # pgserver._commands defines a function per PostgreSQL executable at import (setattr).
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    try:
        pg_ctl(["-w", "stop"], pgdata=pgdata, user=server.system_user)
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"could not stop the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return True
