"""CDC drift made visible (issue 25): a Qlik table, as its change files kept it, set
against the next full load before that replaces it; every key that differs named."""

from __future__ import annotations

from sqlalchemy import text

from data_platform.batch.cubic_qlik.drift import verify_qlik
from data_platform.db.engine import get_engine
from data_platform.loads.verify import latest
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def _latest_drift() -> list:
    raw = get_engine().raw_connection()
    try:
        with raw.cursor() as cur:
            return [v for v in latest(cur, "cubic_qlik") if v.check == "snapshot_drift"]
    finally:
        raw.close()


def _captures() -> list[str]:
    with get_engine().connect() as conn:
        return list(
            conn.scalars(
                text(
                    "SELECT relname FROM pg_class WHERE relname LIKE 'dp\\_pre\\_%' "
                    "ORDER BY relname"
                )
            )
        )


def _reload(qlik: QlikWorld, sample: QlikTable, rows: list[tuple]) -> None:
    """The source's next full load: its rows now."""
    qlik.later()
    sample.full_load(rows)
    qlik.run()


def test_a_table_kept_right_by_its_changes_equals_the_next_full_load(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes(
        [
            (seq(1), "I", T, 3, "three", T),
            (seq(2), "U", T, 1, "ONE", T),
            (seq(3), "D", T, 2, None, None),
        ]
    )
    qlik.run()
    assert _captures() == []  # nothing kept while no snapshot comes
    _reload(qlik, sample, [(1, "ONE", T), (3, "three", T)])
    assert len(_captures()) == 1  # kept until compared
    with get_engine().connect() as conn:  # commented, as every table the platform makes
        uncommented = conn.scalars(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) "
                "AND attnum > 0 AND col_description(attrelid, attnum) IS NULL"
            ),
            {"t": f"{sample.db_table[0]}.{_captures()[0]}"},
        ).all()
    assert uncommented == []
    (found,) = verify_qlik(get_engine())
    assert (found.verdict, found.differing, found.keys) == ("ok", 0, [])
    assert (found.expected, found.actual) == (2, 2)
    assert _captures() == []
    assert [v.verdict for v in _latest_drift()] == ["ok"]


def test_a_lost_insert_delete_and_update_are_named_by_key(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """Change files applied wrongly, as a broken producer or a hand on the table would
    leave it: a row gone, a row too many, a value changed; the next full load tells."""
    sample.changes([(seq(1), "I", T, 3, "three", T), (seq(2), "U", T, 1, "ONE", T)])
    qlik.run()
    schema, table = sample.db_table
    with get_engine().begin() as conn:
        target = f'"{schema}"."{table}"'
        conn.execute(text(f"DELETE FROM {target} WHERE sample_id = 2"))
        conn.execute(
            text(
                f"INSERT INTO {target} (sample_id, sample_name, dp__load_id) VALUES (9, 'nine', 0)"
            )
        )
        conn.execute(text(f"UPDATE {target} SET sample_name = 'THREE' WHERE sample_id = 3"))
    _reload(qlik, sample, [(1, "ONE", T), (2, "two", T), (3, "three", T)])
    (found,) = verify_qlik(get_engine())
    assert (found.verdict, found.differing) == ("mismatch", 3)
    assert found.keys == [
        {"key": [3], "kind": "different"},
        {"key": [9], "kind": "extra"},
        {"key": [2], "kind": "missing"},
    ]
    assert found.subject == f"{schema}.{table}"
    # The snapshot is the table now, whatever the comparison found.
    assert [r[:2] for r in sample.rows()] == [(1, "ONE"), (2, "two"), (3, "three")]


def test_changes_newer_than_the_full_load_and_later_deletes_are_not_drift(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """A change stamped after the full load started is newer than the snapshot, and a key
    a later change file deletes is gone for a reason: neither is drift."""
    sample.changes([(seq(1), "U", T, 1, "ONE", T)])
    sample.changes(
        [("29991231000000000000000000000000001", "U", T, 2, "from the future", T)],
        name="20211201-112233445",
    )
    qlik.run()
    _reload(qlik, sample, [(1, "ONE", T), (2, "two", T)])
    sample.changes(
        [("29991231000000000000000000000000002", "D", T, 1, None, None)], name="20211201-112233446"
    )
    qlik.run()
    (found,) = verify_qlik(get_engine())
    assert (found.verdict, found.keys) == ("ok", [])


def test_not_compared_while_a_part_of_the_snapshot_waits(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    sample.changes([(seq(1), "U", T, 1, "ONE", T)])
    qlik.run()
    qlik.later()
    sample.full_load([(1, "ONE", T)])
    qlik.run()
    with get_engine().begin() as conn:  # a second part, landed, not applied yet
        conn.execute(
            text("UPDATE loads SET status = 'ready' WHERE id = (SELECT max(id) FROM loads)")
        )
    assert verify_qlik(get_engine()) == []
    assert len(_captures()) == 1


def test_a_rebuild_for_a_late_part_is_no_new_snapshot_to_compare(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """A part of the reload lands after changes of it were applied: the table is rebuilt
    from the same snapshot, and compared once, with the capture made before the reload
    (not one made before the rebuild, which would lack the late part's keys)."""
    sample.changes([(seq(1), "U", T, 1, "ONE", T)])
    qlik.run()
    qlik.later()
    sample.full_load([(1, "ONE", T)])
    sample.changes([(seq(5), "U", T, 1, "ONE again", T)], name="20211202-000000001")
    qlik.run()
    sample.full_load([(2, "two", T)], part=2)  # late
    summary = qlik.run()
    assert summary.ingest.rebuilds == 1
    assert [r[:2] for r in sample.rows()] == [(1, "ONE again"), (2, "two")]
    (found,) = verify_qlik(get_engine())
    assert (found.verdict, found.keys) == ("ok", []), found.keys
