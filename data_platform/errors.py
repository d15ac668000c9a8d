"""One root exception; the CLI turns any of these into a one-line `Error:` and an exit code."""

from __future__ import annotations


class DataPlatformError(Exception):
    """Root of every error the platform raises on purpose."""

    exit_code = 1


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code (doc/operations.md, "Exit codes") of any failure: the
    error's own for ours, 2 for invalid settings and Alembic command errors, 3 for the
    database, 4 for storage, 1 for anything else."""
    from alembic.util import CommandError
    from botocore.exceptions import BotoCoreError, ClientError
    from psycopg2 import InterfaceError
    from psycopg2 import OperationalError as PgOperationalError
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError, ProgrammingError

    if isinstance(exc, DataPlatformError):
        return exc.exit_code
    if isinstance(exc, ValidationError | CommandError):
        return 2
    if isinstance(exc, OperationalError | ProgrammingError | PgOperationalError | InterfaceError):
        return 3
    if isinstance(exc, ClientError | BotoCoreError):
        return 4
    return 1


# Settings whose values are never echoed in an error (they may hold a secret).
_SECRET_WORDS = ("URL", "KEY", "PASSWORD", "SECRET", "TOKEN")


def settings_error(exc) -> str:
    """One line for a pydantic ValidationError of the settings: each setting by its
    environment name, what is accepted, and the value given unless it may be secret."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        given = error.get("input")
        shown = "" if any(w in name for w in _SECRET_WORDS) else f" (got {given!r})"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{name}: {message}{shown}")
    return "invalid setting " + "; ".join(parts)


def one_line(exc: BaseException) -> tuple[str, int]:
    """The one-line message and the exit code (doc/operations.md, "Exit codes") of any
    failure, as the CLI prints it after `Error:` and the web page shows it; never a
    traceback."""
    from alembic.util import CommandError
    from botocore.exceptions import BotoCoreError, ClientError
    from psycopg2.errors import UndefinedTable
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError, ProgrammingError

    code = exit_code_for(exc)
    if isinstance(exc, DataPlatformError):
        return str(exc), code
    if isinstance(exc, OperationalError | ProgrammingError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if isinstance(exc.orig, UndefinedTable):
            # Most often a database the metadata revisions were never applied to.
            reason += " (is the database migrated? data-platform db upgrade)"
        return f"database: {reason}", code
    if isinstance(exc, ClientError | BotoCoreError):
        return f"storage: {exc}", code
    if isinstance(exc, ValidationError):
        return settings_error(exc), code
    if isinstance(exc, CommandError):
        return f"alembic: {exc}", code
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", code


class ConfigError(DataPlatformError):
    """A setting is missing or invalid."""

    exit_code = 2


class DatabaseError(DataPlatformError):
    """The metadata database cannot be reached or is not migrated."""

    exit_code = 3


class StorageError(DataPlatformError):
    """An object store operation failed (missing bucket, missing key, ...)."""

    exit_code = 4


class InvalidTransition(DataPlatformError):
    """A load status change that the state machine forbids."""


class LoadError(DataPlatformError):
    """A file could not be loaded; the message names file, line, column, table and load."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        column: str | None = None,
        table: str | None = None,
        load_id: int | None = None,
    ) -> None:
        self.reason = message
        self.key = key
        self.line = line
        self.column = column
        self.table = table
        self.load_id = load_id
        super().__init__(self.describe())

    def describe(self) -> str:
        """`<key>: line 3, column X: <reason> (table t, load 7)`."""
        details = []
        if self.line is not None:
            details.append(f"line {self.line}")
        if self.column:
            details.append(f"column {self.column}")
        parts = [p for p in (self.key, ", ".join(details)) if p]
        ids = []
        if self.table:
            ids.append(f"table {self.table}")
        if self.load_id is not None:
            ids.append(f"load {self.load_id}")
        suffix = f" ({', '.join(ids)})" if ids else ""
        return ": ".join([*parts, self.reason]) + suffix


class OnboardingError(DataPlatformError):
    """A table cannot be onboarded as asked (no key, name clash, bad .dfm)."""


class JobRunError(DataPlatformError):
    """A Spark/Glue job run failed as a whole (did not start, crashed, timed out); no file
    is to blame."""

    exit_code = 5
