"""The platform as a role that privileges bind: the test's user is a superuser, which no
REVOKE restricts, so the platform's engine connects as a role of its own for a test, a
member of the test's user (every privilege it has, and its ownerships) but not a
superuser. A REVOKE from the test's user (the tables' owner) then takes the privilege
away from the platform: `as_owner("REVOKE INSERT ON pedestrian.hourly_counts FROM
CURRENT_USER")`; a GRANT gives it back.

Also what every source's test of whose fault a failure is needs (`tests/<source>/
test_faults.py`): `run` once, and a load's status.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, select, text

from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import Load
from data_platform.settings import Settings


def run() -> Result:
    """`data-platform run --no-land --no-transform` once: the files in incoming only."""
    return CliRunner().invoke(cli, ["run", "--no-land", "--no-transform"])


def status(key: str) -> tuple[str, str | None]:
    """The newest load of `key`: its status and error."""
    with get_engine().connect() as conn:
        return tuple(
            conn.execute(
                select(Load.status, Load.error).where(Load.s3_key == key).order_by(Load.id.desc())
            ).first()
        )


@pytest.fixture
def as_owner(platform: Settings) -> Iterator[Callable[[str], None]]:
    """A function running a REVOKE or GRANT (any statement) as the test's user; from then
    on the platform's connections are the member role's."""
    engine = get_engine()
    quote = engine.dialect.identifier_preparer.quote
    role = f"dp_platform_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        user = conn.scalar(text("SELECT current_user"))
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER INHERIT"))
        conn.execute(text(f"GRANT {quote(user)} TO {role}"))

    def as_role(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cur:
            cur.execute(f"SET ROLE {role}")
        dbapi_connection.commit()  # a SET rolled back with its transaction would not stay

    def run(statement: str) -> None:
        if event.contains(engine, "connect", as_role):
            event.remove(engine, "connect", as_role)
        engine.dispose()
        with engine.begin() as conn:
            conn.execute(text(statement))
        event.listen(engine, "connect", as_role)
        engine.dispose()  # the pooled connections were the test user's

    yield run
    if event.contains(engine, "connect", as_role):
        event.remove(engine, "connect", as_role)
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))
