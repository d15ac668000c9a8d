"""Whose fault a failed load is, decided once in the worker (`loads.faults`): the errors a
real PostgreSQL raises, classified; the worker errors the load for the file's and leaves
it ready, stopping the pass with exit code 3, for the platform's. Each source's own test
(`tests/<source>/test_faults.py`) does the same through its loader."""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from data_platform.errors import DatabaseError, DataPlatformError, LoadError, StorageError
from data_platform.loads import faults
from data_platform.loads.worker import ingest
from tests.loads.test_worker import FakeSource, _land, _statuses, fake  # noqa: F401


def _raised(db_url: str, statement: str) -> psycopg2.Error:
    """The error PostgreSQL raises for `statement` (after a table `t` is made)."""
    conn = psycopg2.connect(db_url.replace("+psycopg2", ""))
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE t (k int PRIMARY KEY, v int NOT NULL CHECK (v > 0))")
            cur.execute("INSERT INTO t VALUES (1, 1)")
            try:
                cur.execute(statement)
            except psycopg2.Error as exc:
                return exc
        raise AssertionError(f"{statement} raised nothing")
    finally:
        conn.rollback()
        conn.close()


FILES = {
    "a value its column cannot hold": "SELECT 'six'::int",
    "out of range": "SELECT 2147483648::int",
    "division by zero": "SELECT 1 / 0",
    "NOT NULL": "INSERT INTO t VALUES (2, NULL)",
    "a key twice": "INSERT INTO t VALUES (1, 1)",
    "a check": "INSERT INTO t VALUES (3, -1)",
    "not UTF-8": "SELECT convert_from('\\x00'::bytea, 'UTF8')",
}
PLATFORM = {
    # A built-in role without privileges: the test's user is a superuser.
    "permission denied": "SET ROLE pg_read_all_stats; SELECT * FROM t",
    "a table gone": "SELECT * FROM no_such_table",
    "a column gone": "SELECT no_such_column FROM t",
    "a statement cancelled": "SET statement_timeout = 1; SELECT pg_sleep(1)",
}


@pytest.mark.parametrize("statement", FILES.values(), ids=FILES.keys())
def test_an_error_in_the_files_rows_is_the_files_fault(db_url: str, statement: str) -> None:
    error = _raised(db_url, statement)
    assert faults.is_file_fault(error), error.pgcode
    # However it reaches the worker: through SQLAlchemy, or wrapped by a loader.
    assert faults.is_file_fault(DBAPIError(statement, None, error))
    wrapped = LoadError("bad value", key="k")
    wrapped.__cause__ = error
    assert faults.is_file_fault(wrapped)
    made = faults.as_load_error(
        error, lambda message, column=None: LoadError(message, column=column)
    )
    assert made.reason == (error.diag.message_primary or "").strip() + (
        f": {error.diag.message_detail.strip()}" if error.diag.message_detail else ""
    )


@pytest.mark.parametrize("statement", PLATFORM.values(), ids=PLATFORM.keys())
def test_any_other_database_error_is_the_platforms(db_url: str, statement: str) -> None:
    error = _raised(db_url, statement)
    assert not faults.is_file_fault(error), error.pgcode
    wrapped = LoadError("COPY failed", key="k")  # a loader's wrapping does not decide
    wrapped.__cause__ = error
    assert not faults.is_file_fault(wrapped)
    stop = faults.platform_error(wrapped, "k (load 1)")
    assert isinstance(stop, DatabaseError) and stop.exit_code == 3
    assert str(stop).startswith("k (load 1): ") and f"(SQLSTATE {error.pgcode})" in str(stop)


def test_no_sqlstate_is_the_connection_and_the_rest_is_not_the_database() -> None:
    assert not faults.is_file_fault(psycopg2.OperationalError("server closed the connection"))
    assert not faults.is_file_fault(StorageError("bucket gone"))
    assert not faults.is_file_fault(RuntimeError("a bug"))
    assert faults.is_file_fault(LoadError("not gzip", key="k"))
    assert faults.platform_error(StorageError("bucket gone"), "k") is None  # its own code, 4


class Refusing(FakeSource):
    """Applies by running `statement` on the load's own connection."""

    statement = ""

    def loader(self, worker):
        loader = super().loader(worker)
        source = self

        def apply(conn, load):
            conn.execute(text(source.statement))
            return 1

        loader.apply = apply
        return loader


@pytest.fixture
def refusing(fake: FakeSource) -> Refusing:  # noqa: F811
    return Refusing()


def test_the_worker_errors_the_load_for_a_bad_value(refusing: Refusing) -> None:
    refusing.statement = "SELECT 'six'::int"
    _land("a", 1)
    refusing.scan()
    result = ingest(refusing)
    assert result.errored == 1 and _statuses() == {"a": "errored"}
    assert result.errors == [
        'fake/items/a: invalid input syntax for type integer: "six" (table fake__items, load 1)'
    ]


def test_the_worker_leaves_the_load_ready_when_the_database_refuses_the_platform(
    refusing: Refusing, db_url: str
) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("REVOKE ALL ON fake_items FROM PUBLIC"))
    engine.dispose()
    refusing.statement = "SET LOCAL ROLE pg_read_all_stats; INSERT INTO fake_items VALUES (1)"
    _land("a", 1)
    refusing.scan()
    with pytest.raises(DataPlatformError, match="ingest stopped for 1 table") as stopped:
        ingest(refusing)
    assert stopped.value.exit_code == 3
    cause = stopped.value.__cause__
    assert isinstance(cause, DatabaseError)
    assert "permission denied for table fake_items (SQLSTATE 42501)" in str(cause)
    assert _statuses() == {"a": "ready"}
