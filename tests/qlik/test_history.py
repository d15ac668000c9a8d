"""Point-in-time history of a Qlik table (issue 25, doc/qlik-history.md): `<table>_history`
answers "the table as of T" equal to an independent replay of the files, late changes,
sparse updates, key updates, rebuilds and new snapshots included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from data_platform.batch.cubic_qlik.evolve import evolve_table
from data_platform.batch.cubic_qlik.onboarding import keep_history
from data_platform.db import migrations
from data_platform.db.engine import get_engine
from harness.samples.qlik import Column
from tests.conftest import assert_ruff_clean
from tests.qlik.conftest import QlikTable, QlikWorld

T = "2021-12-01 11:20:30"
COLUMNS = [
    Column("ID", "INT4", 10, key_pos=1),
    Column("NAME", "STRING", 100),
    Column("NOTE", "CLOB"),  # a U's NULL here is a value left untouched (sparse)
]
# Changes are stamped after the files land, as Replicate's are after the full load starts.
BASE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

DAY = 86400  # seconds
Change = tuple[int, str, int, str | None, str | None]  # (n, oper, id, name, note)


def at(n: int) -> datetime:
    """When change `n` committed: a second apart."""
    return BASE + timedelta(seconds=n)


def seq(n: int) -> str:
    """Change `n`'s header__change_seq: its commit time, then its change number."""
    return at(n).strftime("%Y%m%d%H%M%S") + "00" + f"{n:019d}"


def rows(changes: list[Change]) -> list[tuple]:
    return [(seq(n), oper, T, id_, name, note) for n, oper, id_, name, note in changes]


def replay(base: dict[int, tuple], changes: list[Change], upto: int) -> dict[int, tuple]:
    """The table after every change numbered up to `upto`, applied one by one in change
    order on top of the full load: the independent answer the history must give."""
    state = dict(base)
    befores: dict[int, int] = {}
    for n, oper, id_, name, note in sorted(changes, key=lambda c: (c[0], c[1] != "B")):
        if n > upto:
            break
        if oper == "B":
            befores[n] = id_
            continue
        if oper == "U" and befores.get(n, id_) != id_:
            state.pop(befores[n], None)  # the key changed: the old key's row goes
        if oper == "D":
            state.pop(id_, None)
        elif oper == "I":
            state[id_] = (name, note)
        else:
            before = state.get(id_)
            state[id_] = (name, note if note is not None else before[1] if before else None)
    return state


def history_at(table: QlikTable, bound: str) -> dict[int, tuple]:
    """The history's versions valid at change sequence `bound`, by key."""
    schema, name = table.db_table
    with get_engine().connect() as conn:
        found = conn.execute(
            text(
                f'SELECT id, name, note FROM "{schema}"."{name}_history" '
                "WHERE dp__valid_from <= :s AND (dp__valid_to IS NULL OR dp__valid_to > :s) "
                "AND dp__operation <> 'D'"
            ),
            {"s": bound},
        ).all()
    by_key = {id_: (n, note) for id_, n, note in found}
    assert len(by_key) == len(found), f"two versions of a key valid at {bound}: {found}"
    return by_key


def as_of(table: QlikTable, when: datetime) -> dict[int, tuple]:
    """The table as of `when`, through its `<table>_as_of(T)` function."""
    schema, name = table.db_table
    with get_engine().connect() as conn:
        found = conn.execute(
            text(f'SELECT id, name, note FROM "{schema}"."{name}_as_of"(:t)'), {"t": when}
        ).all()
    return {id_: (n, note) for id_, n, note in found}


def current(table: QlikTable) -> dict[int, tuple]:
    return {id_: (name, note) for id_, name, note in table.rows()}


def assert_replayed(table: QlikTable, base: dict[int, tuple], changes: list[Change]) -> None:
    """At every change, and between them, the history equals the replay."""
    numbers = sorted({c[0] for c in changes})
    for n in numbers:
        assert history_at(table, seq(n)) == replay(base, changes, n), f"as of change {n}"
        assert as_of(table, at(n)) == replay(base, changes, n), f"as of {at(n)}"
    assert as_of(table, at(numbers[0]) - timedelta(seconds=1)) == base


@pytest.fixture
def kept(qlik: QlikWorld) -> QlikTable:
    """TEST.KEPT onboarded with its history, from its first full load (not ingested)."""
    table = qlik.table("TEST.KEPT", COLUMNS)
    table.full_load([(1, "one", "n1"), (2, "two", "n2"), (3, "three", None)])
    table.onboard(history=True)
    return table


BASE_ROWS = {1: ("one", "n1"), 2: ("two", "n2"), 3: ("three", None)}


