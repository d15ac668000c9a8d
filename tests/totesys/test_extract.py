"""Incremental extraction from a real totesys database into incoming, then the loads into
the current-state and history tables: rows sharing a timestamp across a page boundary, a
late-committing transaction, a table with no changes, a killed extraction, and an
updated order becoming a second version."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest

from data_platform.batch.totesys.connection import connect
from data_platform.batch.totesys.extract import PREFIX, extract
from data_platform.run import run_once
from data_platform.storage import get_zone
from tests.totesys.sql import MARKS
from tests.totesys.sql import on_platform as _platform
from tests.totesys.sql import on_source as _source


@pytest.fixture
def seeded(platform, seeded: str) -> str:
    """A seeded source and a platform (metadata and landing tables) to extract into."""
    return seeded


def _files(table: str) -> list[str]:
    return sorted(info.key for info in get_zone("incoming").list(f"{PREFIX}{table}/"))


def _rows_in(key: str) -> list[dict]:
    body = get_zone("incoming").open(key).read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def test_first_run_lands_everything_then_only_changes(seeded: str) -> None:
    first = extract()
    assert not first.failed and first.landed == 11
    orders = _rows_in(_files("sales_order")[0])
    assert len(orders) == 200 and len({o["sales_order_id"] for o in orders}) == 200
    # Nothing changed: nothing lands, the marks stay.
    marks = _platform(f"SELECT table_name, mark_updated, mark_key FROM {MARKS} ORDER BY 1")
    run_once()  # loads them (and extracts again: nothing new)
    again = extract()
    assert again.landed == 0 and again.failed == []
    assert _platform(f"SELECT table_name, mark_updated, mark_key FROM {MARKS} ORDER BY 1") == marks
    assert _platform("SELECT count(*) FROM totesys.sales_order") == [(200,)]
    assert _platform("SELECT count(*) FROM totesys_history.sales_order") == [(200,)]


def test_rows_sharing_a_timestamp_across_a_page_boundary_are_neither_lost_nor_doubled(
    seeded: str,
) -> None:
    stamp = datetime(2030, 1, 1, 12, 0, 0, 123000)
    _source(seeded, "UPDATE sales_order SET last_updated = %s WHERE sales_order_id <= 7", (stamp,))
    result = extract(["sales_order"], page_rows=3)  # pages cut through the 7 equal stamps
    assert not result.failed
    rows = _rows_in(result.tables[0].key)
    ids = [r["sales_order_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 200
    body = io.BytesIO(get_zone("incoming").open(result.tables[0].key).read())
    assert pq.ParquetFile(body).metadata.num_row_groups == 67  # a row group per page


def test_a_late_committing_row_is_caught_by_the_horizon(seeded: str) -> None:
    extract(["sales_order"])
    run_once()
    old_stamp = datetime(2031, 1, 1, 0, 0, 0)
    started, extracted = threading.Event(), threading.Event()

    def late_writer() -> None:
        conn = connect(seeded)
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE sales_order SET units_sold = 4242, last_updated = %s "
                "WHERE sales_order_id = 1",
                (old_stamp,),
            )
            started.set()
            extracted.wait()  # commits after a newer row is extracted, whatever the timing
        conn.commit()
        conn.close()

    writer = threading.Thread(target=late_writer)
    writer.start()
    try:
        assert started.wait(120)
        _source(
            seeded,
            "UPDATE sales_order SET last_updated = %s WHERE sales_order_id = 2",
            (old_stamp + timedelta(seconds=5),),
        )
        newer = extract(["sales_order"])
    finally:
        extracted.set()  # also when the pass failed: the writer must not hang
        writer.join()
    assert [r["sales_order_id"] for r in _rows_in(newer.tables[0].key)] == [2]
    run_once()  # loads the newer file, then extracts again: the horizon brings order 1
    assert _platform("SELECT units_sold FROM totesys.sales_order WHERE sales_order_id = 1") == [
        (4242,)
    ]
    assert _platform(
        "SELECT count(*) FROM totesys_history.sales_order WHERE sales_order_id = 1"
    ) == [(2,)]


def test_a_killed_extraction_lands_no_file_and_keeps_the_mark(
    seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extract(["sales_order"])
    run_once()  # loaded: the overlap's rows are known versions now
    marks = _platform(f"SELECT mark_updated, mark_key, last_key FROM {MARKS} ORDER BY 1")
    _source(seeded, "UPDATE sales_order SET last_updated = '2032-01-01' WHERE sales_order_id = 3")

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed  # the process dies while the file is being put

    from data_platform.storage import ZoneStore

    monkeypatch.setattr(ZoneStore, "put", killed)
    with pytest.raises(Killed):
        extract(["sales_order"])
    monkeypatch.undo()
    assert _files("sales_order") == []
    assert _platform(f"SELECT mark_updated, mark_key, last_key FROM {MARKS} ORDER BY 1") == marks
    retried = extract(["sales_order"])
    # Order 3's new version; rows of transactions other sessions of the server held open
    # at the last pass may come again (the horizon is the cluster's), and load as nothing.
    assert 3 in [r["sales_order_id"] for r in _rows_in(retried.tables[0].key)]
    run_once()
    assert _platform(
        "SELECT count(*), count(DISTINCT sales_order_id) FROM totesys_history.sales_order"
    ) == [(201, 200)]


def test_an_updated_order_is_a_second_version_and_reingesting_changes_nothing(
    seeded: str,
) -> None:
    extract()
    run_once()
    _source(
        seeded,
        "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = '2033-01-01' "
        "WHERE sales_order_id = 5",
    )
    summary = run_once().source("totesys")
    assert summary.land.detail.landed == 1 and summary.ingest.archived == 1
    versions = _platform(
        "SELECT last_updated FROM totesys_history.sales_order WHERE sales_order_id = 5 ORDER BY 1"
    )
    assert len(versions) == 2 and versions[-1][0] == datetime(2033, 1, 1)
    current = _platform("SELECT last_updated FROM totesys.sales_order WHERE sales_order_id = 5")
    assert current == [(datetime(2033, 1, 1),)]
    # The same file again (a retried load): nothing changes.
    before = _platform("SELECT count(*), sum(units_sold) FROM totesys_history.sales_order")
    key = _platform(
        "SELECT s3_key FROM loads WHERE s3_key LIKE 'database/totesys/sales_order/%' "
        "ORDER BY id DESC LIMIT 1"
    )[0][0]
    archived = next(info.key for info in get_zone("archive").list("database/totesys/sales_order/")
                    if info.key.endswith(key.rsplit("/", 1)[1]))  # fmt: skip
    get_zone("incoming").put(key.replace(".parquet", "-again.parquet"),
                             io.BytesIO(get_zone("archive").open(archived).read()))  # fmt: skip
    run_once()
    assert _platform("SELECT count(*), sum(units_sold) FROM totesys_history.sales_order") == before


def test_the_source_is_only_read(seeded: str) -> None:
    result = extract()
    assert not result.failed
    # The reader role cannot write: the extraction connects as it.
    from data_platform.batch.totesys.connection import reader_url

    conn = connect(reader_url())
    try:
        with pytest.raises(Exception, match=r"permission denied|read-only"), conn.cursor() as cur:
            cur.execute("UPDATE currency SET currency_code = 'XXX'")
    finally:
        conn.close()
