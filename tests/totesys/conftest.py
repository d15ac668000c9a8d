"""A totesys source database per test, on the test server (TOTESYS_DATABASE_URL points
at it), empty or seeded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from data_platform.batch.totesys.connection import connect
from data_platform.settings import reset_settings
from harness.totesys.seed import seed

ORDERS = 200


def _admin(pg_admin_url: str):
    return connect(pg_admin_url, autocommit=True)


def _new_database(pg_admin_url: str) -> str:
    name = f"totesys_test_{uuid.uuid4().hex[:12]}"
    conn = _admin(pg_admin_url)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(pg_admin_url: str, url: str) -> None:
    conn = _admin(pg_admin_url)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(make_url(url).database)
            )
        )
    conn.close()


@pytest.fixture
def source_db(pg_admin_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, empty source database; TOTESYS_DATABASE_URL points at it."""
    url = _new_database(pg_admin_url)
    monkeypatch.setenv("TOTESYS_DATABASE_URL", url)
    reset_settings()
    yield url
    _drop_database(pg_admin_url, url)


@pytest.fixture
def seeded(source_db: str) -> str:
    result = seed(orders=ORDERS, seed=1)
    assert result.seeded
    return source_db