def test_as_of_equals_a_replay_of_the_files(qlik: QlikWorld, kept: QlikTable) -> None:
    """Inserts, updates, a sparse update that leaves the LOB untouched, a delete and the
    key re-inserted, a key update (B/U with another key), one key changed many times in
    a file, across two files."""
    first: list[Change] = [
        (1, "U", 1, "ONE", None),  # NOTE untouched: keeps n1
        (2, "I", 4, "four", "n4"),
        (3, "D", 2, None, None),
        (4, "U", 1, "ONE!", "n1b"),
        (5, "U", 1, "ONE!!", None),  # keeps n1b
    ]
    second: list[Change] = [
        (6, "I", 2, "two again", None),
        (7, "B", 3, "three", None),
        (7, "U", 30, "thirty", None),  # key 3 becomes 30
        (8, "U", 4, "FOUR", None),
        (9, "D", 1, None, None),
    ]
    kept.changes(rows(first), name="20211201-112233444")
    kept.changes(rows(second), name="20211201-112233445")
    qlik.run()
    changes = first + second
    assert_replayed(kept, BASE_ROWS, changes)
    assert current(kept) == replay(BASE_ROWS, changes, 99)
    assert history_at(kept, "9" * 35) == current(kept)


def test_a_late_change_lands_in_its_place(qlik: QlikWorld, kept: QlikTable) -> None:
    """A change file whose changes are older than ones applied before it: the versions
    around them are cut, and a later sparse update takes the late change's value."""
    on_time: list[Change] = [
        (1, "U", 1, "a", "first"),
        (5, "U", 1, "b", None),
        (6, "D", 2, None, None),
    ]
    late: list[Change] = [(3, "U", 1, "late", "late note"), (4, "I", 2, "two late", "x")]
    kept.changes(rows(on_time), name="20211201-112233445")
    qlik.run()
    kept.changes(rows(late), name="20211201-112233444")
    qlik.run()
    assert_replayed(kept, BASE_ROWS, on_time + late)
    # The version of change 5 left NOTE untouched: after the late change 3 it holds its note.
    assert history_at(kept, seq(5))[1] == ("b", "late note")


def test_the_same_changes_applied_again_add_no_version(qlik: QlikWorld, kept: QlikTable) -> None:
    changes: list[Change] = [(1, "U", 1, "ONE", None), (2, "D", 3, None, None)]
    kept.changes(rows(changes), name="20211201-112233444")
    kept.changes(rows(changes), name="20211201-112233445")  # the producer sent it twice
    qlik.run()
    schema, name = kept.db_table
    with get_engine().connect() as conn:
        versions = conn.scalar(text(f'SELECT count(*) FROM "{schema}"."{name}_history"'))
    assert versions == 3 + 2
    assert_replayed(kept, BASE_ROWS, changes)


def test_a_new_snapshot_ends_the_old_versions_and_a_rebuild_rewrites_its_own(
    qlik: QlikWorld, kept: QlikTable
) -> None:
    first: list[Change] = [(1, "U", 1, "ONE", None)]
    kept.changes(rows(first), name="20211201-112233444")
    qlik.run()
    # The reload, two days on (change 1 is a day on): LOAD00000001, then its second
    # part only after a change file of it.
    qlik.later(2 * DAY)
    kept.full_load([(1, "uno", "u1"), (5, "cinco", None)])
    qlik.run()
    reload_start = _snapshot_start(kept)
    assert reload_start > seq(1)
    after: list[Change] = [(3 * DAY, "U", 6, "SEIS", None)]
    kept.changes(rows(after), name="20211201-112233446")
    qlik.run()
    kept.full_load([(6, "seis", "s6")], part=2)  # late: the table is rebuilt
    qlik.run()
    new_base = {1: ("uno", "u1"), 5: ("cinco", None), 6: ("seis", "s6")}
    # Before the reload the first snapshot's state; from it, the new snapshot's.
    assert history_at(kept, seq(1)) == replay(BASE_ROWS, first, 1)
    assert history_at(kept, reload_start) == new_base
    assert history_at(kept, seq(3 * DAY)) == replay(new_base, after, 3 * DAY)
    assert current(kept) == {**new_base, 6: ("SEIS", "s6")}
    assert as_of(kept, at(0)) == BASE_ROWS


