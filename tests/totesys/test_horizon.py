"""When the mark's transaction horizon cannot be trusted, a pass reads everything: a
source swapped for another (a restored dump, a new cluster, another database), a source
whose transaction counter is behind the mark or 2^31 ahead, a mark written before the
horizon existed. Reading by the horizon there would skip rows never read, for good; reading
everything only repeats rows, which are dropped by content. Unit tests of the filter, and
end to end on real source databases."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from psycopg2 import sql
from sqlalchemy import text

from data_platform.batch.totesys import extract as E
from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import connect, reader_url
from data_platform.db.engine import get_engine
from data_platform.loads.locks import _namespace, advisory_lock
from data_platform.run import run_once
from data_platform.settings import reset_settings
from data_platform.storage import get_zone
from harness.totesys.seed import seed
from tests.totesys.conftest import _drop_database, _new_database
from tests.totesys.sql import MARKS, set_marks
from tests.totesys.sql import on_platform as _platform
from tests.totesys.sql import on_source as _source

ORDERS = T.BY_NAME["sales_order"]
PASS = datetime(2030, 1, 1, tzinfo=UTC)
IDENTITY = "pg 1 timeline 1 database 5"
MARK = E._Mark(datetime(2030, 1, 1), "1", 1000, IDENTITY)


def _snapshot(xmin: int | None, xmax: int | None, identity: str | None = IDENTITY):
    return E._Snapshot(xmin, xmax, PASS, identity)


def _reads_all(mark: E._Mark, snapshot: E._Snapshot) -> bool:
    where, params = E._changed(ORDERS, mark, snapshot, E.OVERLAP)
    return where == sql.SQL("") and params == ()


# -- the filter ---------------------------------------------------------------------------


def test_a_counter_behind_the_mark_reads_everything() -> None:
    """A restored dump, a point-in-time restore: xmax below the stored horizon. The modulo
    filter would match no row at all (span < 0)."""
    assert _reads_all(MARK, _snapshot(xmin=880, xmax=900))
    assert "behind" in E._read_all(MARK, _snapshot(xmin=880, xmax=900))
    assert not _reads_all(MARK, _snapshot(xmin=1000, xmax=1000))  # span 0: by the horizon


def test_the_2_31_cutoff() -> None:
    """Below 2^31 transactions since the mark the modulo tells new from old; from 2^31 on
    it cannot, and everything is read."""
    assert not _reads_all(MARK, _snapshot(xmin=1000, xmax=1000 + 2**31 - 1))
    assert _reads_all(MARK, _snapshot(xmin=1000, xmax=1000 + 2**31))
    assert _reads_all(MARK, _snapshot(xmin=1000, xmax=1000 + 2**33))


def test_a_mark_of_another_source_reads_everything_even_with_its_counter_just_ahead() -> None:
    """Another server whose counter is a little ahead of the mark: the span looks sane,
    only the identity tells."""
    other = _snapshot(xmin=1500, xmax=1600, identity="pg 2 timeline 1 database 5")
    assert _reads_all(MARK, other)
    assert "not the one the mark is of" in E._read_all(MARK, other)
    promoted = _snapshot(xmin=1500, xmax=1600, identity="pg 1 timeline 2 database 5")
    assert _reads_all(MARK, promoted)
    # A source that cannot say who it is is not second-guessed.
    assert not _reads_all(MARK, _snapshot(xmin=1500, xmax=1600, identity=None))


def test_a_mark_without_a_horizon_reads_everything_once_the_source_has_one() -> None:
    """The first pass after revision 0014: the marks have no horizon and no identity."""
    old = E._Mark(datetime(2030, 1, 1), "1", None, None)
    assert _reads_all(old, _snapshot(xmin=1500, xmax=1600))
    by_stamp = E._Mark(datetime(2030, 1, 1), "1", None, IDENTITY)
    assert _reads_all(by_stamp, _snapshot(xmin=1500, xmax=1600))
    # A source without pg_current_snapshot (same identity) stays by stamp.
    where, params = E._changed(ORDERS, by_stamp, _snapshot(None, None), E.OVERLAP)
    assert "last_updated" in repr(where) and params == (datetime(2029, 12, 31, 23, 50),)


@pytest.mark.parametrize("epoch", [0, 7])
def test_a_horizon_just_before_2_32_matches_across_the_wraparound(platform, epoch: int) -> None:
    """The filter run by PostgreSQL on 32-bit xmins around the wraparound: the horizon's
    xid is 2^32 - 5, xmax 10 after the wrap (64-bit values of any epoch)."""
    base = epoch << 32
    mark = E._Mark(datetime(2030, 1, 1), "1", base + 2**32 - 5, IDENTITY)
    snapshot = _snapshot(xmin=base + 2**32 + 3, xmax=base + 2**32 + 10)
    where, params = E._changed(ORDERS, mark, snapshot, E.OVERLAP)
    xmins = [2**32 - 6, 2**32 - 5, 2**32 - 1, 1, 2, 3, 9, 10, 11, 2**31]
    raw = get_engine().raw_connection()
    try:
        with raw.cursor() as cur:
            values = sql.SQL(", ").join(sql.SQL("(%s::bigint)") for _ in xmins)
            cur.execute(
                sql.SQL("SELECT xmin FROM (VALUES {}) AS v(xmin) {} ORDER BY 1").format(
                    values, where
                ),
                (*xmins, *params),
            )
            read = [x for (x,) in cur.fetchall()]
    finally:
        raw.close()
    # 2^32-6 is older than the horizon, 10 and 11 not yet given out, 1 and 2 special.
    assert read == [3, 9, 2**32 - 5, 2**32 - 1]


# -- end to end -----------------------------------------------------------------------------


@pytest.fixture
def loaded(platform, seeded: str) -> str:
    E.extract()
    run_once()
    return seeded


def _copy_equals_source(url: str) -> None:
    source = connect(url)
    platform = get_engine().raw_connection()
    try:
        with source.cursor() as src, platform.cursor() as dst:
            for table in T.TABLES:
                names = sql.SQL(", ").join(map(sql.Identifier, table.names))
                src.execute(
                    sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
                        names, sql.Identifier(table.name)
                    )
                )
                dst.execute(
                    sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
                        names, sql.Identifier(T.DB_SCHEMA, table.name)
                    )
                )
                assert src.fetchall() == dst.fetchall(), table.name
    finally:
        source.close()
        platform.close()


def test_a_swapped_source_is_read_whole(
    platform, pg_admin_url: str, source_db: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """TOTESYS_DATABASE_URL moved to another database (a restored dump of other data),
    whose rows were all written before the mark's horizon: every one of them is read, the
    copy equals the new source, the keys it lacks are deleted, and the pass warns."""
    other = _new_database(pg_admin_url)
    try:
        monkeypatch.setenv("TOTESYS_DATABASE_URL", other)
        reset_settings()
        assert seed(orders=60, seed=2).seeded  # written now: older than the horizon below
        monkeypatch.setenv("TOTESYS_DATABASE_URL", source_db)
        reset_settings()
        assert seed(orders=200, seed=1).seeded
        E.extract()
        run_once()
        _copy_equals_source(source_db)

        monkeypatch.setenv("TOTESYS_DATABASE_URL", other)
        reset_settings()
        with caplog.at_level(logging.WARNING, logger=E.__name__):
            result = E.extract()
        assert not result.failed, result.render()
        run_once()
        _copy_equals_source(other)
        assert "reading the whole table: the source is not the one the mark is of" in caplog.text
        assert _platform("SELECT count(*) FROM totesys.sales_order") == [(60,)]
        identities = _platform(f"SELECT DISTINCT source_identity FROM {MARKS}")
        conn = connect(other)
        try:
            assert identities == [(E._identity(conn),)]
        finally:
            conn.close()
    finally:
        _drop_database(pg_admin_url, other)


def test_a_counter_behind_the_mark_still_reads_the_changes(loaded: str, caplog) -> None:
    """The marks hold a horizon far beyond the source's counter (a restored dump on the
    same server, a cluster restored to an earlier point): the changes are still read."""
    _platform(
        "UPDATE landing_marks SET mark = jsonb_set(mark, '{horizon}', "
        "to_jsonb((mark->>'horizon')::bigint + 1000000000)) WHERE source = 'totesys'"
    )
    _source(loaded, "UPDATE sales_order SET units_sold = 5150 WHERE sales_order_id = 15")
    with caplog.at_level(logging.WARNING, logger=E.__name__):
        result = E.extract(["sales_order"])
    # Read whole, but the copy holds the other 199 as they are: one row lands.
    rows = pq.read_table(io.BytesIO(get_zone("incoming").open(result.tables[0].key).read()))
    assert rows.column("sales_order_id").to_pylist() == [15]
    run_once()
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 15") == [
        (5150,)
    ]
    assert "is behind the mark's horizon" in caplog.text
    # The mark took the source's own horizon: the next pass reads by it again.
    assert _platform(
        f"SELECT count(*) FROM {MARKS} WHERE table_name = 'sales_order' AND horizon < 1000000000"
    ) == [(1,)]


@pytest.mark.parametrize("identity", ["kept", "cleared"])
def test_the_first_pass_after_the_upgrade_reads_everything(loaded: str, identity: str) -> None:
    """Marks written by stamp (no horizon; before revision 0014 no identity either): a row
    committed stamped older than the mark minus the overlap is still read."""
    set_marks('{"horizon": null' + (', "identity": null' if identity == "cleared" else "") + "}")
    _source(
        loaded,
        "UPDATE sales_order SET units_sold = 6161, last_updated = '2000-01-01' "
        "WHERE sales_order_id = 16",
    )
    result = E.extract(["sales_order"])
    rows = pq.read_table(io.BytesIO(get_zone("incoming").open(result.tables[0].key).read()))
    assert rows.column("sales_order_id").to_pylist() == [16]
    run_once()
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 16") == [
        (6161,)
    ]
    assert _platform(
        f"SELECT count(*) FROM {MARKS} WHERE horizon IS NULL OR source_identity IS NULL"
    ) == [(0,)]


def test_a_pass_waits_for_the_one_running(loaded: str) -> None:
    """Passes are serialized by the platform's advisory lock: one blocks, not fails, while
    another holds it."""
    done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            E.extract(["currency"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        done.set()

    with advisory_lock(get_engine(), *E.LOCK) as got:
        assert got
        thread = threading.Thread(target=second)
        thread.start()
        # Deterministic: the second pass is seen waiting on the lock in pg_locks.
        with get_engine().connect() as conn:
            for _ in range(600):
                waiting = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
                        "granted AND classid = :ns AND objid = :id AND objsubid = 2 AND "
                        "database = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database())"
                    ),
                    {"ns": _namespace(E.LOCK[0]), "id": E.LOCK[1]},
                )
                if waiting:
                    break
                done.wait(0.05)
        assert waiting == 1 and not done.is_set()
    thread.join(120)
    assert done.is_set() and not errors, errors


KILLED = """
import os, signal
from data_platform.storage import ZoneStore
from data_platform.batch.totesys.extract import extract
def put(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # killed while the file is being put
ZoneStore.put = put
extract(["sales_order"])
"""


def test_a_killed_extraction_leaves_no_spool(loaded: str, tmp_path) -> None:
    """SIGKILL while the spooled Parquet is being put: nothing is left in the temporary
    directory (the spool had no name), no file in incoming, no moved mark."""
    marks = _platform(f"SELECT horizon, extracted_at FROM {MARKS} ORDER BY table_name")
    _source(loaded, "UPDATE sales_order SET units_sold = 7171 WHERE sales_order_id = 17")
    spool = tmp_path / "tmp"
    spool.mkdir()
    root = str(Path(__file__).resolve().parents[2])  # the repository: data_platform
    env = {**os.environ, "TMPDIR": str(spool), "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-c", KILLED], env=env, capture_output=True, timeout=300, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert list(spool.iterdir()) == []
    assert list(get_zone("incoming").list(f"{E.PREFIX}sales_order/")) == []
    assert _platform(f"SELECT horizon, extracted_at FROM {MARKS} ORDER BY table_name") == marks


def test_a_source_hiding_its_control_data_is_known_by_its_server(loaded: str, caplog) -> None:
    """pg_control_system not callable (a service that revokes it): the identity is the
    server's address, port and start time and the database; the change of identity costs
    one full read, then passes read by the horizon again."""
    # Function privileges are the database's own: this touches the test's source only.
    _source(loaded, "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
    conn = connect(reader_url(loaded))  # the role the passes read as
    try:
        identity = E._identity(conn)
    finally:
        conn.close()
    assert identity.startswith("server ") and " started " in identity and " database " in identity
    with caplog.at_level(logging.WARNING, logger=E.__name__):
        E.extract(["currency"])
    assert "the source is not the one the mark is of" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=E.__name__):
        E.extract(["currency"])
    assert "reading the whole table" not in caplog.text
    assert _platform(f"SELECT DISTINCT source_identity FROM {MARKS} "
                     "WHERE table_name = 'currency'") == [(identity,)]  # fmt: skip
