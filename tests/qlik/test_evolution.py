"""Source schema changes end to end: a file of a new shape errors naming each difference
and the command; `evolve-table --apply` writes and applies a reviewed revision and
re-queues the waiting loads; the next run loads them; nothing is ever loaded changed."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from data_platform.batch.cubic_qlik.evolve import EvolutionRefused, evolve_table
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import Load, SchemaChange
from data_platform.status import platform_status
from harness.samples.qlik import Column
from tests.conftest import assert_ruff_clean
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2024-03-01 10:00:00"
FARE = [
    Column("FARE_ID", "INT4", key_pos=1),
    Column("NAME", "STRING", 50),
    Column("AMOUNT", "NUMERIC", precision=10, scale=2),
    Column("NOTE", "STRING", 20),
]


def _fare(qlik: QlikWorld, **onboard) -> QlikTable:
    table = qlik.table("FARES.FARE", FARE)
    table.full_load([(1, "adult", "2.40", "a"), (2, "child", "1.10", "b")])
    table.onboard(**onboard)
    qlik.run()
    return table


def _evolve(qlik: QlikWorld, table: str = "FARES.FARE", **kwargs):
    return evolve_table(table, apply=True, versions_dir=qlik.versions, **kwargs)


def _types(table: QlikTable) -> dict[str, str]:
    schema, name = table.db_table
    with get_engine().connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped"
                ),
                {"t": f"{schema}.{name}"},
            ).all()
        )


def _comment(table: QlikTable, column: str) -> str:
    schema, name = table.db_table
    with get_engine().connect() as conn:
        return conn.scalar(
            text(
                "SELECT col_description(attrelid, attnum) FROM pg_attribute "
                "WHERE attrelid = to_regclass(:t) AND attname = :c"
            ),
            {"t": f"{schema}.{name}", "c": column},
        )


def _table_status(name: str = "cubic_ods_qlik__fares_fare"):
    return next(t for t in platform_status().tables if t.name == name)


def _statuses(qlik: QlikWorld) -> list[str]:
    return [status for _, status, _ in qlik.loads()]


def test_a_column_added_mid_stream_waits_then_loads_after_one_command(qlik: QlikWorld) -> None:
    fare = _fare(qlik)
    wider = [*FARE, Column("ZONE", "STRING", 10)]
    key = fare.changes(
        [
            (seq(1), "U", T, 1, "adult", "2.50", "a", "z1"),
            (seq(2), "I", T, 3, "senior", "0.90", "c", None),
        ],
        columns=wider,
        table_version=2,
    )
    fare.changes([(seq(3), "U", T, 2, "child", "1.20", "b", "z2")], columns=wider,
                 name="20211201-112233555", table_version=2)  # fmt: skip
    qlik.run()
    error = qlik.loads()[1][2]
    assert error == (
        f"{key}: line 1, column ZONE: schema change: FARES.FARE (table version 2) differs "
        "from table cubic_ods_qlik.fares_fare: ZONE (STRING(10)) is new; nothing was loaded. "
        "Resolve it by a reviewed revision: data-platform cubic-qlik evolve-table --table "
        "FARES.FARE --apply (table cubic_ods_qlik__fares_fare, load 2)"
    )
    assert _statuses(qlik) == ["archived", "errored", "ready"]  # the next one waits
    status = _table_status()
    assert status.schema_change_loads == 1
    assert (
        status.evolve_command == "data-platform cubic-qlik evolve-table --table FARES.FARE --apply"
    )
    assert "waiting on a schema change (1 load(s)): data-platform cubic-qlik" in (
        platform_status().render()
    )
    assert fare.rows() == [(1, "adult", Decimal("2.40"), "a"), (2, "child", Decimal("1.10"), "b")]

    result = _evolve(qlik)
    assert [c.kind for c in result.changes] == ["added"] and result.applied
    assert result.requeued == [2]
    source = result.path.read_text()
    assert_ruff_clean(result.path, "migrations/cubic_qlik/evolve.py")
    assert 'EVOLVES_TABLE = "cubic_ods_qlik__fares_fare"' in source
    assert "op.add_column(" in source and "nullable=True" in source
    assert (
        _comment(fare, "zone")
        == "FARES.FARE.ZONE (STRING(10)), added at the source in table version 2."
    )
    qlik.run()  # no other step
    assert _statuses(qlik) == ["archived", "archived", "archived"]
    assert fare.rows() == [
        (1, "adult", Decimal("2.50"), "a", "z1"),
        (2, "child", Decimal("1.20"), "b", "z2"),
        (3, "senior", Decimal("0.90"), "c", None),
    ]
    # A new snapshot of the new shape loads as it is.
    fare.full_load([(5, "day", "9.99", None, "z3")], columns=wider, table_version=2)
    qlik.run()
    assert fare.rows() == [(5, "day", Decimal("9.99"), None, "z3")]
    assert _table_status().schema_change_loads == 0
    # Re-running the command changes nothing more.
    with pytest.raises(Exception, match="no load of cubic_ods_qlik__fares_fare waits"):
        _evolve(qlik)


def test_widened_string_numeric_and_integer(qlik: QlikWorld) -> None:
    columns = [
        Column("FARE_ID", "INT4", key_pos=1),
        Column("NAME", "STRING", 50),
        Column("AMOUNT", "NUMERIC", precision=10, scale=2),
        Column("RIDES", "INT4"),
    ]
    table = qlik.table("FARES.WIDE", columns)
    table.full_load([(1, "x", "1.00", 7)])
    table.onboard()
    qlik.run()
    wider = [
        Column("FARE_ID", "INT4", key_pos=1),
        Column("NAME", "STRING", 80),
        Column("AMOUNT", "NUMERIC", precision=14, scale=4),
        Column("RIDES", "INT8"),
    ]
    long_name = "n" * 80
    table.changes([(seq(1), "U", T, 1, long_name, "123456789.1234", 5_000_000_000)],
                  columns=wider, table_version=3)  # fmt: skip
    qlik.run()
    error = qlik.loads()[-1][2]
    for clause in (
        "NAME is STRING(80), which the table's character varying(50) cannot hold (length 80 > "
        "50): widen it to character varying(80)",
        "AMOUNT is NUMERIC(14,4), which the table's numeric(10,2) cannot hold (scale 4 > 2: "
        "values would be rounded; 10 integer digits > 8): widen it to numeric(14,4)",
        "RIDES is INT8, which the table's integer cannot hold (a wider integer): widen it to "
        "bigint",
    ):
        assert clause in error
    assert table.rows() == [(1, "x", Decimal("1.00"), 7)]  # nothing loaded changed
    result = _evolve(qlik, "FARES.WIDE")
    assert [c.kind for c in result.changes] == ["widened"] * 3
    qlik.run()
    assert _types(table)["name"] == "character varying(80)"
    assert _types(table)["amount"] == "numeric(14,4)"
    assert _types(table)["rides"] == "bigint"
    assert table.rows() == [(1, long_name, Decimal("123456789.1234"), 5_000_000_000)]
    assert _comment(table, "amount") == (
        "FARES.WIDE.AMOUNT (NUMERIC(14,4)), widened from numeric(10,2) in table version 3."
    )


def test_a_narrowing_is_refused_and_kept_while_the_rest_evolves(qlik: QlikWorld) -> None:
    fare = _fare(qlik)
    narrower = [
        Column("FARE_ID", "INT4", key_pos=1),
        Column("NAME", "STRING", 20),  # narrower: loads into the wider column as it is
        Column("AMOUNT", "NUMERIC", precision=8, scale=1),  # narrower too
        Column("NOTE", "STRING", 20),
        Column("ZONE", "INT2"),
    ]
    fare.changes([(seq(1), "U", T, 1, "adult", "2.5", "a", 4)], columns=narrower, table_version=4)
    qlik.run()
    error = qlik.loads()[-1][2]
    assert "ZONE (INT2) is new" in error and "NAME" not in error
    result = _evolve(qlik)
    kinds = {c.column: c.kind for c in result.changes}
    assert kinds == {"zone": "added", "name": "kept", "amount": "kept"}
    assert "narrower than the table's character varying(50): the table keeps its type" in (
        next(c for c in result.changes if c.column == "name").describe()
    )
    qlik.run()
    assert _types(fare)["name"] == "character varying(50)"
    assert _types(fare)["amount"] == "numeric(10,2)"
    assert fare.rows()[0] == (1, "adult", Decimal("2.50"), "a", 4)


def test_a_changed_key_is_refused_and_nothing_is_written(qlik: QlikWorld) -> None:
    fare = _fare(qlik)
    rekeyed = [
        Column("FARE_ID", "INT4", key_pos=1),
        Column("NAME", "STRING", 50, key_pos=2),
        Column("AMOUNT", "NUMERIC", precision=10, scale=2),
        Column("NOTE", "STRING", 20),
    ]
    fare.changes([(seq(1), "U", T, 1, "adult", "2.50", "a")], columns=rekeyed, table_version=2)
    qlik.run()
    error = qlik.loads()[-1][2]
    assert "the source's key is (FARE_ID, NAME), the table's (fare_id)" in error
    assert "This cannot be evolved safely: change the table by a hand-written revision" in error
    before = sorted(qlik.versions.iterdir())
    with pytest.raises(EvolutionRefused, match="a changed key would merge or split rows"):
        _evolve(qlik)
    assert sorted(qlik.versions.iterdir()) == before
    assert _statuses(qlik) == ["archived", "errored"]
    # A key column gone from the source is refused the same way.
    fare.changes(
        [(seq(2), "U", T, "adult", "2.50", "a")], columns=FARE[1:], name="20211201-112233555"
    )
    qlik.run()  # recorded, and waits behind the errored load
    with pytest.raises(EvolutionRefused, match="key column fare_id is gone from the source"):
        _evolve(qlik)


def test_several_changes_at_once_including_a_removed_column(qlik: QlikWorld) -> None:
    fare = _fare(qlik)
    changed = [
        Column("FARE_ID", "INT4", key_pos=1),
        Column("NAME", "STRING", 60),  # widened
        Column("AMOUNT", "NUMERIC", precision=10, scale=2),
        # NOTE removed at the source
        Column("ZONE", "STRING", 5),  # added
        Column("VALID_FROM", "DATE"),  # added
    ]
    fare.changes(
        [(seq(1), "U", T, 1, "adult fare", "2.40", "z1", "2024-03-01"),
         (seq(2), "I", T, 7, "new", "3.00", "z2", None)],
        columns=changed,
        table_version=5,
    )  # fmt: skip
    qlik.run()
    error = qlik.loads()[-1][2]
    assert "note is gone from the source (it stays in the table, NULL in new rows)" in error
    result = _evolve(qlik)
    assert_ruff_clean(result.path, "migrations/cubic_qlik/evolve.py")
    assert [(c.kind, c.column) for c in result.changes] == [
        ("added", "zone"),
        ("added", "valid_from"),
        ("widened", "name"),
        ("removed", "note"),
    ]
    with get_engine().connect() as conn:
        recorded = conn.execute(
            select(SchemaChange.column_name, SchemaChange.change, SchemaChange.table_version)
            .order_by(SchemaChange.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in recorded] == [
        ("zone", "added", 5),
        ("valid_from", "added", 5),
        ("name", "widened", 5),
        ("note", "removed", 5),
    ]
    qlik.run()
    from datetime import date

    assert fare.rows() == [
        (1, "adult fare", Decimal("2.40"), "a", "z1", date(2024, 3, 1)),  # NOTE kept on update
        (2, "child", Decimal("1.10"), "b", None, None),
        (7, "new", Decimal("3.00"), None, "z2", None),  # NULL in a new row
    ]
    assert "Removed at the source in table version 5" in _comment(fare, "note")
    # A new snapshot without NOTE loads too: every row is new, NOTE NULL.
    fare.full_load([(9, "x", "1.00", "z9", None)], columns=changed, table_version=5)
    qlik.run()
    assert fare.rows() == [(9, "x", Decimal("1.00"), None, "z9", None)]
    assert set(_statuses(qlik)) == {"archived"}


def test_a_raw_table_takes_added_columns_as_text(qlik: QlikWorld) -> None:
    fare = _fare(qlik, raw=True)
    wider = [*FARE, Column("ZONE", "INT4"), Column("AMOUNT2", "NUMERIC", precision=30, scale=9)]
    fare.changes(
        [(seq(1), "U", T, 1, "adult", "2.40", "a", 3, "1.5")], columns=wider, table_version=2
    )
    qlik.run()
    result = _evolve(qlik)
    assert [(c.kind, c.to_type) for c in result.changes] == [("added", "text"), ("added", "text")]
    qlik.run()
    assert _types(fare)["zone"] == "text"
    assert fare.rows()[0] == ("1", "adult", "2.40", "a", "3", "1.5")


def test_evolution_applies_while_another_table_keeps_loading(qlik: QlikWorld) -> None:
    fare = _fare(qlik)
    fare.changes([(seq(1), "U", T, 1, "adult", "2.40", "a", "z")],
                 columns=[*FARE, Column("ZONE", "STRING", 5)], table_version=2)  # fmt: skip
    qlik.run()
    big = qlik.table("FARES.BIG", [Column("ID", "INT4", key_pos=1), Column("V", "STRING", 20)])
    big.full_load([(1, "seed")])
    big.onboard()
    qlik.run()
    rows = 1_500_000  # long enough to outlast the evolve (Alembic writes, ruff formats)
    big.full_load((i, f"value {i}") for i in range(rows))
    # A newer snapshot of BIG: its own load, worked by another thread.
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(qlik.run()))
    worker.start()
    deadline = time.monotonic() + 60
    with get_engine().connect() as conn:
        while time.monotonic() < deadline:
            ingesting = conn.scalar(
                select(Load.id).where(Load.status == "ingesting", Load.s3_key.contains("BIG"))
            )
            conn.rollback()
            if ingesting or done:
                break
            time.sleep(0.02)
    result = _evolve(qlik)
    evolved_while_big_loaded = worker.is_alive()
    worker.join(120)
    assert result.requeued and evolved_while_big_loaded
    qlik.run()
    assert fare.rows()[0] == (1, "adult", Decimal("2.40"), "a", "z")
    assert len(big.rows()) == rows
    assert set(_statuses(qlik)) == {"archived"}


def test_the_command_line(qlik: QlikWorld, tmp_path: Path) -> None:
    fare = _fare(qlik)
    fare.changes([(seq(1), "I", T, 3, "x", "1.00", "n", "z")],
                 columns=[*FARE, Column("ZONE", "STRING", 5)], table_version=2)  # fmt: skip
    qlik.run()
    runner = CliRunner()
    args = ["cubic-qlik", "evolve-table", "--table", "cubic_ods_qlik.fares_fare"]
    out = runner.invoke(cli, [*args, "--versions-dir", str(qlik.versions)])
    assert out.exit_code == 0, out.output
    assert "added: ZONE (STRING(5)) is new" in out.output
    assert "wrote revision" in out.output and "re-queued" not in out.output
    out = runner.invoke(cli, [*args, "--versions-dir", str(qlik.versions), "--apply"])
    # The revision is written once; --apply upgrades and re-queues.
    assert out.exit_code == 0, out.output
    assert "the table already fits" not in out.output or "database upgraded" in out.output
    assert "re-queued load(s) 2" in out.output
    qlik.run()
    assert len(fare.rows()) == 3
    out = runner.invoke(cli, [*args, "--versions-dir", str(qlik.versions)])
    assert out.exit_code == 1 and "nothing to evolve" in out.output