def test_history_kept_from_later_starts_with_the_rows_then(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    """`keep-history` on a table with rows: each row is its key's first version; the
    changes after it are versions like any."""
    qlik.run()
    result = keep_history(
        sample.qualified,
        apply=True,
        versions_dir=qlik.versions,
        config=migrations.alembic_config(extra_version_dirs=[qlik.versions]),
    )
    assert result.path is not None and result.path.exists()
    assert "keep the point-in-time history" in result.path.read_text()
    again = keep_history(sample.qualified, versions_dir=qlik.versions)
    assert again.path is None  # once per table
    changes = [(seq(1), "U", T, 1, "ONE", T), (seq(2), "D", T, 2, None, None)]
    sample.changes(changes)
    qlik.run()
    schema, name = sample.db_table
    with get_engine().connect() as conn:
        versions = conn.execute(
            text(
                f'SELECT sample_id, dp__operation, dp__valid_to IS NULL FROM "{schema}".'
                f'"{name}_history" ORDER BY sample_id, dp__valid_from, dp__change_seq NULLS FIRST'
            )
        ).all()

        def names_at(when: datetime) -> list[tuple]:
            return conn.execute(
                text(f'SELECT sample_id, sample_name FROM "{schema}"."{name}_as_of"(:t)'),
                {"t": when},
            ).all()

        assert names_at(at(2)) == [(1, "ONE")]
        assert names_at(at(1) - timedelta(seconds=1)) == [(1, "one"), (2, "two")]
    assert versions == [(1, "S", False), (1, "U", True), (2, "S", False), (2, "D", True)]


def test_a_file_that_fails_leaves_no_version(qlik: QlikWorld, kept: QlikTable) -> None:
    qlik.run()
    kept.changes([*rows([(1, "U", 1, "ONE", None)]), (seq(2), "U", T, "not a number", "x", None)])
    qlik.run()
    schema, name = kept.db_table
    with get_engine().connect() as conn:
        operations = conn.scalars(text(f'SELECT dp__operation FROM "{schema}"."{name}_history"'))
        assert sorted(operations) == ["L", "L", "L"]
    assert current(kept) == BASE_ROWS


def _snapshot_start(table: QlikTable) -> str:
    with get_engine().connect() as conn:
        return conn.scalar(
            text(
                "SELECT qlik_change_seq_at(max(s.snapshot), false) FROM table_snapshots s "
                "JOIN source_tables t ON t.id = s.table_id WHERE t.name = :n"
            ),
            {"n": f"cubic_ods_qlik__{table.schema.lower()}_{table.name.lower()}"},
        )


def test_a_change_older_than_its_snapshot_counts_from_the_snapshot(
    qlik: QlikWorld, kept: QlikTable
) -> None:
    """Replicate captures changes while a full load copies: one stamped before the
    snapshot started is applied over it (final state wins), so it holds from the
    snapshot's start, as the current table says."""
    kept.changes([("2021120111223344" + f"{1:019d}", "U", T, 1, "captured", None)])
    qlik.run()
    assert history_at(kept, "9" * 35) == current(kept)
    assert current(kept)[1] == ("captured", "n1")
    assert as_of(kept, at(0)) == {**BASE_ROWS, 1: ("captured", "n1")}


def test_the_history_evolves_with_its_table(qlik: QlikWorld, kept: QlikTable) -> None:
    """A column added and a type widened at the source: the reviewed revision changes the
    history table alike, and the next changes carry the new column into it."""
    qlik.run()
    wider = [
        Column("ID", "INT4", 10, key_pos=1),
        Column("NAME", "STRING", 200),  # widened from 100
        Column("NOTE", "CLOB"),
        Column("ZONE", "STRING", 10),  # added
    ]
    kept.changes([(seq(1), "U", T, 1, "x" * 150, "n", "z1")], columns=wider, table_version=2)
    qlik.run()
    result = evolve_table(kept.qualified, apply=True, versions_dir=qlik.versions)
    assert_ruff_clean(result.path, "migrations/cubic_qlik/evolve.py")
    schema, name = kept.db_table
    with get_engine().connect() as conn:
        types = dict(
            conn.execute(
                text(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = to_regclass(:t) AND attname IN ('name', 'zone')"
                ),
                {"t": f"{schema}.{name}_history"},
            ).all()
        )
    assert types == {"name": "character varying(200)", "zone": "character varying(10)"}
    qlik.run()
    with get_engine().connect() as conn:
        found = conn.execute(
            text(f'SELECT id, zone FROM "{schema}"."{name}_as_of"(:t)'), {"t": at(2)}
        ).all()
    assert sorted(found) == [(1, "z1"), (2, None), (3, None)]


def test_the_revisions_are_ruff_clean_and_go_down(qlik: QlikWorld, kept: QlikTable) -> None:
    """The onboarding revision with history is as written by Alembic, and its downgrade
    drops the history table and its function."""
    assert kept.onboarded is not None and kept.onboarded.path is not None
    source = kept.onboarded.path.read_text()
    assert_ruff_clean(kept.onboarded.path, "migrations/cubic_qlik/onboard.py")
    assert '"test_kept_history"' in source and "test_kept_as_of" in source
    assert "SET (fillfactor = 70)" in source  # each version's one update stays on its page
    config = migrations.alembic_config(extra_version_dirs=[qlik.versions])
    migrations.downgrade("-1", config)
    with get_engine().connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('cubic_ods_qlik.test_kept_history')")) is None
        assert conn.scalar(text("SELECT to_regclass('cubic_ods_qlik.test_kept')")) is None
    migrations.upgrade("head", config)
