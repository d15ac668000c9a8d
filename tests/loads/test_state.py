"""Load status transitions: the allowed moves, and the compare-and-set on the row."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import create_engine, select, text

from data_platform.db.models import Load, LoadStatus
from data_platform.errors import InvalidTransition, LoadError
from data_platform.loads.state import (
    ALLOWED,
    ERROR_COLUMNS,
    LoadErrorParts,
    check_transition,
    transition,
)

S = LoadStatus
HAPPY = [S.READY, S.INGESTING, S.READY_FOR_ARCHIVING, S.ARCHIVING, S.ARCHIVED]
FAILED = [S.READY, S.INGESTING, S.READY_FOR_ERRORING, S.ERRORING, S.ERRORED, S.READY]


@pytest.mark.parametrize("path", [HAPPY, FAILED])
def test_the_documented_flows_are_allowed(path: list[LoadStatus]) -> None:
    for current, new in itertools.pairwise(path):
        check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [(S.READY, S.ARCHIVED), (S.ARCHIVED, S.READY), (S.ERRORED, S.ARCHIVED), (S.READY, S.ERRORED)],
)
def test_illegal_moves_are_refused(current: LoadStatus, new: LoadStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"from {current.value} to {new.value}"):
        check_transition(current, new)


def test_every_status_has_rules() -> None:
    assert set(ALLOWED) == set(LoadStatus)


def _load(engine) -> int:
    with engine.begin() as conn:
        table_id = conn.scalar(
            text(
                "INSERT INTO source_tables (name, source, s3_prefix) "
                "VALUES ('t', 'cubic_qlik', 'p/') RETURNING id"
            )
        )
        load_id = conn.scalar(
            text(
                "INSERT INTO loads (table_id, status, s3_key, s3_modified, s3_size) "
                "VALUES (:t, 'ready', 'k', now(), 1) RETURNING id"
            ),
            {"t": table_id},
        )
    return load_id


def test_transition_is_a_compare_and_set(db_url: str) -> None:
    engine = create_engine(db_url)
    load_id = _load(engine)
    with engine.begin() as conn:
        transition(conn, load_id, S.READY, S.INGESTING)
    # A second worker that still thinks the load is ready loses.
    with pytest.raises(InvalidTransition, match="another worker moved it"), engine.begin() as conn:
        transition(conn, load_id, S.READY, S.INGESTING)
    with engine.begin() as conn:
        transition(conn, load_id, S.INGESTING, S.READY_FOR_ERRORING, error=LoadError("bad"))
        row = conn.execute(select(Load.status, Load.error).where(Load.id == load_id)).one()
    assert tuple(row) == (S.READY_FOR_ERRORING, "bad")
    engine.dispose()


def test_an_error_is_stored_with_its_parts_and_a_retry_clears_them(db_url: str) -> None:
    engine = create_engine(db_url)
    load_id = _load(engine)
    # A key may hold anything, even what reads like a line and a column: the parts are
    # stored as the error gave them, never read back out of the message.
    key = "odd/x: line 9, column Z: y.csv"
    error = LoadError("bad: value", key=key, line=3, column="SAMPLE_ID", table="t", load_id=7)

    def stored():
        with engine.connect() as conn:
            row = conn.execute(select(*ERROR_COLUMNS).where(Load.id == load_id)).one()
        return LoadErrorParts.of(row)

    with engine.begin() as conn:
        transition(conn, load_id, S.READY, S.INGESTING)
        transition(conn, load_id, S.INGESTING, S.READY_FOR_ERRORING, error=error)
    assert stored() == LoadErrorParts(
        text=f"{key}: line 3, column SAMPLE_ID: bad: value (table t, load 7)",
        file=key,
        line=3,
        column="SAMPLE_ID",
        reason="bad: value",
    )
    with engine.begin() as conn:
        for current, new in itertools.pairwise(FAILED[2:-1]):
            transition(conn, load_id, current, new)
        transition(conn, load_id, S.ERRORED, S.READY, clear_error=True)
    assert stored() is None
    engine.dispose()
