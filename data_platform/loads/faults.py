"""Whose fault a failed load is: the file's, or the platform's. One rule for every source,
applied by the worker (`data_platform.loads.worker.TableWorker.process`); loaders do not
classify errors, they raise what they meet (a LoadError for what they find wrong in a
file, the database's own error otherwise) and the worker decides.

- **The file's fault** (the load is errored, the table waits for a retry or skip): a
  LoadError the loader raised (a bad header, a file that is not gzip, a value it checked),
  and a database error of the file's rows: SQLSTATE class 22 (data exception: a value
  its column cannot hold, out of range, not UTF-8), class 23 (integrity constraint: NULL
  in a NOT NULL column, a key twice, a check), and 54000 (a value past a limit, an index
  row or a document too large).
- **The platform's fault** (the load stays `ready` for the next run, and the pass stops
  with the cause's exit code): every other database error, by SQLSTATE (08 connection
  lost, 42501 permission denied, 42P01 a table gone, 53 disk full or out of memory, 57
  admin shutdown or a cancelled statement, 40 a deadlock or serialization failure, 58
  and XX the server's own), libpq's errors without a SQLSTATE (the server unreachable),
  and anything that is not a database error or a LoadError (storage, a bug). A LoadError
  whose cause is a platform fault (COPY refused for lack of privilege) is the
  platform's: the cause decides.

PostgreSQL's SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg2
from sqlalchemy.exc import DBAPIError

from data_platform.errors import DatabaseError, DataPlatformError, LoadError

# SQLSTATEs (classes by their first two characters) of errors in a file's rows.
FILE_CLASSES = ("22", "23")
FILE_STATES = ("54000",)


def database_error(exc: BaseException) -> psycopg2.Error | None:
    """The database's own error behind `exc`: `exc` itself, a SQLAlchemy error's DBAPI
    error, or one it was raised from (`raise ... from`), the nearest first; None when
    the failure did not come from the database."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, psycopg2.Error):
            return current
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
        else:
            current = current.__cause__
    return None


def is_file_fault(exc: BaseException) -> bool:
    """Is `exc`, raised while a load was applied, the file's fault (see the module's doc)?"""
    found = database_error(exc)
    if found is not None:
        code = found.pgcode or ""  # none: libpq's own (connection), the platform's
        return code[:2] in FILE_CLASSES or code in FILE_STATES
    return isinstance(exc, LoadError)


def as_load_error(exc: BaseException, error: Callable[..., LoadError]) -> LoadError:
    """The LoadError that errors the load for a failure that is the file's fault: `exc`
    when the loader raised one, else one made by `error` (the loader's factory: it names
    file, table and load) from the database error's message, detail and column."""
    if isinstance(exc, LoadError):
        return exc
    found = database_error(exc)
    assert found is not None, "a file's fault is a LoadError or a database error"
    diag = found.diag
    message = (diag.message_primary or str(found)).strip()
    if diag.message_detail:  # which key, which row: e.g. `Key (id)=(7) already exists.`
        message = f"{message}: {diag.message_detail.strip()}"
    return error(message, column=diag.column_name)


def platform_error(exc: BaseException, what: str) -> DatabaseError | None:
    """What stops the pass for a failure that is the platform's, when the database failed:
    a DatabaseError (exit code 3) naming `what` (the file and load) and the database's
    reason, to raise from `exc`; None when it is not the database's, or is one of ours
    with its own exit code already (raise `exc` itself: storage 4, a job run 5, ...). A
    LoadError whose cause is the platform's is made a DatabaseError: a loader's wrapping
    does not decide the exit code."""
    found = database_error(exc)
    if found is None:
        return None
    if isinstance(exc, DataPlatformError) and not isinstance(exc, LoadError):
        return None
    lines = (found.diag.message_primary or str(found)).strip().splitlines()
    reason = lines[0] if lines else type(found).__name__
    state = f" (SQLSTATE {found.pgcode})" if found.pgcode else ""
    return DatabaseError(f"{what}: {reason}{state}; the load stays ready for the next run")
